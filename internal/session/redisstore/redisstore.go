// Package redisstore keeps sessions in Redis (single node, Sentinel or Cluster through go-redis's
// UniversalClient): the tier shared by every instance. Records expire after their sliding TTL,
// refreshed on each read and write; updates are compare-and-set on the version inside a Lua
// script; every write publishes an invalidation so the memory tiers of other instances drop
// stale copies (Subscribe).
//
// Keys, with the tenant as a Cluster hash tag so a tenant's records and indexes share a slot:
//
//	<prefix>{<tenant>}:s:<id>     hash: v (version), u (user), t (TTL ms), d (sealed record, seal.Frame)
//	<prefix>{<tenant>}:u:<user>   sorted set of the user's session ids, scored by UpdatedAt ms
//	<prefix>{<tenant>}:all        sorted set of the tenant's session ids, scored likewise
//	<prefix>inval                 pub/sub channel of invalidations
//
// Tenant names holding "{", "}", a newline or starting with "~" are hex-encoded after a "~". The
// indexes expire no earlier than the records they list; List drops ids whose record expired.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
)

// DefaultPrefix starts every key when no prefix is configured.
const DefaultPrefix = "sy:sess:"

var _ session.Store = (*Store)(nil)

// Store is a Redis session store, safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	keys   *seal.Keyring
	prefix string
	ttl    time.Duration
	now    func() time.Time
	origin string // identifies this store's own invalidations
}

// Option configures a Store.
type Option func(*Store)

// WithPrefix sets the key prefix (DefaultPrefix otherwise); stores sharing a prefix share data.
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithTTL sets the expiry of sessions whose TTL is 0 (session.DefaultTTL otherwise).
func WithTTL(d time.Duration) Option { return func(s *Store) { s.ttl = d } }

// WithClock sets the clock for timestamps (time.Now by default); expiry follows Redis's clock.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New returns a store over rdb; keys seal the records (nil: plaintext).
func New(rdb redis.UniversalClient, keys *seal.Keyring, opts ...Option) *Store {
	var b [8]byte
	_, _ = rand.Read(b[:])
	s := &Store{rdb: rdb, keys: keys, prefix: DefaultPrefix, ttl: session.DefaultTTL, now: time.Now, origin: hex.EncodeToString(b[:])}
	for _, o := range opts {
		o(s)
	}
	if s.ttl <= 0 {
		s.ttl = session.DefaultTTL
	}
	return s
}

// encode seals s into the record's d field.
func (st *Store) encode(s *session.Session) ([]byte, error) {
	keyID, data, err := session.SealRecord(st.keys, s)
	if err != nil {
		return nil, err
	}
	return seal.Frame(keyID, data), nil
}

// decode opens a d field written by encode for (tenant, id).
func (st *Store) decode(tenant, id string, v []byte) (*session.Session, error) {
	keyID, data, err := seal.Unframe(v)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", id, err)
	}
	return session.OpenRecord(st.keys, tenant, id, keyID, data)
}

// tag returns the tenant's hash-tagged key stem.
func (st *Store) tag(tenant string) string {
	if tenant == "" || strings.ContainsAny(tenant, "{}\n") || strings.HasPrefix(tenant, "~") {
		tenant = "~" + hex.EncodeToString([]byte(tenant))
	}
	return st.prefix + "{" + tenant + "}:"
}

func (st *Store) recKey(tenant, id string) string { return st.tag(tenant) + "s:" + id }
func (st *Store) userKey(tenant, user string) string {
	return st.tag(tenant) + "u:" + user
}
func (st *Store) allKey(tenant string) string { return st.tag(tenant) + "all" }

// Channel is the pub/sub channel of invalidations.
func (st *Store) Channel() string { return st.prefix + "inval" }

func (st *Store) msgPrefix(tenant string) string { return st.origin + "\n" + tenant + "\n" }

func (st *Store) ttlMs(s *session.Session) int64 { return s.TTLOr(st.ttl).Milliseconds() }

