// Package tiered composes the session tiers into one Store: memory (per instance) → Redis
// (shared) → SQL (archive). Any tier may be absent: memory alone is the embedded default,
// memory + SQLite keeps archived sessions across restarts, memory + Redis + SQL serves several
// instances.
//
// Reads go memory → Redis → SQL and promote a hit into the tiers above it. Writes are
// compare-and-set against the authoritative tier — Redis when configured; otherwise SQL for
// sessions the archive policy keeps, memory for the rest — and then go through to the other
// tiers: memory always, SQL when the policy archives the session (by default s.Archive; a
// session whose policy turns false is removed from SQL). Because the version is checked on
// every write, a stale copy can never overwrite a newer session: the write fails with
// ErrConflict and the caller reloads.
//
// With Redis, each instance subscribes to Redis invalidations and drops memory copies that
// another instance made stale; a reconnect of the subscription clears the memory tier. Between
// another instance's write and the arrival of its invalidation (pub/sub latency) a memory hit
// may be one version old; Config.StrictReads closes that window by checking the version in
// Redis on every memory hit (one HGET instead of a full read). Without Redis, instances do not
// share memory tiers: run one instance, or configure Redis.
//
// Serving reads from memory does not refresh the Redis TTL; writes do (each chat turn is one).
package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/sqlstore"
)

// Tier names, as in metrics and Stats.
const (
	TierMemory = "memory"
	TierRedis  = "redis"
	TierSQL    = "sql"
)

// Config lists the tiers (nil: absent; at least one) and the policies.
type Config struct {
	Memory *memstore.Store
	Redis  *redisstore.Store
	SQL    *sqlstore.Store
	// Archive reports whether a session is written to SQL when SQL is not its authoritative
	// tier. Default: s.Archive.
	Archive func(*session.Session) bool
	// StrictReads checks a memory hit's version against Redis before serving it.
	StrictReads bool
	// MeterProvider records the metrics (otel.GetMeterProvider() when nil).
	MeterProvider metric.MeterProvider
	// Logger reports write-through failures that do not fail the call (slog.Default() when nil).
	Logger *slog.Logger
}

var _ session.Store = (*Store)(nil)

// Store is the tiered session store, safe for concurrent use. Close it to stop the Redis
// subscription.
type Store struct {
	cfg   Config
	log   *slog.Logger
	stop  func()
	inval atomic.Uint64 // invalidations received; a change during a read forbids caching it

	mu   sync.Mutex
	hook func() // tests: called after each invalidation

	stats   stats
	lookups metric.Int64Counter
	promos  metric.Int64Counter
	reg     metric.Registration
}

type stats struct {
	hits, misses, promotions [3]atomic.Int64
	invalidations            atomic.Int64
	archiveErrors            atomic.Int64
}

// Stats are counters since New, per tier (indexes 0 memory, 1 Redis, 2 SQL).
type Stats struct {
	Hits, Misses, Promotions [3]int64
	Invalidations            int64 // received from other instances
	ArchiveErrors            int64 // write-through to SQL that failed after the write succeeded
}

// New returns the tiered store and, with memory and Redis, subscribes to invalidations (ctx
// bounds the subscription as well as Close).
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Memory == nil && cfg.Redis == nil && cfg.SQL == nil {
		return nil, errors.New("tiered.New: no tier configured")
	}
	if cfg.Archive == nil {
		cfg.Archive = func(s *session.Session) bool { return s.Archive }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	mp := cfg.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	t := &Store{cfg: cfg, log: cfg.Logger}
	if err := t.instrument(mp.Meter("github.com/switchyard/switchyard/internal/session/tiered")); err != nil {
		return nil, fmt.Errorf("tiered.New: metrics: %w", err)
	}
	if cfg.Memory != nil && cfg.Redis != nil {
		stop, err := cfg.Redis.Subscribe(ctx, t.onInvalidation)
		if err != nil {
			_ = t.reg.Unregister()
			return nil, fmt.Errorf("tiered.New: %w", err)
		}
		t.stop = stop
	}
	return t, nil
}

// Close stops the invalidation subscription and the metric callbacks. It does not close the
// tiers' clients.
func (t *Store) Close() error {
	if t.stop != nil {
		t.stop()
	}
	return t.reg.Unregister()
}

