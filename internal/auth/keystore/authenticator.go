package keystore

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

// Defaults of the Authenticator's cache.
const (
	// DefaultCacheTTL is how long a found key is trusted without asking the store again: the
	// bound on how late another instance's revocation takes effect here.
	DefaultCacheTTL = 5 * time.Second
	// DefaultNegativeTTL is how long an unknown or revoked token is refused without asking the
	// store again. A token unknown now cannot become valid later (secrets are 256-bit random and
	// revocation is final), so this only bounds memory churn.
	DefaultNegativeTTL = time.Minute
	// DefaultMaxEntries bounds each of the found and refused caches; a full cache drops its least
	// recently used entry.
	DefaultMaxEntries = 10_000
	// DefaultLookupTimeout bounds one store lookup.
	DefaultLookupTimeout = 5 * time.Second
)

// Finder finds a key by the SHA-256 of its secret, returning an ErrNotFound error for an unknown
// hash. *Store implements it.
type Finder interface {
	Lookup(ctx context.Context, hash [sha256.Size]byte) (*Key, error)
}

var _ Finder = (*Store)(nil)

var _ auth.Authenticator = (*Authenticator)(nil)

// Authenticator admits callers presenting a managed key's secret as their bearer token. It is
// safe for concurrent use.
//
// It caches what the store answered, per token hash: a found key for CacheTTL (so a revocation
// made on another instance takes effect here within that bound; Invalidate makes one made here
// take effect at once), an unknown or revoked token for NegativeTTL. Expiry is checked on every
// call, cached or not. Tokens that cannot be a managed key's secret (WellFormed) are refused
// without a lookup, and concurrent lookups of one token share one query. The store is never asked
// more than once per distinct token per TTL, so repeating a bad token costs no database work;
// every distinct well-formed guess costs one indexed lookup (rate limits bound those).
type Authenticator struct {
	f             Finder
	ttl, negTT    time.Duration
	lookupTimeout time.Duration
	max           int
	now           func() time.Time

	// mu guards inflight, and makes reading the caches and joining or starting a lookup one step
	// against a lookup that finishes (caches its outcome and leaves inflight).
	mu       sync.Mutex
	found    *lru.Cache[[sha256.Size]byte, foundEntry]
	refused  *lru.Cache[[sha256.Size]byte, refusedEntry]
	inflight map[[sha256.Size]byte]*lookup
}

// cacheEntry is what the found and refused caches hold: an outcome valid until a deadline on the
// Authenticator's clock, about the key with an id.
type cacheEntry interface {
	deadline() time.Time
	key() string
}

type foundEntry struct {
	p       *auth.Principal
	keyID   string
	expires time.Time // the key's expiry; zero: never
	until   time.Time // cache deadline
}

func (e foundEntry) deadline() time.Time { return e.until }
func (e foundEntry) key() string         { return e.keyID }

type refusedEntry struct {
	err   *llm.Error
	keyID string // "" for unknown tokens
	until time.Time
}

func (e refusedEntry) deadline() time.Time { return e.until }
func (e refusedEntry) key() string         { return e.keyID }

type lookup struct {
	done chan struct{}
	key  *Key
	err  error
}

// AuthOption configures an Authenticator.
type AuthOption func(*Authenticator)

// WithCacheTTL sets how long found keys are cached (DefaultCacheTTL; 0 or less: not cached).
func WithCacheTTL(d time.Duration) AuthOption { return func(a *Authenticator) { a.ttl = d } }

// WithNegativeTTL sets how long refused tokens are cached (DefaultNegativeTTL; 0 or less: not
// cached).
func WithNegativeTTL(d time.Duration) AuthOption { return func(a *Authenticator) { a.negTT = d } }

// WithMaxEntries bounds each cache (DefaultMaxEntries).
func WithMaxEntries(n int) AuthOption { return func(a *Authenticator) { a.max = n } }

// WithLookupTimeout bounds each store lookup (DefaultLookupTimeout).
func WithLookupTimeout(d time.Duration) AuthOption {
	return func(a *Authenticator) { a.lookupTimeout = d }
}

// WithAuthClock sets the clock for expiry and cache deadlines (time.Now by default).
func WithAuthClock(now func() time.Time) AuthOption { return func(a *Authenticator) { a.now = now } }

// NewAuthenticator returns an Authenticator checking tokens against f.
func NewAuthenticator(f Finder, opts ...AuthOption) *Authenticator {
	a := &Authenticator{
		f: f, ttl: DefaultCacheTTL, negTT: DefaultNegativeTTL, lookupTimeout: DefaultLookupTimeout,
		max: DefaultMaxEntries, now: time.Now,
		inflight: map[[sha256.Size]byte]*lookup{},
	}
	for _, o := range opts {
		o(a)
	}
	if a.max <= 0 {
		a.max = DefaultMaxEntries
	}
	a.found = newCache[foundEntry](a.max)
	a.refused = newCache[refusedEntry](a.max)
	if a.lookupTimeout <= 0 {
		a.lookupTimeout = DefaultLookupTimeout
	}
	return a
}

