package database

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrateLockKey is the PostgreSQL advisory lock Migrate holds: one key for every component, so
// instances starting together apply migrations one after another.
const migrateLockKey = 0x5357_4d49_4752 // "SWMIGR"

// Migration is one schema step of a component.
type Migration struct {
	Version int64
	Name    string // file name
	SQL     string
}

// Migrate applies the component's migrations from fsys that the database has not recorded yet, in
// version order, and records them in schema_migrations(component, version). It is idempotent and
// safe when several instances start at once: everything runs in one transaction, serialised by an
// advisory lock on PostgreSQL and by SQLite's write lock.
//
// Migration files sit at the root of fsys and are named "<version>_<name>.sql" (for example
// "0001_sessions.sql"); "<version>_<name>.sqlite.sql" or "<version>_<name>.postgres.sql" apply
// to one driver only, and take precedence over a plain file of the same version. A file may
// hold several statements separated by ";" at line ends.
func (db *DB) Migrate(ctx context.Context, component string, fsys fs.FS) error {
	if component == "" {
		return errors.New("database.Migrate: empty component")
	}
	migs, err := Migrations(fsys, db.driver)
	if err != nil {
		return fmt.Errorf("database.Migrate %s: %w", component, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("database.Migrate %s: begin: %w", component, err)
	}
	defer func() { _ = tx.Rollback() }()
	if db.driver == Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLockKey)); err != nil {
			return fmt.Errorf("database.Migrate %s: lock: %w", component, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	component  TEXT   NOT NULL,
	version    BIGINT NOT NULL,
	name       TEXT   NOT NULL,
	applied_at TEXT   NOT NULL DEFAULT CURRENT_TIMESTAMP,
	PRIMARY KEY (component, version))`); err != nil {
		return fmt.Errorf("database.Migrate %s: create schema_migrations: %w", component, err)
	}
	applied := map[int64]bool{}
	rows, err := tx.QueryContext(ctx, db.Rebind("SELECT version FROM schema_migrations WHERE component = ?"), component)
	if err != nil {
		return fmt.Errorf("database.Migrate %s: read versions: %w", component, err)
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("database.Migrate %s: read versions: %w", component, err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("database.Migrate %s: read versions: %w", component, err)
	}
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		for _, stmt := range splitStatements(m.SQL) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("database.Migrate %s: %s: %w", component, m.Name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO schema_migrations (component, version, name) VALUES (?, ?, ?)"),
			component, m.Version, m.Name); err != nil {
			return fmt.Errorf("database.Migrate %s: record %s: %w", component, m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("database.Migrate %s: commit: %w", component, err)
	}
	return nil
}

// Migrations lists the migrations in fsys that apply to driver, in version order.
func Migrations(fsys fs.FS, driver string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	type pick struct {
		m        Migration
		specific bool
	}
	byVersion := map[int64]pick{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		base := strings.TrimSuffix(name, ".sql")
		specific := false
		if ext := path.Ext(base); ext == ".sqlite" || ext == ".postgres" {
			if ext[1:] != driver {
				continue
			}
			specific = true
		}
		num, _, ok := strings.Cut(base, "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name must be <version>_<name>.sql", name)
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: version %q is not a positive integer", name, num)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		prev, dup := byVersion[v]
		switch {
		case dup && prev.specific == specific:
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev.m.Name, name, v)
		case dup && prev.specific:
			continue
		}
		byVersion[v] = pick{Migration{Version: v, Name: name, SQL: string(body)}, specific}
	}
	out := make([]Migration, 0, len(byVersion))
	for _, p := range byVersion {
		out = append(out, p.m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// splitStatements splits a migration at ";" that end a line. Migrations keep one statement per
// ";"-terminated block; semicolons inside a line (in literals) are not split points.
func splitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.Lines(src) {
		cur.WriteString(line)
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSpace(cur.String()); s != ";" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
