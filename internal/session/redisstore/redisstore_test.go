package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/redisx/redistest"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/sessiontest"
)

func newStore(rdb redis.UniversalClient) sessiontest.NewStore {
	return func(t *testing.T, c *sessiontest.Clock) session.Store {
		return redisstore.New(rdb, sessiontest.Keys(t), redisstore.WithPrefix(redistest.Prefix(t, rdb)), redisstore.WithClock(c.Now))
	}
}

func TestContract(t *testing.T) {
	sessiontest.Run(t, newStore(redistest.Client(t)))
}

func TestContractCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local Redis Cluster")
	}
	sessiontest.Run(t, newStore(redistest.Cluster(t)))
}

func TestTTLAndEncryption(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	p := redistest.Prefix(t, rdb)
	st := redisstore.New(rdb, sessiontest.Keys(t), redisstore.WithPrefix(p))
	s := sessiontest.NewSession("acme", "alice")
	s.TTL = 90 * time.Second
	s.SystemPrompt = "top secret prompt"
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	rec := p + "{acme}:s:" + s.ID
	ttl, err := rdb.PTTL(ctx, rec).Result()
	if err != nil || ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Errorf("record TTL %v (%v), want about 90 s", ttl, err)
	}
	for _, k := range []string{p + "{acme}:u:alice", p + "{acme}:all"} {
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 80*time.Second {
			t.Errorf("index %s TTL %v (%v), want at least the record's", k, ttl, err)
		}
	}
	d, err := rdb.HGet(ctx, rec, "d").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if string(d[1:1+d[0]]) != "test" || containsStr(d, "top secret") {
		t.Errorf("stored value: key id %q, plaintext visible %v", d[1:1+d[0]], containsStr(d, "top secret"))
	}
	// A read slides the expiry back up.
	rdb.PExpire(ctx, rec, 10*time.Second)
	if _, err := st.Get(ctx, "acme", s.ID); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.PTTL(ctx, rec).Result(); ttl <= 80*time.Second {
		t.Errorf("after a read the TTL is %v, want about 90 s", ttl)
	}
	// An expired record disappears from List too.
	rdb.Del(ctx, rec)
	if list, _, err := st.List(ctx, "acme", "alice", 10, ""); err != nil || len(list) != 0 {
		t.Errorf("List after the record expired: %d, %v", len(list), err)
	}
	if n, _ := rdb.ZCard(ctx, p+"{acme}:u:alice").Result(); n != 0 {
		t.Errorf("the user index still lists %d expired ids", n)
	}
}

func TestInvalidations(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	p := redistest.Prefix(t, rdb)
	a := redisstore.New(rdb, nil, redisstore.WithPrefix(p))
	b := redisstore.New(rdb, nil, redisstore.WithPrefix(p))
	got := make(chan redisstore.Invalidation, 16)
	stop, err := a.Subscribe(ctx, func(inv redisstore.Invalidation) { got <- inv })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	s := sessiontest.NewSession("we{ird}\nten", "alice")
	if err := b.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, s); err != nil { // a's own write: not delivered to a
		t.Fatal(err)
	}
	if err := b.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, s.Tenant, s.ID); err != nil {
		t.Fatal(err)
	}
	want := []redisstore.Invalidation{{Tenant: s.Tenant, ID: s.ID, Version: 3}, {Tenant: s.Tenant, ID: s.ID}}
	for i, w := range want {
		select {
		case inv := <-got:
			if inv != w {
				t.Errorf("invalidation %d = %+v, want %+v", i, inv, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("invalidation %d did not arrive", i)
		}
	}
	if err := b.Create(ctx, sessiontest.NewSession("t", "bob")); err != nil {
		t.Fatal(err)
	}
	if n, err := b.DeleteUser(ctx, "t", "bob"); err != nil || n != 1 {
		t.Fatalf("DeleteUser: %d, %v", n, err)
	}
	select {
	case inv := <-got:
		if inv.Tenant != "t" || inv.Version != 0 || inv.ID == "" {
			t.Errorf("DeleteUser invalidation = %+v", inv)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("DeleteUser's invalidation did not arrive")
	}
}

func TestPut(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	st := redisstore.New(rdb, nil, redisstore.WithPrefix(redistest.Prefix(t, rdb)))
	s := sessiontest.NewSession("t", "u")
	s.Version, s.UpdatedAt = 4, time.Now().UTC().Truncate(time.Millisecond)
	for _, c := range []struct {
		version int64
		want    bool
	}{{4, true}, {3, false}, {4, false}, {5, true}} {
		p := s.Clone()
		p.Version = c.version
		if ok, err := st.Put(ctx, p); err != nil || ok != c.want {
			t.Errorf("Put version %d: %v, %v; want %v", c.version, ok, err, c.want)
		}
	}
	if got, err := st.Get(ctx, "t", s.ID); err != nil || got.Version != 5 {
		t.Errorf("after puts: %+v, %v", got, err)
	}
	if err := st.Update(ctx, s); !errors.Is(err, session.ErrConflict) {
		t.Errorf("Update at an old version after Put: %v", err)
	}
}

func containsStr(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }
