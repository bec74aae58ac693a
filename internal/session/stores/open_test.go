package stores_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/redisx"
	"github.com/switchyard/switchyard/internal/redisx/redistest"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session/sessiontest"
	"github.com/switchyard/switchyard/internal/session/stores"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	var k [32]byte
	_, _ = rand.Read(k[:])
	keys := seal.Config{Keys: []seal.Key{{ID: "k1", Key: base64.StdEncoding.EncodeToString(k[:]), Primary: true}}}
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	sqlite := func() *database.Config { return &database.Config{Driver: database.SQLite, DataDir: t.TempDir()} }
	redis := &redisx.Config{Addrs: []string{redistest.Addr()}}

	cases := []struct {
		name string
		s    stores.Settings
		want string // the store's type; "" when Open must fail
	}{
		{"memory only", stores.Settings{Memory: true}, "*memstore.Store"},
		{"redis only", stores.Settings{Redis: redis, RedisPrefix: prefix}, "*redisstore.Store"},
		{"sqlite only", stores.Settings{SQL: sqlite()}, "*sqlstore.Store"},
		{"memory and sqlite", stores.Settings{Memory: true, SQL: sqlite(), ArchiveAll: true}, "*tiered.Store"},
		{"memory, redis and sqlite, encrypted", stores.Settings{Memory: true, Redis: redis, RedisPrefix: prefix,
			SQL: sqlite(), ArchiveAll: true, Encryption: keys}, "*tiered.Store"},
		{"bad key", stores.Settings{Memory: true, Encryption: seal.Config{Keys: []seal.Key{{ID: "k", Key: "short", Primary: true}}}}, ""},
		{"no tier", stores.Settings{}, ""},
		{"dead redis", stores.Settings{Memory: true, Redis: &redisx.Config{Addrs: []string{"127.0.0.1:1"}}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, closeFn, err := stores.Open(ctx, c.s)
			if c.want == "" {
				if err == nil {
					_ = closeFn()
					t.Fatal("Open succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%T", st); got != c.want {
				t.Errorf("store is a %s; want a %s", got, c.want)
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

func TestOpenNamesTheDeadRedis(t *testing.T) {
	_, _, err := stores.Open(context.Background(), stores.Settings{Redis: &redisx.Config{Addrs: []string{"127.0.0.1:1"}}})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Open with a dead Redis = %v; want an error naming the address", err)
	}
}