// extendIdx is Lua that makes index key k live at least ttl ms.
const extendIdx = `local function extend(k, ttl)
	local cur = redis.call('PTTL', k)
	if cur >= 0 and cur < ttl then redis.call('PEXPIRE', k, ttl) elseif cur == -1 then redis.call('PEXPIRE', k, ttl) end
end
`

// KEYS: rec, user index, all index. ARGV: data, user, ttl ms, updated ms, id.
var createScript = redis.NewScript(extendIdx + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'v', 1, 'u', ARGV[2], 't', ttl, 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
for i = 2, 3 do
	redis.call('ZADD', KEYS[i], ARGV[4], ARGV[5])
	extend(KEYS[i], ttl)
end
return 1`)

// KEYS: rec, user index, all index. ARGV: expected version, data, ttl ms, updated ms, id,
// channel, message. Returns 1, or -1 (absent), or -2 (version differs).
var updateScript = redis.NewScript(extendIdx + `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if tonumber(v) ~= tonumber(ARGV[1]) then return -2 end
local ttl = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'v', tonumber(v) + 1, 't', ttl, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
for i = 2, 3 do
	redis.call('ZADD', KEYS[i], ARGV[4], ARGV[5])
	extend(KEYS[i], ttl)
end
redis.call('PUBLISH', ARGV[6], ARGV[7])
return 1`)

// KEYS: rec, user index, all index. ARGV: version, data, user, ttl ms, updated ms, id.
// Stores the record unless one at an equal or newer version is there; returns 1 if stored.
var putScript = redis.NewScript(extendIdx + `
local v = redis.call('HGET', KEYS[1], 'v')
if v and tonumber(v) >= tonumber(ARGV[1]) then return 0 end
local ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'u', ARGV[3], 't', ttl, 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
for i = 2, 3 do
	redis.call('ZADD', KEYS[i], ARGV[5], ARGV[6])
	extend(KEYS[i], ttl)
end
return 1`)

// KEYS: rec, all index. ARGV: user index prefix. Returns the data and refreshes the TTLs. The
// user index is named from the record (same hash slot as the declared keys).
var getScript = redis.NewScript(extendIdx + `
local r = redis.call('HMGET', KEYS[1], 'd', 'u', 't')
if not r[1] then return false end
local ttl = tonumber(r[3])
redis.call('PEXPIRE', KEYS[1], ttl)
extend(KEYS[2], ttl)
extend(ARGV[1] .. r[2], ttl)
return r[1]`)

// KEYS: rec, all index. ARGV: user index prefix, id, channel, message. Returns 1 if deleted.
var deleteScript = redis.NewScript(`
local u = redis.call('HGET', KEYS[1], 'u')
if not u then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', ARGV[1] .. u, ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1`)

// KEYS: user index, all index. ARGV: record key prefix, channel, message prefix. Deletes every
// session in the user index; returns how many records existed.
var deleteUserScript = redis.NewScript(`
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local n = 0
for _, id in ipairs(ids) do
	n = n + redis.call('DEL', ARGV[1] .. id)
	redis.call('ZREM', KEYS[2], id)
	redis.call('PUBLISH', ARGV[2], ARGV[3] .. id .. '\n0')
end
redis.call('DEL', KEYS[1])
return n`)

// Create implements session.Store.
func (st *Store) Create(ctx context.Context, s *session.Session) error {
	now := session.Now(st.now)
	c := s.Clone()
	c.Version = 1
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	c.UpdatedAt = now
	v, err := st.encode(c)
	if err != nil {
		return fmt.Errorf("redisstore.Create: %w", err)
	}
	keys := []string{st.recKey(c.Tenant, c.ID), st.userKey(c.Tenant, c.User), st.allKey(c.Tenant)}
	n, err := createScript.Run(ctx, st.rdb, keys, v, c.User, st.ttlMs(c), now.UnixMilli(), c.ID).Int()
	if err != nil {
		return fmt.Errorf("redisstore.Create %s: %w", s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore.Create %s: %w", s.ID, session.ErrExists)
	}
	s.Version, s.CreatedAt, s.UpdatedAt = c.Version, c.CreatedAt, c.UpdatedAt
	return nil
}

// Get implements session.Store; a hit extends the session's expiry.
func (st *Store) Get(ctx context.Context, tenant, id string) (*session.Session, error) {
	v, err := getScript.Run(ctx, st.rdb, []string{st.recKey(tenant, id), st.allKey(tenant)}, st.tag(tenant)+"u:").Text()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore.Get %s: %w", id, session.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore.Get %s: %w", id, err)
	}
	s, err := st.decode(tenant, id, []byte(v))
	if err != nil {
		return nil, fmt.Errorf("redisstore.Get: %w", err)
	}
	return s, nil
}

