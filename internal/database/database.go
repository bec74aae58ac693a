// Package database opens the gateway's SQL database: SQLite (modernc.org/sqlite, no cgo) embedded
// by default, PostgreSQL (pgx v5 through database/sql) in production. It also applies each
// component's embedded migrations (Migrate). Session archives, API keys and the audit log share it.
package database

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver; pgx: postgres.go
)

// Drivers Open accepts.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DefaultFile is the SQLite file Open uses, inside Config.DataDir, when Config.DSN is empty.
const DefaultFile = "switchyard.db"

// Config selects the database.
type Config struct {
	// Driver is "sqlite" (the default when empty) or "postgres".
	Driver string `yaml:"driver"`
	// DSN is, for sqlite, a file path (":memory:" is refused: every pooled connection would see
	// its own database); for postgres, a URL or key=value string as pgx accepts it.
	DSN string `yaml:"dsn"`
	// DataDir holds the SQLite file when DSN is empty ("data" when empty too). It is created.
	DataDir string `yaml:"data_dir"`
	// MaxOpenConns bounds the pool (0: 16 for postgres; SQLite always uses a small pool).
	MaxOpenConns int `yaml:"max_open_conns"`
}

// DB is an open database. Use its embedded *sql.DB with queries written with "?" placeholders
// passed through Rebind; begin transactions and run autocommit writes with DB's own BeginTx and
// ExecContext, which queue this process's SQLite writers fairly (see BeginTx).
type DB struct {
	*sql.DB
	driver string
	// writers is SQLite's in-process write queue: a one-slot semaphore whose waiters are served
	// in arrival order. nil for PostgreSQL.
	writers chan struct{}
}

// BeginTx begins a transaction. On SQLite every transaction begins IMMEDIATE (it takes the
// database's write lock), and this process's writers first queue here, first come first served:
// SQLite's own busy handler polls with growing sleeps, so a writer that commits in a loop (the
// audit writer under load) can win the lock again and again while another (an erasure) times
// out. The queue slot is released when the transaction commits or rolls back. On PostgreSQL it
// is sql.DB's BeginTx.
func (db *DB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	release, err := db.queue(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := db.DB.BeginTx(ctx, opts)
	if err != nil {
		release()
		return nil, err
	}
	return &Tx{Tx: tx, release: release}, nil
}

// ExecContext runs a statement outside a transaction; on SQLite, a write waits its turn in the
// write queue (see BeginTx) first.
func (db *DB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	release, err := db.queue(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return db.DB.ExecContext(ctx, query, args...)
}

// queue waits for the SQLite write slot (or ctx) and returns its release; on PostgreSQL it
// returns at once.
func (db *DB) queue(ctx context.Context) (release func(), err error) {
	if db.writers == nil {
		return func() {}, nil
	}
	select {
	case db.writers <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-db.writers }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Tx is a transaction begun with DB.BeginTx. Commit or Rollback ends it (Rollback after Commit
// does nothing, as with sql.Tx) and gives up its place in the write queue.
type Tx struct {
	*sql.Tx
	release func()
}

// Commit commits the transaction.
func (tx *Tx) Commit() error {
	defer tx.release()
	return tx.Tx.Commit()
}

// Rollback aborts the transaction; after Commit it does nothing and returns sql.ErrTxDone.
func (tx *Tx) Rollback() error {
	defer tx.release()
	return tx.Tx.Rollback()
}

// Open connects to the database cfg names and checks it answers. SQLite files are opened in WAL
// mode with foreign keys on and a 15 s busy timeout.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	driver := cfg.Driver
	if driver == "" {
		driver = SQLite
	}
	var (
		db  *sql.DB
		err error
	)
	switch driver {
	case SQLite:
		db, err = openSQLite(cfg)
	case Postgres, "postgresql", "pgx":
		driver = Postgres
		if cfg.DSN == "" {
			return nil, errors.New("database.Open: postgres needs a dsn")
		}
		db, err = sql.Open("pgx", cfg.DSN)
		if err == nil {
			n := cfg.MaxOpenConns
			if n <= 0 {
				n = 16
			}
			db.SetMaxOpenConns(n)
			db.SetMaxIdleConns(n)
			db.SetConnMaxIdleTime(5 * time.Minute)
		}
	default:
		return nil, fmt.Errorf("database.Open: unknown driver %q (want sqlite or postgres)", cfg.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("database.Open %s: %w", driver, err)
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("database.Open %s: ping: %w", driver, err)
	}
	d := &DB{DB: db, driver: driver}
	if driver == SQLite {
		d.writers = make(chan struct{}, 1)
	}
	return d, nil
}

func openSQLite(cfg Config) (*sql.DB, error) {
	path := cfg.DSN
	if path == ":memory:" || strings.Contains(path, "mode=memory") {
		return nil, errors.New("in-memory SQLite is not supported; use a file (t.TempDir() in tests)")
	}
	if path == "" {
		dir := cfg.DataDir
		if dir == "" {
			dir = "data"
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir: %w", err)
		}
		path = filepath.Join(dir, DefaultFile)
	}
	path = strings.TrimPrefix(path, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i] // our pragmas replace any query
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(15000)", "foreign_keys(ON)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate") // writers take the lock at BEGIN: no upgrade deadlocks
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	// One writer at a time is SQLite's model; a few connections let readers proceed under WAL.
	n := cfg.MaxOpenConns
	if n <= 0 {
		n = 4
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	return db, nil
}

// Driver returns "sqlite" or "postgres".
func (db *DB) Driver() string { return db.driver }

// Rebind rewrites "?" placeholders for the driver: "$1", "$2", ... for PostgreSQL, unchanged for
// SQLite. Question marks inside single-quoted literals are left alone.
func (db *DB) Rebind(query string) string { return Rebind(db.driver, query) }

// Rebind is DB.Rebind for a driver name.
func Rebind(driver, query string) string {
	if driver != Postgres {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Blob is the column type for binary data: BLOB on SQLite, BYTEA on PostgreSQL.
func (db *DB) Blob() string {
	if db.driver == Postgres {
		return "BYTEA"
	}
	return "BLOB"
}