func (t *Store) instrument(m metric.Meter) error {
	var err error
	if t.lookups, err = m.Int64Counter("switchyard.session.lookups", metric.WithDescription("Session reads per tier, by result (hit or miss)")); err != nil {
		return err
	}
	if t.promos, err = m.Int64Counter("switchyard.session.promotions", metric.WithDescription("Sessions copied into a higher tier after a lower tier's hit, by destination tier")); err != nil {
		return err
	}
	evictions, err := m.Int64ObservableCounter("switchyard.session.evictions", metric.WithDescription("Sessions the memory tier dropped to stay within its bound"))
	if err != nil {
		return err
	}
	size, err := m.Int64ObservableGauge("switchyard.session.size", metric.WithDescription("Sessions held by the memory tier"))
	if err != nil {
		return err
	}
	invals, err := m.Int64ObservableCounter("switchyard.session.invalidations", metric.WithDescription("Invalidations received from other instances"))
	if err != nil {
		return err
	}
	archiveErrs, err := m.Int64ObservableCounter("switchyard.session.archive_errors", metric.WithDescription("Writes through to SQL that failed after the authoritative write succeeded"))
	if err != nil {
		return err
	}
	mem := metric.WithAttributes(attribute.String("tier", TierMemory))
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		if t.cfg.Memory != nil {
			st := t.cfg.Memory.Stats()
			o.ObserveInt64(evictions, st.Evictions, mem)
			o.ObserveInt64(size, int64(st.Sessions), mem)
		}
		o.ObserveInt64(invals, t.stats.invalidations.Load())
		o.ObserveInt64(archiveErrs, t.stats.archiveErrors.Load())
		return nil
	}, evictions, size, invals, archiveErrs)
	return err
}

var tierAttrs = [3]struct{ hit, miss, promo metric.MeasurementOption }{}

func init() {
	for i, name := range []string{TierMemory, TierRedis, TierSQL} {
		tierAttrs[i].hit = metric.WithAttributes(attribute.String("tier", name), attribute.String("result", "hit"))
		tierAttrs[i].miss = metric.WithAttributes(attribute.String("tier", name), attribute.String("result", "miss"))
		tierAttrs[i].promo = metric.WithAttributes(attribute.String("tier", name))
	}
}

func (t *Store) hit(ctx context.Context, tier int) {
	t.stats.hits[tier].Add(1)
	t.lookups.Add(ctx, 1, tierAttrs[tier].hit)
}

func (t *Store) miss(ctx context.Context, tier int) {
	t.stats.misses[tier].Add(1)
	t.lookups.Add(ctx, 1, tierAttrs[tier].miss)
}

func (t *Store) promoted(ctx context.Context, tier int) {
	t.stats.promotions[tier].Add(1)
	t.promos.Add(ctx, 1, tierAttrs[tier].promo)
}

// Stats returns the counters.
func (t *Store) Stats() Stats {
	var s Stats
	for i := range 3 {
		s.Hits[i] = t.stats.hits[i].Load()
		s.Misses[i] = t.stats.misses[i].Load()
		s.Promotions[i] = t.stats.promotions[i].Load()
	}
	s.Invalidations = t.stats.invalidations.Load()
	s.ArchiveErrors = t.stats.archiveErrors.Load()
	return s
}

