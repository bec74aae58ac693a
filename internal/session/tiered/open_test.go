package tiered_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/switchyard/switchyard/internal/redisx/redistest"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session/sessiontest"
	"github.com/switchyard/switchyard/internal/session/tiered"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	var k [32]byte
	_, _ = rand.Read(k[:])
	keys := seal.Config{Keys: []seal.Key{{ID: "k1", Key: base64.StdEncoding.EncodeToString(k[:]), Primary: true}}}
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)

	memoryOnly := tiered.Settings{}
	withSQLite := tiered.Settings{ArchiveAll: true}
	withSQLite.SQL.Driver, withSQLite.SQL.DataDir = "sqlite", t.TempDir()
	full := withSQLite
	full.Redis.Addrs, full.Redis.Prefix, full.Encryption = []string{redistest.Addr()}, prefix, keys
	badKey := tiered.Settings{Encryption: seal.Config{Keys: []seal.Key{{ID: "k", Key: "short", Primary: true}}}}
	noTier := tiered.Settings{}
	noTier.Memory.Disabled = true

	cases := []struct {
		name   string
		s      tiered.Settings
		wantOK bool
	}{
		{"memory only", memoryOnly, true},
		{"memory and sqlite", withSQLite, true},
		{"memory, redis and sqlite, encrypted", full, true},
		{"bad key", badKey, false},
		{"no tier", noTier, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, closeFn, err := tiered.Open(ctx, c.s, nil, nil)
			if !c.wantOK {
				if err == nil {
					_ = closeFn()
					t.Fatal("Open succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := sessiontest.NewSession("t", "u")
			if err := st.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Get(ctx, "t", s.ID); err != nil {
				t.Fatal(err)
			}
			if err := closeFn(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
}