// Update implements session.Store.
func (st *Store) Update(ctx context.Context, s *session.Session) error {
	c := s.Clone()
	c.Version++
	c.UpdatedAt = session.Now(st.now)
	v, err := st.encode(c)
	if err != nil {
		return fmt.Errorf("redisstore.Update: %w", err)
	}
	keys := []string{st.recKey(c.Tenant, c.ID), st.userKey(c.Tenant, c.User), st.allKey(c.Tenant)}
	msg := st.msgPrefix(c.Tenant) + c.ID + "\n" + strconv.FormatInt(c.Version, 10)
	n, err := updateScript.Run(ctx, st.rdb, keys, s.Version, v, st.ttlMs(c), c.UpdatedAt.UnixMilli(), c.ID, st.Channel(), msg).Int()
	if err != nil {
		return fmt.Errorf("redisstore.Update %s: %w", s.ID, err)
	}
	switch n {
	case -1:
		return fmt.Errorf("redisstore.Update %s: %w", s.ID, session.ErrNotFound)
	case -2:
		return fmt.Errorf("redisstore.Update %s: version %d: %w", s.ID, s.Version, session.ErrConflict)
	}
	s.Version, s.UpdatedAt = c.Version, c.UpdatedAt
	return nil
}

// Delete implements session.Store.
func (st *Store) Delete(ctx context.Context, tenant, id string) error {
	msg := st.msgPrefix(tenant) + id + "\n0"
	n, err := deleteScript.Run(ctx, st.rdb, []string{st.recKey(tenant, id), st.allKey(tenant)}, st.tag(tenant)+"u:", id, st.Channel(), msg).Int()
	if err != nil {
		return fmt.Errorf("redisstore.Delete %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("redisstore.Delete %s: %w", id, session.ErrNotFound)
	}
	return nil
}

// List implements session.Store. It does not extend expiries.
func (st *Store) List(ctx context.Context, tenant, user string, limit int, pageToken string) ([]*session.Session, string, error) {
	after, hasAfter, err := session.ParseToken(pageToken)
	if err != nil {
		return nil, "", fmt.Errorf("redisstore.List: %w", err)
	}
	limit = session.Limit(limit)
	idx := st.allKey(tenant)
	if user != "" {
		idx = st.userKey(tenant, user)
	}
	max := "+inf"
	if hasAfter {
		max = strconv.FormatInt(after.UpdatedMs, 10)
	}
	var out []*session.Session
	batch := int64(limit + 1)
	for offset := int64(0); len(out) <= limit; offset += batch {
		zs, err := st.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: idx, Start: max, Stop: "-inf", ByScore: true, Rev: true, Offset: offset, Count: batch}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("redisstore.List: %w", err)
		}
		var ids []string
		for _, z := range zs {
			id := z.Member.(string)
			if hasAfter && !after.Before(session.Cursor{UpdatedMs: int64(z.Score), ID: id}) {
				continue
			}
			ids = append(ids, id)
		}
		got, err := st.load(ctx, tenant, idx, ids)
		if err != nil {
			return nil, "", err
		}
		out = append(out, got...)
		if int64(len(zs)) < batch {
			break
		}
	}
	// Index scores and records are written together, but sort on the records to be exact.
	session.SortNewest(out)
	out, next := session.Page(out, limit, false)
	return out, next, nil
}

