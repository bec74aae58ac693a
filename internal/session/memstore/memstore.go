// Package memstore keeps sessions in process memory: bounded (least recently used sessions are
// evicted beyond the limit) with a sliding TTL. Alone it is the embedded default for a single
// instance; in a tiered store it is the per-instance cache in front of Redis and SQL.
package memstore

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/switchyard/switchyard/internal/session"
)

// DefaultMaxSessions bounds a store created without WithMaxSessions.
const DefaultMaxSessions = 10000

var _ session.Store = (*Store)(nil)

// Store is an in-memory session store, safe for concurrent use. It holds copies: callers never
// share a *Session with it.
type Store struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu       sync.Mutex
	lru      *list.List // of *entry, most recently used first
	items    map[key]*list.Element
	byTenant map[string]map[string]*list.Element
	evicted  int64
	expired  int64
	swept    time.Time // the last full sweep of expired sessions (sweepLocked)
}

// sweepInterval is how often an insert also scans the whole store for expired sessions, for
// those the tail sweep does not reach (sessions with a longer TTL of their own can sit behind).
const sweepInterval = time.Minute

type key struct{ tenant, id string }

type entry struct {
	k       key
	s       *session.Session
	expires time.Time
}

// Option configures a Store.
type Option func(*Store)

// WithMaxSessions bounds the number of sessions held (DefaultMaxSessions when n <= 0).
func WithMaxSessions(n int) Option { return func(s *Store) { s.max = n } }

// WithTTL sets the sliding expiry of sessions whose TTL is 0 (session.DefaultTTL otherwise).
func WithTTL(d time.Duration) Option { return func(s *Store) { s.ttl = d } }

// WithClock sets the clock for timestamps and expiry (time.Now by default).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{lru: list.New(), items: map[key]*list.Element{}, byTenant: map[string]map[string]*list.Element{}}
	for _, o := range opts {
		o(s)
	}
	if s.max <= 0 {
		s.max = DefaultMaxSessions
	}
	if s.ttl <= 0 {
		s.ttl = session.DefaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Create implements session.Store.
func (m *Store) Create(_ context.Context, s *session.Session) error {
	now := session.Now(m.now)
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.lookup(key{s.Tenant, s.ID}, now); e != nil {
		return fmt.Errorf("memstore.Create %s: %w", s.ID, session.ErrExists)
	}
	s.Version = 1
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	s.UpdatedAt = now
	m.insert(s.Clone(), now)
	return nil
}

// Get implements session.Store; a hit extends the session's expiry.
func (m *Store) Get(_ context.Context, tenant, id string) (*session.Session, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.lookup(key{tenant, id}, now)
	if e == nil {
		return nil, fmt.Errorf("memstore.Get %s: %w", id, session.ErrNotFound)
	}
	return e.s.Clone(), nil
}

// Update implements session.Store.
func (m *Store) Update(_ context.Context, s *session.Session) error {
	now := session.Now(m.now)
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.lookup(key{s.Tenant, s.ID}, now)
	if e == nil {
		return fmt.Errorf("memstore.Update %s: %w", s.ID, session.ErrNotFound)
	}
	if e.s.Version != s.Version {
		return fmt.Errorf("memstore.Update %s: version %d, stored %d: %w", s.ID, s.Version, e.s.Version, session.ErrConflict)
	}
	s.Version++
	s.UpdatedAt = now
	e.s = s.Clone()
	e.expires = now.Add(e.s.TTLOr(m.ttl))
	return nil
}

// Delete implements session.Store.
func (m *Store) Delete(_ context.Context, tenant, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[key{tenant, id}]
	if !ok || m.expiredLocked(el, m.now()) {
		return fmt.Errorf("memstore.Delete %s: %w", id, session.ErrNotFound)
	}
	m.remove(el)
	return nil
}

// List implements session.Store.
func (m *Store) List(_ context.Context, tenant, user string, limit int, pageToken string) ([]*session.Session, string, error) {
	after, hasAfter, err := session.ParseToken(pageToken)
	if err != nil {
		return nil, "", fmt.Errorf("memstore.List: %w", err)
	}
	limit = session.Limit(limit)
	now := m.now()
	m.mu.Lock()
	var out []*session.Session
	for _, el := range m.byTenant[tenant] {
		e := el.Value.(*entry)
		if (user != "" && e.s.User != user) || !now.Before(e.expires) {
			continue
		}
		if hasAfter && !after.Before(session.CursorOf(e.s)) {
			continue
		}
		out = append(out, e.s)
	}
	session.SortNewest(out)
	out, next := session.Page(out, limit, false)
	for i, s := range out {
		out[i] = s.Clone()
	}
	m.mu.Unlock()
	return out, next, nil
}

// DeleteUser implements session.Store.
func (m *Store) DeleteUser(_ context.Context, tenant, user string) (int, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, el := range m.byTenant[tenant] {
		e := el.Value.(*entry)
		if e.s.User != user {
			continue
		}
		if now.Before(e.expires) {
			n++
		}
		m.remove(el)
	}
	return n, nil
}

// Put stores a copy of s as it is (version and timestamps kept), unless the store holds the same
// session at an equal or newer version; it reports whether it stored s. Tiered stores use it to
// promote and to write through.
func (m *Store) Put(s *session.Session) bool {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.lookup(key{s.Tenant, s.ID}, now); e != nil {
		if e.s.Version >= s.Version {
			return false
		}
		e.s = s.Clone()
		e.expires = now.Add(e.s.TTLOr(m.ttl))
		return true
	}
	m.insert(s.Clone(), now)
	return true
}

// Invalidate drops the session if the store holds a version older than version (any version
// when version is 0).
func (m *Store) Invalidate(tenant, id string, version int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[key{tenant, id}]; ok && (version == 0 || el.Value.(*entry).s.Version < version) {
		m.remove(el)
	}
}

// Clear drops every session.
func (m *Store) Clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lru.Init()
	clear(m.items)
	clear(m.byTenant)
}

