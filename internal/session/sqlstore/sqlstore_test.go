package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/sessiontest"
	"github.com/switchyard/switchyard/internal/session/sqlstore"
)

func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(testing.TB) *database.DB
	}{{"sqlite", dbtest.SQLite}, {"postgres", dbtest.Postgres}} {
		t.Run(tc.name, func(t *testing.T) {
			sessiontest.Run(t, func(t *testing.T, c *sessiontest.Clock) session.Store {
				st, err := sqlstore.New(context.Background(), tc.open(t), sessiontest.Keys(t), sqlstore.WithClock(c.Now))
				if err != nil {
					t.Fatal(err)
				}
				return st
			})
		})
	}
}

func TestEncryptedAtRestAndRotation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		key1, key2 := sessiontest.Key("k1", true), sessiontest.Key("k2", true)
		old, _ := seal.New(seal.Config{Keys: []seal.Key{key1}})
		st, err := sqlstore.New(ctx, db, old)
		if err != nil {
			t.Fatal(err)
		}
		s := sessiontest.NewSession("t", "u")
		s.SystemPrompt = "top secret prompt"
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		var keyID string
		var data []byte
		if err := db.QueryRowContext(ctx, db.Rebind("SELECT key_id, data FROM sessions WHERE id = ?"), s.ID).Scan(&keyID, &data); err != nil {
			t.Fatal(err)
		}
		if keyID != "k1" || len(data) == 0 || contains(data, "top secret") {
			t.Errorf("stored row: key %q, %d bytes, plaintext visible %v", keyID, len(data), contains(data, "top secret"))
		}
		key1.Primary = false
		rotated, _ := seal.New(seal.Config{Keys: []seal.Key{key1, key2}})
		st2, err := sqlstore.New(ctx, db, rotated) // migrations again: a no-op
		if err != nil {
			t.Fatal(err)
		}
		got, err := st2.Get(ctx, "t", s.ID)
		if err != nil || got.SystemPrompt != s.SystemPrompt {
			t.Fatalf("old record under the rotated key set: %v", err)
		}
		if err := st2.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, db.Rebind("SELECT key_id FROM sessions WHERE id = ?"), s.ID).Scan(&keyID); err != nil || keyID != "k2" {
			t.Errorf("after an update the record uses key %q (%v), want k2", keyID, err)
		}
		if _, err := st.Get(ctx, "t", s.ID); !errors.Is(err, seal.ErrUnknownKey) {
			t.Errorf("a store without k2 reading a k2 record: %v, want ErrUnknownKey", err)
		}
	})
}

func TestPut(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.New(ctx, dbtest.SQLite(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := sessiontest.NewSession("t", "u")
	s.Version = 5
	if err := st.Put(ctx, s); err != nil {
		t.Fatal(err)
	}
	older := s.Clone()
	older.Version, older.SystemPrompt = 4, "older"
	if err := st.Put(ctx, older); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, "t", s.ID); err != nil || got.Version != 5 || got.SystemPrompt != s.SystemPrompt {
		t.Errorf("after putting an older version: %+v, %v", got, err)
	}
	newer := s.Clone()
	newer.Version, newer.SystemPrompt = 6, "newer"
	if err := st.Put(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, "t", s.ID); err != nil || got.Version != 6 || got.SystemPrompt != "newer" {
		t.Errorf("after putting a newer version: %+v, %v", got, err)
	}
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
