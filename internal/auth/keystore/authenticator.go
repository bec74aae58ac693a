package keystore

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

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
	// DefaultMaxEntries bounds each of the found and refused caches.
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

	mu       sync.Mutex
	found    map[[sha256.Size]byte]foundEntry
	refused  map[[sha256.Size]byte]refusedEntry
	inflight map[[sha256.Size]byte]*lookup
}

type foundEntry struct {
	p       *auth.Principal
	keyID   string
	expires time.Time // the key's expiry; zero: never
	until   time.Time // cache deadline
}

type refusedEntry struct {
	err   *llm.Error
	keyID string // "" for unknown tokens
	until time.Time
}

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
		found:    map[[sha256.Size]byte]foundEntry{},
		refused:  map[[sha256.Size]byte]refusedEntry{},
		inflight: map[[sha256.Size]byte]*lookup{},
	}
	for _, o := range opts {
		o(a)
	}
	if a.max <= 0 {
		a.max = DefaultMaxEntries
	}
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
	if e, ok := a.found[h]; ok && now.Before(e.until) {
		a.mu.Unlock()
		if !e.expires.IsZero() && !now.Before(e.expires) {
			return nil, errExpired()
		}
		return e.p, nil
	}
	if e, ok := a.refused[h]; ok && now.Before(e.until) {
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
			evict(a.refused, a.max, now, func(e refusedEntry) time.Time { return e.until })
			a.refused[h] = refusedEntry{err: errInvalid(), until: now.Add(a.negTT)}
		}
	case err != nil:
		// Not cached: the store may answer next time.
	case k.Revoked():
		if a.negTT > 0 {
			evict(a.refused, a.max, now, func(e refusedEntry) time.Time { return e.until })
			a.refused[h] = refusedEntry{err: errRevoked(), keyID: k.ID, until: now.Add(a.negTT)}
		}
	default:
		if a.ttl > 0 {
			evict(a.found, a.max, now, func(e foundEntry) time.Time { return e.until })
			a.found[h] = foundEntry{p: principal(k), keyID: k.ID, expires: k.ExpiresAt, until: now.Add(a.ttl)}
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
	for h, e := range a.found {
		if e.keyID == id {
			delete(a.found, h)
		}
	}
	for h, e := range a.refused {
		if e.keyID == id {
			delete(a.refused, h)
		}
	}
}

// evict makes room for one entry in m: it drops the entries past their deadline and, if m is
// still full, arbitrary ones.
func evict[E any](m map[[sha256.Size]byte]E, max int, now time.Time, until func(E) time.Time) {
	if len(m) < max {
		return
	}
	for h, e := range m {
		if !now.Before(until(e)) {
			delete(m, h)
		}
	}
	for h := range m {
		if len(m) < max {
			break
		}
		delete(m, h)
	}
}