// Errors codes of Authenticate's refusals (llm.Error.Code, the OpenAI error code).
const (
	CodeMissing = "missing_api_key"
	CodeInvalid = "invalid_api_key"
	CodeRevoked = "revoked_api_key"
	CodeExpired = "expired_api_key"
)

func errMissing() *llm.Error {
	return &llm.Error{Kind: llm.KindUnauthenticated, Code: CodeMissing,
		Message: "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."}
}

func errInvalid() *llm.Error {
	return &llm.Error{Kind: llm.KindUnauthenticated, Code: CodeInvalid, Message: "Incorrect API key provided."}
}

func errRevoked() *llm.Error {
	return &llm.Error{Kind: llm.KindUnauthenticated, Code: CodeRevoked, Message: "This API key has been revoked."}
}

func errExpired() *llm.Error {
	return &llm.Error{Kind: llm.KindUnauthenticated, Code: CodeExpired, Message: "This API key has expired."}
}

// Authenticate implements auth.Authenticator. The principal of a key has the key's tenant, scopes
// and allowed models, its id as Subject, its name as KeyName and Method "api_key". Refusals are KindUnauthenticated errors with
// the codes above; a store that fails is a KindUnavailable error (nothing is cached then).
func (a *Authenticator) Authenticate(ctx context.Context, token string) (*auth.Principal, error) {
	if token == "" {
		return nil, errMissing()
	}
	if !WellFormed(token) {
		return nil, errInvalid()
	}
	h := HashSecret(token)
	now := a.now()
	a.mu.Lock()
	if e, ok := fresh(a.found, h, now); ok {
		a.mu.Unlock()
		if !e.expires.IsZero() && !now.Before(e.expires) {
			return nil, errExpired()
		}
		return e.p, nil
	}
	if e, ok := fresh(a.refused, h, now); ok {
		a.mu.Unlock()
		return nil, e.err
	}
	l, joined := a.inflight[h]
	if !joined {
		l = &lookup{done: make(chan struct{})}
		a.inflight[h] = l
	}
	a.mu.Unlock()

	if joined {
		select {
		case <-l.done:
		case <-ctx.Done():
			return nil, llm.Wrap(llm.KindCanceled, ctx.Err(), "keystore: key lookup")
		}
	} else {
		// The lookup is shared: it must not fail because the caller that started it went away,
		// so it has its own deadline.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.lookupTimeout)
		l.key, l.err = a.f.Lookup(lctx, h)
		cancel()
		a.mu.Lock()
		delete(a.inflight, h)
		a.remember(h, l.key, l.err, a.now())
		a.mu.Unlock()
		close(l.done)
	}
	return a.decide(l.key, l.err, now)
}

// remember caches the outcome of a lookup; a.mu is held.
func (a *Authenticator) remember(h [sha256.Size]byte, k *Key, err error, now time.Time) {
	switch {
	case errors.Is(err, ErrNotFound):
		if a.negTT > 0 {
			a.refused.Add(h, refusedEntry{err: errInvalid(), until: now.Add(a.negTT)})
		}
	case err != nil:
		// Not cached: the store may answer next time.
	case k.Revoked():
		if a.negTT > 0 {
			a.refused.Add(h, refusedEntry{err: errRevoked(), keyID: k.ID, until: now.Add(a.negTT)})
		}
	default:
		if a.ttl > 0 {
			a.found.Add(h, foundEntry{p: principal(k), keyID: k.ID, expires: k.ExpiresAt, until: now.Add(a.ttl)})
		}
	}
}

// decide turns a lookup's outcome into Authenticate's answer.
func (a *Authenticator) decide(k *Key, err error, now time.Time) (*auth.Principal, error) {
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errInvalid()
	case err != nil:
		return nil, llm.Wrap(llm.KindUnavailable, err, "the API key store is unavailable")
	case k.Revoked():
		return nil, errRevoked()
	case k.Expired(now):
		return nil, errExpired()
	}
	return principal(k), nil
}

func principal(k *Key) *auth.Principal {
	return &auth.Principal{Tenant: k.Tenant, Subject: k.ID, KeyName: k.Name, Scopes: k.Scopes, Models: k.Models, Method: auth.ModeAPIKey}
}

// Invalidate forgets what the cache holds about the key with the given id, so the next request
// presenting it asks the store. Call it after revoking the key.
func (a *Authenticator) Invalidate(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	forget(a.found, id)
	forget(a.refused, id)
}

func newCache[E cacheEntry](size int) *lru.Cache[[sha256.Size]byte, E] {
	c, err := lru.New[[sha256.Size]byte, E](size)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}

// fresh returns c's entry for h if its deadline is after now. An entry past it is removed.
func fresh[E cacheEntry](c *lru.Cache[[sha256.Size]byte, E], h [sha256.Size]byte, now time.Time) (E, bool) {
	e, ok := c.Get(h)
	if ok && !now.Before(e.deadline()) {
		c.Remove(h)
		var zero E
		return zero, false
	}
	return e, ok
}

// forget removes c's entries about the key with the given id.
func forget[E cacheEntry](c *lru.Cache[[sha256.Size]byte, E], id string) {
	for _, h := range c.Keys() {
		if e, ok := c.Peek(h); ok && e.key() == id {
			c.Remove(h)
		}
	}
}