func (t *Store) onInvalidation(inv redisstore.Invalidation) {
	t.inval.Add(1)
	t.stats.invalidations.Add(1)
	if inv.All {
		t.cfg.Memory.Clear()
	} else {
		t.cfg.Memory.Invalidate(inv.Tenant, inv.ID, inv.Version)
	}
	t.mu.Lock()
	hook := t.hook
	t.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// cache puts s into the memory tier unless an invalidation arrived since seq was read (the copy
// may then be stale), in which case it drops the session's memory copy instead.
func (t *Store) cache(s *session.Session, seq uint64) bool {
	if t.cfg.Memory == nil {
		return false
	}
	if t.inval.Load() != seq {
		t.cfg.Memory.Invalidate(s.Tenant, s.ID, 0)
		return false
	}
	return t.cfg.Memory.Put(s)
}

type authority int

const (
	authMemory authority = iota
	authRedis
	authSQL
)

func (t *Store) authority(s *session.Session) authority {
	switch {
	case t.cfg.Redis != nil:
		return authRedis
	case t.cfg.SQL != nil && (t.cfg.Archive(s) || t.cfg.Memory == nil):
		return authSQL
	default:
		return authMemory
	}
}

// Create implements session.Store.
func (t *Store) Create(ctx context.Context, s *session.Session) error {
	auth := t.authority(s)
	if t.cfg.SQL != nil && auth != authSQL {
		// The id may live on in the archive after expiring from the cache tiers.
		if _, err := t.cfg.SQL.Version(ctx, s.Tenant, s.ID); err == nil {
			return fmt.Errorf("tiered.Create %s: %w", s.ID, session.ErrExists)
		} else if !errors.Is(err, session.ErrNotFound) {
			return fmt.Errorf("tiered.Create: %w", err)
		}
	}
	seq := t.inval.Load()
	var err error
	switch auth {
	case authRedis:
		err = t.cfg.Redis.Create(ctx, s)
	case authSQL:
		err = t.cfg.SQL.Create(ctx, s)
	default:
		err = t.cfg.Memory.Create(ctx, s)
	}
	if err != nil {
		return fmt.Errorf("tiered.Create: %w", err)
	}
	t.writeThrough(ctx, auth, s, seq, true)
	return nil
}

// writeThrough copies s, just written to the authoritative tier, to the others. An updated
// session the policy does not archive is removed from SQL.
func (t *Store) writeThrough(ctx context.Context, auth authority, s *session.Session, seq uint64, created bool) {
	if auth != authMemory {
		t.cache(s, seq)
	}
	if t.cfg.SQL == nil || auth == authSQL {
		return
	}
	var err error
	if t.cfg.Archive(s) {
		err = t.cfg.SQL.Put(ctx, s)
	} else if !created {
		if err = t.cfg.SQL.Delete(ctx, s.Tenant, s.ID); errors.Is(err, session.ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		t.stats.archiveErrors.Add(1)
		t.log.WarnContext(ctx, "session archive write failed; the session is saved in the cache tiers", "session", s.ID, "err", err)
	}
}

// Get implements session.Store.
func (t *Store) Get(ctx context.Context, tenant, id string) (*session.Session, error) {
	if m := t.cfg.Memory; m != nil {
		s, err := m.Get(ctx, tenant, id)
		if err == nil && t.cfg.StrictReads && t.cfg.Redis != nil {
			v, verr := t.cfg.Redis.Version(ctx, tenant, id)
			if verr != nil && !errors.Is(verr, session.ErrNotFound) {
				return nil, fmt.Errorf("tiered.Get: %w", verr)
			}
			if verr != nil || v != s.Version {
				m.Invalidate(tenant, id, 0)
				s, err = nil, session.ErrNotFound
			}
		}
		if err == nil {
			t.hit(ctx, 0)
			return s, nil
		}
		t.miss(ctx, 0)
	}
	seq := t.inval.Load()
	if r := t.cfg.Redis; r != nil {
		s, err := r.Get(ctx, tenant, id)
		switch {
		case err == nil:
			t.hit(ctx, 1)
			if t.cache(s, seq) {
				t.promoted(ctx, 0)
			}
			return s, nil
		case !errors.Is(err, session.ErrNotFound):
			return nil, fmt.Errorf("tiered.Get: %w", err)
		}
		t.miss(ctx, 1)
	}
	if q := t.cfg.SQL; q != nil {
		s, err := q.Get(ctx, tenant, id)
		switch {
		case err == nil:
			t.hit(ctx, 2)
			if t.cfg.Redis != nil {
				ok, perr := t.cfg.Redis.Put(ctx, s)
				if perr != nil {
					return nil, fmt.Errorf("tiered.Get: promote: %w", perr)
				}
				if !ok { // Redis got a newer version meanwhile: serve that one
					return t.cfg.Redis.Get(ctx, tenant, id)
				}
				t.promoted(ctx, 1)
			}
			if t.cache(s, seq) {
				t.promoted(ctx, 0)
			}
			return s, nil
		case !errors.Is(err, session.ErrNotFound):
			return nil, fmt.Errorf("tiered.Get: %w", err)
		}
		t.miss(ctx, 2)
	}
	return nil, fmt.Errorf("tiered.Get %s: %w", id, session.ErrNotFound)
}

// Update implements session.Store.
func (t *Store) Update(ctx context.Context, s *session.Session) error {
	auth := t.authority(s)
	cacheOnly := auth == authMemory // the memory tier is the session's only copy
	seq := t.inval.Load()
	var err error
	switch auth {
	case authRedis:
		err = t.cfg.Redis.Update(ctx, s)
		if errors.Is(err, session.ErrNotFound) && t.cfg.SQL != nil {
			// Expired from Redis but archived: bring the archived version back, then CAS.
			err = t.promoteThen(ctx, s, func() error { return t.cfg.Redis.Update(ctx, s) })
		}
	case authSQL:
		err = t.cfg.SQL.Update(ctx, s)
		if errors.Is(err, session.ErrNotFound) && t.cfg.Memory != nil {
			err = t.cfg.Memory.Update(ctx, s) // archived from now on: writeThrough copies it
			auth = authMemory
		}
	default:
		err = t.cfg.Memory.Update(ctx, s)
		if errors.Is(err, session.ErrNotFound) && t.cfg.SQL != nil {
			err = t.cfg.SQL.Update(ctx, s) // evicted from memory, or no longer archived
			auth = authSQL
		}
	}
	if err != nil {
		if t.cfg.Memory != nil && !cacheOnly && (errors.Is(err, session.ErrConflict) || errors.Is(err, session.ErrNotFound)) {
			t.cfg.Memory.Invalidate(s.Tenant, s.ID, 0) // the cached copy is stale or gone
		}
		return fmt.Errorf("tiered.Update: %w", err)
	}
	if auth == authSQL && t.cfg.Memory != nil && !t.cfg.Archive(s) {
		// No longer archived: memory becomes authoritative, the archive copy goes.
		t.cache(s, seq)
		if err := t.cfg.SQL.Delete(ctx, s.Tenant, s.ID); err != nil {
			t.log.WarnContext(ctx, "session archive delete failed", "session", s.ID, "err", err)
		}
		return nil
	}
	t.writeThrough(ctx, auth, s, seq, false)
	return nil
}

// promoteThen copies the archived session into Redis if its version is s's, then runs update.
func (t *Store) promoteThen(ctx context.Context, s *session.Session, update func() error) error {
	a, err := t.cfg.SQL.Get(ctx, s.Tenant, s.ID)
	if err != nil {
		return err
	}
	if a.Version != s.Version {
		return fmt.Errorf("version %d, archived %d: %w", s.Version, a.Version, session.ErrConflict)
	}
	if _, err := t.cfg.Redis.Put(ctx, a); err != nil {
		return err
	}
	t.promoted(ctx, 1)
	return update()
}

// Delete implements session.Store: the session goes from every tier.
func (t *Store) Delete(ctx context.Context, tenant, id string) error {
	found := false
	del := func(err error) error {
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, session.ErrNotFound):
			return fmt.Errorf("tiered.Delete: %w", err)
		}
		return nil
	}
	if t.cfg.Redis != nil {
		if err := del(t.cfg.Redis.Delete(ctx, tenant, id)); err != nil {
			return err
		}
	}
	if t.cfg.SQL != nil {
		if err := del(t.cfg.SQL.Delete(ctx, tenant, id)); err != nil {
			return err
		}
	}
	if t.cfg.Memory != nil {
		if err := del(t.cfg.Memory.Delete(ctx, tenant, id)); err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("tiered.Delete %s: %w", id, session.ErrNotFound)
	}
	return nil
}