// Stats are counters of a Store.
type Stats struct {
	Sessions  int   // held now (expired ones not yet dropped included)
	Evictions int64 // dropped to stay within the bound
	Expired   int64 // dropped after their TTL
}

// Stats returns the store's counters.
func (m *Store) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{Sessions: len(m.items), Evictions: m.evicted, Expired: m.expired}
}

// lookup returns the live entry for k, refreshing its expiry and recency, or nil.
func (m *Store) lookup(k key, now time.Time) *entry {
	el, ok := m.items[k]
	if !ok {
		return nil
	}
	if m.expiredLocked(el, now) {
		return nil
	}
	e := el.Value.(*entry)
	e.expires = now.Add(e.s.TTLOr(m.ttl))
	m.lru.MoveToFront(el)
	return e
}

// expiredLocked drops el and reports true if it has expired.
func (m *Store) expiredLocked(el *list.Element, now time.Time) bool {
	if now.Before(el.Value.(*entry).expires) {
		return false
	}
	m.remove(el)
	m.expired++
	return true
}

func (m *Store) insert(s *session.Session, now time.Time) {
	k := key{s.Tenant, s.ID}
	el := m.lru.PushFront(&entry{k: k, s: s, expires: now.Add(s.TTLOr(m.ttl))})
	m.items[k] = el
	t := m.byTenant[k.tenant]
	if t == nil {
		t = map[string]*list.Element{}
		m.byTenant[k.tenant] = t
	}
	t[k.id] = el
	m.sweepLocked(now)
	for m.lru.Len() > m.max {
		last := m.lru.Back()
		if m.expiredLocked(last, now) {
			continue
		}
		m.remove(last)
		m.evicted++
	}
}

// sweepLocked drops expired sessions, so abandoned sessions do not stay until max_sessions
// pushes them out (a soak run with half the sessions abandoned grew the heap by 1.8 KB per
// session). The least recently used sessions sit at the tail and, with one TTL, expire first:
// each insert drops expired ones from there, stopping at the first live one. Sessions with
// TTLs of their own can hide expired ones behind a live one, so at most once per sweepInterval
// an insert scans the whole store.
func (m *Store) sweepLocked(now time.Time) {
	for last := m.lru.Back(); last != nil && m.expiredLocked(last, now); last = m.lru.Back() {
	}
	if now.Sub(m.swept) < sweepInterval {
		return
	}
	m.swept = now
	for el := m.lru.Back(); el != nil; {
		prev := el.Prev()
		m.expiredLocked(el, now)
		el = prev
	}
}

func (m *Store) remove(el *list.Element) {
	e := el.Value.(*entry)
	m.lru.Remove(el)
	delete(m.items, e.k)
	if t := m.byTenant[e.k.tenant]; t != nil {
		delete(t, e.k.id)
		if len(t) == 0 {
			delete(m.byTenant, e.k.tenant)
		}
	}
}