// load reads the records of ids in one round trip, dropping ids whose record expired from idx.
func (st *Store) load(ctx context.Context, tenant, idx string, ids []string) ([]*session.Session, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := st.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, st.recKey(tenant, id), "d")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore.List: %w", err)
	}
	var out []*session.Session
	var gone []any
	for i, cmd := range cmds {
		v, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			gone = append(gone, ids[i])
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("redisstore.List: %w", err)
		}
		s, err := st.decode(tenant, ids[i], v)
		if err != nil {
			return nil, fmt.Errorf("redisstore.List: %w", err)
		}
		out = append(out, s)
	}
	if len(gone) > 0 {
		st.rdb.ZRem(ctx, idx, gone...) // best effort: the next List retries
	}
	return out, nil
}

// DeleteUser implements session.Store.
func (st *Store) DeleteUser(ctx context.Context, tenant, user string) (int, error) {
	keys := []string{st.userKey(tenant, user), st.allKey(tenant)}
	n, err := deleteUserScript.Run(ctx, st.rdb, keys, st.tag(tenant)+"s:", st.Channel(), st.msgPrefix(tenant)).Int()
	if err != nil {
		return 0, fmt.Errorf("redisstore.DeleteUser: %w", err)
	}
	return n, nil
}

// Put stores s as it is (version and timestamps kept) unless Redis holds the same session at an
// equal or newer version; it reports whether it stored s. Tiered stores use it to promote.
func (st *Store) Put(ctx context.Context, s *session.Session) (bool, error) {
	v, err := st.encode(s)
	if err != nil {
		return false, fmt.Errorf("redisstore.Put: %w", err)
	}
	keys := []string{st.recKey(s.Tenant, s.ID), st.userKey(s.Tenant, s.User), st.allKey(s.Tenant)}
	n, err := putScript.Run(ctx, st.rdb, keys, s.Version, v, s.User, st.ttlMs(s), s.UpdatedAt.UnixMilli(), s.ID).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore.Put %s: %w", s.ID, err)
	}
	return n == 1, nil
}

// Invalidation says another store changed or deleted a session: drop cached copies older than
// Version (every copy when Version is 0). All means invalidations may have been missed (the
// subscription reconnected): drop everything.
type Invalidation struct {
	Tenant, ID string
	Version    int64
	All        bool
}

// Subscribe delivers the invalidations other stores with this prefix publish, in order, to fn
// (called from one goroutine), until ctx ends or stop is called. It returns once the
// subscription is active: writes after that are seen.
func (st *Store) Subscribe(ctx context.Context, fn func(Invalidation)) (stop func(), err error) {
	ps := st.rdb.Subscribe(ctx, st.Channel())
	if _, err := ps.Receive(ctx); err != nil {
		_ = ps.Close()
		return nil, fmt.Errorf("redisstore.Subscribe: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	ch := ps.ChannelWithSubscriptions()
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-ch:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *redis.Subscription:
					if m.Kind == "subscribe" { // a reconnect: messages may have been lost
						fn(Invalidation{All: true})
					}
				case *redis.Message:
					if inv, ok := st.parse(m.Payload); ok {
						fn(inv)
					}
				}
			}
		}
	}()
	return func() {
		cancel()
		_ = ps.Close()
		<-done
	}, nil
}

// parse decodes "origin\ntenant\nid\nversion", ignoring this store's own messages.
func (st *Store) parse(p string) (Invalidation, bool) {
	origin, rest, ok := strings.Cut(p, "\n")
	if !ok || origin == st.origin {
		return Invalidation{}, false
	}
	i := strings.LastIndexByte(rest, '\n')
	if i < 0 {
		return Invalidation{}, false
	}
	v, err := strconv.ParseInt(rest[i+1:], 10, 64)
	rest = rest[:i]
	j := strings.LastIndexByte(rest, '\n')
	if err != nil || j < 0 {
		return Invalidation{}, false
	}
	return Invalidation{Tenant: rest[:j], ID: rest[j+1:], Version: v}, true
}

// Version returns the stored version of the session without reading or refreshing it;
// ErrNotFound if absent.
func (st *Store) Version(ctx context.Context, tenant, id string) (int64, error) {
	v, err := st.rdb.HGet(ctx, st.recKey(tenant, id), "v").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("redisstore.Version %s: %w", id, session.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("redisstore.Version %s: %w", id, err)
	}
	return v, nil
}
