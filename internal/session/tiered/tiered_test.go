package tiered_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
	"github.com/switchyard/switchyard/internal/redisx/redistest"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/sessiontest"
	"github.com/switchyard/switchyard/internal/session/sqlstore"
	"github.com/switchyard/switchyard/internal/session/tiered"
)

// combo describes which tiers a tiered store gets.
type combo struct {
	name      string
	memory    bool
	redis     func(testing.TB) redis.UniversalClient // nil: no Redis
	sql       func(testing.TB) *database.DB          // nil: no SQL
	archive   func(*session.Session) bool
	strict    bool
	expires   bool
	longTests bool
}

func (c combo) build(t testing.TB, clock func() time.Time) *tiered.Store {
	ctx := context.Background()
	keys := sessiontest.Keys(t)
	var cfg tiered.Config
	if c.memory {
		cfg.Memory = memstore.New(memstore.WithClock(clock))
	}
	if c.redis != nil {
		rdb := c.redis(t)
		cfg.Redis = redisstore.New(rdb, keys, redisstore.WithPrefix(redistest.Prefix(t, rdb)), redisstore.WithClock(clock))
	}
	if c.sql != nil {
		st, err := sqlstore.New(ctx, c.sql(t), keys, sqlstore.WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		cfg.SQL = st
	}
	cfg.Archive, cfg.StrictReads = c.archive, c.strict
	st, err := tiered.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func archiveAll(*session.Session) bool { return true }

func TestContract(t *testing.T) {
	sqlite := func(t testing.TB) *database.DB { return dbtest.SQLite(t) }
	combos := []combo{
		{name: "memory", memory: true, expires: true},
		{name: "sqlite", sql: sqlite},
		{name: "memory+sqlite", memory: true, sql: sqlite},
		{name: "memory+sqlite/archive-all", memory: true, sql: sqlite, archive: archiveAll},
		{name: "redis", redis: redistest.Client},
		{name: "memory+redis", memory: true, redis: redistest.Client},
		{name: "memory+redis/strict", memory: true, redis: redistest.Client, strict: true},
		{name: "memory+redis+sqlite", memory: true, redis: redistest.Client, sql: sqlite},
		{name: "memory+redis+sqlite/archive-all", memory: true, redis: redistest.Client, sql: sqlite, archive: archiveAll},
		{name: "redis+postgres/archive-all", redis: redistest.Client, sql: dbtest.Postgres, archive: archiveAll},
		{name: "memory+redis+postgres", memory: true, redis: redistest.Client, sql: dbtest.Postgres},
		{name: "memory+rediscluster+sqlite/archive-all", memory: true, redis: redistest.Cluster, sql: sqlite, archive: archiveAll, longTests: true},
	}
	for _, c := range combos {
		t.Run(c.name, func(t *testing.T) {
			if c.longTests && testing.Short() {
				t.Skip("starts a local Redis Cluster")
			}
			var opts []sessiontest.Option
			if c.expires {
				opts = append(opts, sessiontest.Expires())
			}
			if c.redis != nil {
				// One client for the subtests (a cluster takes seconds to start).
				rdb := c.redis(t)
				c.redis = func(testing.TB) redis.UniversalClient { return rdb }
			}
			sessiontest.Run(t, func(t *testing.T, clock *sessiontest.Clock) session.Store {
				return c.build(t, clock.Now)
			}, opts...)
		})
	}
}

// instances are two gateway instances: their own memory tiers, a shared Redis and database.
type instances struct {
	a, b       *tiered.Store
	aSQL       *sqlstore.Store
	rdb        redis.UniversalClient
	prefix     string
	newOnShare func(strict bool) *tiered.Store
}

func twoInstances(t *testing.T, strict bool) *instances {
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	db := dbtest.SQLite(t)
	keys := sessiontest.Keys(t)
	in := &instances{rdb: rdb, prefix: prefix}
	in.newOnShare = func(strict bool) *tiered.Store {
		q, err := sqlstore.New(ctx, db, keys)
		if err != nil {
			t.Fatal(err)
		}
		st, err := tiered.New(ctx, tiered.Config{
			Memory: memstore.New(), Redis: redisstore.New(rdb, keys, redisstore.WithPrefix(prefix)), SQL: q, StrictReads: strict,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		in.aSQL = q
		return st
	}
	in.a, in.b = in.newOnShare(strict), in.newOnShare(strict)
	return in
}

func (in *instances) flushRedis(t *testing.T) {
	ctx := context.Background()
	keys, err := in.rdb.Keys(ctx, in.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) > 0 {
		if err := in.rdb.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func appendTurn(t *testing.T, st *tiered.Store, s *session.Session, text string) {
	t.Helper()
	s.Turns++
	s.History = append(s.History, session.Entry{Turn: s.Turns})
	s.History[len(s.History)-1].Message.Role = "user"
	s.Metadata["last"] = text
	if err := st.Update(context.Background(), s); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func TestSecondInstanceSeesNewerVersion(t *testing.T) {
	ctx := context.Background()
	in := twoInstances(t, false)
	invalidated := make(chan struct{}, 16)
	tiered.OnInvalidation(in.b, func() { invalidated <- struct{}{} })

	s := sessiontest.NewSession("acme", "alice")
	if err := in.a.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	onB, err := in.b.Get(ctx, "acme", s.ID) // B caches version 1
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.b.Get(ctx, "acme", s.ID); err != nil {
		t.Fatal(err)
	}
	if st := in.b.Stats(); st.Hits[0] != 1 || st.Hits[1] != 1 || st.Promotions[0] != 1 {
		t.Errorf("B's stats after two reads = %+v, want one Redis hit promoted, then one memory hit", st)
	}

	appendTurn(t, in.a, s, "from A") // version 2
	select {
	case <-invalidated:
	case <-time.After(5 * time.Second):
		t.Fatal("B received no invalidation")
	}
	got, err := in.b.Get(ctx, "acme", s.ID)
	if err != nil || got.Version != 2 || got.Metadata["last"] != "from A" {
		t.Fatalf("B after A's turn: version %d, %v; want 2", got.Version, err)
	}

	// B's stale copy cannot overwrite A's turn.
	onB.Metadata["last"] = "stale B"
	if err := in.b.Update(ctx, onB); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("B updating its stale copy: %v, want ErrConflict", err)
	}
	invalidatedA := make(chan struct{}, 16)
	tiered.OnInvalidation(in.a, func() { invalidatedA <- struct{}{} })
	appendTurn(t, in.b, got, "from B") // version 3
	select {
	case <-invalidatedA:
	case <-time.After(5 * time.Second):
		t.Fatal("A received no invalidation")
	}
	if got, err := in.a.Get(ctx, "acme", s.ID); err != nil || got.Version != 3 || got.Metadata["last"] != "from B" {
		t.Errorf("A after B's turn: %+v, %v; want version 3", got, err)
	}
	select {
	case <-invalidated:
		t.Error("B received an invalidation for its own write")
	default:
	}
}

func TestStrictReadsNeverServeStale(t *testing.T) {
	ctx := context.Background()
	in := twoInstances(t, true)
	s := sessiontest.NewSession("acme", "alice")
	if err := in.a.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := in.b.Get(ctx, "acme", s.ID); err != nil { // cached on B
			t.Fatal(err)
		}
		appendTurn(t, in.a, s, "turn")
		got, err := in.b.Get(ctx, "acme", s.ID) // no waiting for the invalidation
		if err != nil || got.Version != s.Version {
			t.Fatalf("round %d: B read version %d (%v) right after A wrote %d", i, got.Version, err, s.Version)
		}
	}
}

func TestArchiveSurvivesRedisFlushAndRestart(t *testing.T) {
	ctx := context.Background()
	in := twoInstances(t, false)
	kept := sessiontest.NewSession("acme", "alice")
	kept.Archive = true
	lost := sessiontest.NewSession("acme", "alice")
	for _, s := range []*session.Session{kept, lost} {
		if err := in.a.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	appendTurn(t, in.a, kept, "archived turn")
	if _, err := in.aSQL.Get(ctx, "acme", lost.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("a session without Archive reached SQL: %v", err)
	}

	in.flushRedis(t)
	fresh := in.newOnShare(false) // a restarted instance: empty memory
	got, err := fresh.Get(ctx, "acme", kept.ID)
	if err != nil || got.Version != 2 || got.Metadata["last"] != "archived turn" {
		t.Fatalf("archived session after a Redis flush and a restart: %+v, %v", got, err)
	}
	if st := fresh.Stats(); st.Hits[2] != 1 || st.Promotions[1] != 1 || st.Promotions[0] != 1 {
		t.Errorf("stats = %+v, want an SQL hit promoted to Redis and memory", st)
	}
	if _, err := fresh.Get(ctx, "acme", lost.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("non-archived session after a Redis flush: %v, want ErrNotFound", err)
	}
	appendTurn(t, fresh, got, "after restart")
	list, _, err := fresh.List(ctx, "acme", "alice", 10, "")
	if err != nil || len(list) != 1 || list[0].Version != 3 {
		t.Errorf("List after restart: %d sessions, %v", len(list), err)
	}

	// Expired from Redis (not flushed this time) then continued: promoted, then CAS.
	in.flushRedis(t)
	other := in.newOnShare(false)
	got.Metadata["last"] = "after expiry"
	if err := other.Update(ctx, got); err != nil || got.Version != 4 {
		t.Fatalf("Update of an archived session absent from Redis: version %d, %v", got.Version, err)
	}
	stale := got.Clone()
	stale.Version = 2
	in.flushRedis(t)
	if err := other.Update(ctx, stale); !errors.Is(err, session.ErrConflict) {
		t.Errorf("stale Update of an archived session absent from Redis: %v, want ErrConflict", err)
	}

	// Turning Archive off removes the archived copy.
	got.Archive = false
	if err := in.b.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := in.aSQL.Get(ctx, "acme", kept.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("archive copy after Archive turned off: %v, want ErrNotFound", err)
	}
}

func TestMemoryAndSQLArchivePolicy(t *testing.T) {
	ctx := context.Background()
	db := dbtest.SQLite(t)
	q, err := sqlstore.New(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tiered.New(ctx, tiered.Config{Memory: memstore.New(), SQL: q})
	if err != nil {
		t.Fatal(err)
	}
	s := sessiontest.NewSession("t", "u")
	if err := st.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Get(ctx, "t", s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("non-archived session in SQL: %v", err)
	}
	s.Archive = true // archived from now on: the write goes to SQL
	if err := st.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got, err := q.Get(ctx, "t", s.ID); err != nil || got.Version != 2 {
		t.Fatalf("after Archive turned on, SQL holds %+v, %v", got, err)
	}
	// A restart keeps it (new memory tier over the same file).
	st2, err := tiered.New(ctx, tiered.Config{Memory: memstore.New(), SQL: q})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st2.Get(ctx, "t", s.ID)
	if err != nil || got.Version != 2 {
		t.Fatalf("after a restart: %+v, %v", got, err)
	}
	got.Archive = false
	if err := st2.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Get(ctx, "t", s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("after Archive turned off, SQL still holds it: %v", err)
	}
	if got, err := st2.Get(ctx, "t", s.ID); err != nil || got.Version != 3 {
		t.Errorf("after Archive turned off, memory holds %+v, %v", got, err)
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	st, err := tiered.New(ctx, tiered.Config{Memory: memstore.New(memstore.WithMaxSessions(1)), MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, b := sessiontest.NewSession("t", "u"), sessiontest.NewSession("t", "u")
	for _, s := range []*session.Session{a, b} { // b evicts a
		if err := st.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = st.Get(ctx, "t", a.ID)
	_, _ = st.Get(ctx, "t", b.ID)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					r, _ := p.Attributes.Value("result")
					got[m.Name+"/"+r.AsString()] += p.Value
				}
			case metricdata.Gauge[int64]:
				for _, p := range d.DataPoints {
					got[m.Name] += p.Value
				}
			}
		}
	}
	want := map[string]int64{
		"switchyard.session.lookups/hit":    1,
		"switchyard.session.lookups/miss":   1,
		"switchyard.session.evictions/":     1,
		"switchyard.session.size":           1,
		"switchyard.session.invalidations/": 0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
}