// sources are the tiers List merges: Redis (or, without it, memory) and SQL.
func (t *Store) sources() []session.Store {
	var out []session.Store
	switch {
	case t.cfg.Redis != nil:
		out = append(out, t.cfg.Redis)
	case t.cfg.Memory != nil:
		out = append(out, t.cfg.Memory)
	}
	if t.cfg.SQL != nil {
		out = append(out, t.cfg.SQL)
	}
	return out
}

// List implements session.Store, merging the tiers: a session in several tiers is listed once,
// in its newest version.
func (t *Store) List(ctx context.Context, tenant, user string, limit int, pageToken string) ([]*session.Session, string, error) {
	limit = session.Limit(limit)
	src := t.sources()
	if len(src) == 1 {
		out, next, err := src[0].List(ctx, tenant, user, limit, pageToken)
		if err != nil {
			return nil, "", fmt.Errorf("tiered.List: %w", err)
		}
		return out, next, nil
	}
	byID := map[string]*session.Session{}
	more := false
	for _, st := range src {
		page, next, err := st.List(ctx, tenant, user, limit, pageToken)
		if err != nil {
			return nil, "", fmt.Errorf("tiered.List: %w", err)
		}
		more = more || next != ""
		for _, s := range page {
			if cur, ok := byID[s.ID]; !ok || cur.Version < s.Version {
				byID[s.ID] = s
			}
		}
	}
	out := make([]*session.Session, 0, len(byID))
	for _, s := range byID {
		out = append(out, s)
	}
	session.SortNewest(out)
	out, next := session.Page(out, limit, more)
	return out, next, nil
}

// DeleteUser implements session.Store: every session of the user goes from every tier. It
// returns the number of distinct sessions.
func (t *Store) DeleteUser(ctx context.Context, tenant, user string) (int, error) {
	ids := map[string]bool{}
	for _, st := range t.sources() {
		tok := ""
		for {
			page, next, err := st.List(ctx, tenant, user, 1000, tok)
			if err != nil {
				return 0, fmt.Errorf("tiered.DeleteUser: %w", err)
			}
			for _, s := range page {
				ids[s.ID] = true
			}
			if next == "" {
				break
			}
			tok = next
		}
	}
	var tiers []session.Store
	if t.cfg.Redis != nil {
		tiers = append(tiers, t.cfg.Redis)
	}
	if t.cfg.SQL != nil {
		tiers = append(tiers, t.cfg.SQL)
	}
	if t.cfg.Memory != nil {
		tiers = append(tiers, t.cfg.Memory)
	}
	for _, st := range tiers {
		if _, err := st.DeleteUser(ctx, tenant, user); err != nil {
			return 0, fmt.Errorf("tiered.DeleteUser: %w", err)
		}
	}
	return len(ids), nil
}
