// Package dbtest opens test databases: a SQLite file in t.TempDir, or a fresh schema in the
// PostgreSQL server the test environment provides.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/database"
)

// DefaultPostgresDSN is the server CI starts (.ci/run): trust auth, database "test".
const DefaultPostgresDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// SQLite opens a database in a new file under t.TempDir and closes it at the end of the test.
func SQLite(t testing.TB) *database.DB {
	t.Helper()
	db, err := database.Open(context.Background(), database.Config{Driver: database.SQLite, DSN: t.TempDir() + "/test.db"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// PostgresDSN creates a schema with a unique name in the test server (SWITCHYARD_TEST_POSTGRES,
// else DefaultPostgresDSN), drops it at the end of the test, and returns a DSN whose search_path
// is that schema. Without a reachable server the test fails when CI is set and is skipped
// otherwise.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("SWITCHYARD_TEST_POSTGRES")
	if base == "" {
		base = DefaultPostgresDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.PingContext(ctx)
	}
	if err != nil {
		if admin != nil {
			_ = admin.Close()
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at %s is unreachable (CI is set): %v", base, err)
		}
		t.Skipf("PostgreSQL at %s is unreachable: %v", base, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "sytest_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", base, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Postgres opens a database on a fresh schema (see PostgresDSN) and closes it at the end of the
// test.
func Postgres(t testing.TB) *database.DB {
	t.Helper()
	dsn := PostgresDSN(t)
	db, err := database.Open(context.Background(), database.Config{Driver: database.Postgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Each runs f against SQLite and PostgreSQL as subtests.
func Each(t *testing.T, f func(t *testing.T, db *database.DB)) {
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, Postgres(t)) })
}
