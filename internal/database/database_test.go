package database_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
)

func TestRebind(t *testing.T) {
	cases := []struct{ driver, in, want string }{
		{database.SQLite, "SELECT a FROM t WHERE a = ? AND b = ?", "SELECT a FROM t WHERE a = ? AND b = ?"},
		{database.Postgres, "SELECT a FROM t WHERE a = ? AND b = ?", "SELECT a FROM t WHERE a = $1 AND b = $2"},
		{database.Postgres, "SELECT '?' FROM t WHERE a = ?", "SELECT '?' FROM t WHERE a = $1"},
		{database.Postgres, "SELECT 1", "SELECT 1"},
	}
	for _, c := range cases {
		if got := database.Rebind(c.driver, c.in); got != c.want {
			t.Errorf("Rebind(%s, %q) = %q, want %q", c.driver, c.in, got, c.want)
		}
	}
}

func TestMigrations(t *testing.T) {
	fsys := fstest.MapFS{
		"0002_b.sql":          {Data: []byte("B")},
		"0001_a.sql":          {Data: []byte("A")},
		"0001_a.postgres.sql": {Data: []byte("A-pg")},
		"0003_c.sqlite.sql":   {Data: []byte("C-lite")},
		"README.md":           {Data: []byte("ignored")},
	}
	cases := []struct {
		driver string
		want   []string
	}{
		{database.SQLite, []string{"A", "B", "C-lite"}},
		{database.Postgres, []string{"A-pg", "B"}},
	}
	for _, c := range cases {
		migs, err := database.Migrations(fsys, c.driver)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range migs {
			got = append(got, m.SQL)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%s: got %q, want %q", c.driver, got, c.want)
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: got %q, want %q", c.driver, got, c.want)
			}
		}
	}
	if _, err := database.Migrations(fstest.MapFS{"x.sql": {Data: []byte("")}}, database.SQLite); err == nil {
		t.Error("a file without a version was accepted")
	}
	if _, err := database.Migrations(fstest.MapFS{"1_a.sql": {}, "01_b.sql": {}}, database.SQLite); err == nil {
		t.Error("two files with one version were accepted")
	}
}

var testMigrations = fstest.MapFS{
	"0001_items.sql": {Data: []byte("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\nCREATE INDEX items_name ON items (name);\n")},
	"0002_more.sql":  {Data: []byte("ALTER TABLE items ADD COLUMN note TEXT;\n")},
}

func TestMigrate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		// Several instances starting at once, then again: each migration applies exactly once.
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() { errs <- db.Migrate(ctx, "items", testMigrations) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Migrate(ctx, "items", testMigrations); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, db.Rebind("SELECT count(*) FROM schema_migrations WHERE component = ?"), "items").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("schema_migrations has %d rows for items, want 2", n)
		}
		if _, err := db.ExecContext(ctx, db.Rebind("INSERT INTO items (id, name, note) VALUES (?, ?, ?)"), 1, "a", "n"); err != nil {
			t.Fatalf("migrated table is unusable: %v", err)
		}
		// A failing migration leaves nothing behind.
		bad := fstest.MapFS{"0001_ok.sql": {Data: []byte("CREATE TABLE ok1 (id INTEGER);\n")}, "0002_bad.sql": {Data: []byte("CREATE TABLE nope (;\n")}}
		if err := db.Migrate(ctx, "bad", bad); err == nil {
			t.Fatal("a broken migration succeeded")
		}
		if err := db.QueryRowContext(ctx, db.Rebind("SELECT count(*) FROM schema_migrations WHERE component = ?"), "bad").Scan(&n); err != nil || n != 0 {
			t.Errorf("after a failed migration: %d rows recorded (err %v), want 0", n, err)
		}
	})
}

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []database.Config{{Driver: "mysql"}, {Driver: "sqlite", DSN: ":memory:"}, {Driver: "postgres"}} {
		if db, err := database.Open(ctx, cfg); err == nil {
			_ = db.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestOpenDefaultFile(t *testing.T) {
	dir := t.TempDir()
	db, err := database.Open(context.Background(), database.Config{DataDir: dir + "/sub"})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	var fk int
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (%v), want 1", fk, err)
	}
}

// TestSQLiteWriteQueue: this process's SQLite writers are served in arrival order, a commit or
// rollback frees the slot exactly once, and a writer waiting for the slot gives up with its context.
func TestSQLiteWriteQueue(t *testing.T) {
	ctx := context.Background()
	db, err := database.Open(ctx, database.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE q (n INTEGER)"); err != nil {
		t.Fatal(err)
	}
	first, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Waiters arrive one after another while first holds the slot.
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
	)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			if _, err := tx.ExecContext(ctx, "INSERT INTO q VALUES (?)", i); err != nil {
				t.Error(err)
			}
			if err := tx.Commit(); err != nil {
				t.Error(err)
			}
			_ = tx.Rollback() // after Commit: must not free the slot a second time
		}()
		time.Sleep(50 * time.Millisecond) // let it queue before the next one arrives
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := db.BeginTx(short, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("BeginTx while the slot is held, context ending: %v, want DeadlineExceeded", err)
	}
	if err := first.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if want := []int{0, 1, 2}; !slices.Equal(order, want) {
		t.Errorf("writers served in order %v, want %v", order, want)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM q").Scan(&n); err != nil || n != 3 {
		t.Errorf("rows = %d (%v), want 3", n, err)
	}
	// The slot is free again: one more writer gets it at once.
	again, cancel2 := context.WithTimeout(ctx, 5*time.Second)
	defer cancel2()
	tx, err := db.BeginTx(again, nil)
	if err != nil {
		t.Fatalf("the slot was not freed after every writer ended: %v", err)
	}
	_ = tx.Rollback()
}
