package keystore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/auth/keystore"
	"github.com/switchyard/switchyard/internal/llm"
)

// fakeFinder serves keys from a map and counts lookups.
type fakeFinder struct {
	mu      sync.Mutex
	keys    map[[sha256.Size]byte]*keystore.Key
	err     error         // returned instead, when set
	gate    chan struct{} // when set, lookups wait for it to close
	lookups atomic.Int64
}

func (f *fakeFinder) Lookup(_ context.Context, h [sha256.Size]byte) (*keystore.Key, error) {
	f.lookups.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	k, ok := f.keys[h]
	if !ok {
		return nil, keystore.ErrNotFound
	}
	c := *k
	return &c, nil
}

func (f *fakeFinder) set(secret string, k *keystore.Key) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys == nil {
		f.keys = map[[sha256.Size]byte]*keystore.Key{}
	}
	f.keys[keystore.HashSecret(secret)] = k
}

func secret(c byte) string { return keystore.SecretPrefix + strings.Repeat(string(c), 64) }

func wantCode(t *testing.T, p *auth.Principal, err error, code string) {
	t.Helper()
	e, ok := errors.AsType[*llm.Error](err)
	if p != nil || !ok || e.Kind != llm.KindUnauthenticated || e.Code != code {
		t.Fatalf("Authenticate = %+v, %v; want UNAUTHENTICATED %s", p, err, code)
	}
}

func TestAuthenticatorAdmits(t *testing.T) {
	clk := newClock()
	f := &fakeFinder{}
	f.set(secret('a'), &keystore.Key{ID: "key_a", Name: "dify", Tenant: "acme", Scopes: []string{"chat:write"}, Models: []string{"chat"}})
	a := keystore.NewAuthenticator(f, keystore.WithAuthClock(clk.Now), keystore.WithCacheTTL(5*time.Second))
	ctx := context.Background()
	for range 3 {
		p, err := a.Authenticate(ctx, secret('a'))
		if err != nil {
			t.Fatal(err)
		}
		if p.Tenant != "acme" || p.Subject != "key_a" || p.KeyName != "dify" || !p.HasScope("chat:write") ||
			p.HasScope(auth.ScopeAdmin) || !p.AllowsModel("chat") || p.AllowsModel("other") || p.Method != auth.ModeAPIKey {
			t.Fatalf("principal = %+v", p)
		}
	}
	if n := f.lookups.Load(); n != 1 {
		t.Errorf("%d lookups for three requests within the TTL, want 1", n)
	}
	clk.Add(5 * time.Second)
	if _, err := a.Authenticate(ctx, secret('a')); err != nil {
		t.Fatal(err)
	}
	if n := f.lookups.Load(); n != 2 {
		t.Errorf("%d lookups after the TTL passed, want 2", n)
	}
}

func TestAuthenticatorRefuses(t *testing.T) {
	cases := []struct {
		name        string
		token       string
		key         *keystore.Key // stored under token when set
		wantCode    string
		wantLookups int64 // after the token was tried three times
	}{
		{"empty", "", nil, keystore.CodeMissing, 0},
		{"not a managed key", "sk-config-key", nil, keystore.CodeInvalid, 0},
		{"wrong length", secret('a')[:40], nil, keystore.CodeInvalid, 0},
		{"unknown, cached as refused", secret('b'), nil, keystore.CodeInvalid, 1},
		{"revoked, cached as refused", secret('c'), &keystore.Key{ID: "key_c", Tenant: "t", RevokedAt: newClock().Now().Add(-time.Hour)}, keystore.CodeRevoked, 1},
		{"expired", secret('d'), &keystore.Key{ID: "key_d", Tenant: "t", ExpiresAt: newClock().Now()}, keystore.CodeExpired, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := newClock()
			f := &fakeFinder{}
			if c.key != nil {
				f.set(c.token, c.key)
			}
			a := keystore.NewAuthenticator(f, keystore.WithAuthClock(clk.Now))
			for range 3 {
				p, err := a.Authenticate(context.Background(), c.token)
				wantCode(t, p, err, c.wantCode)
			}
			if n := f.lookups.Load(); n != c.wantLookups {
				t.Errorf("%d lookups, want %d", n, c.wantLookups)
			}
		})
	}
}

func TestAuthenticatorExpiryWhileCached(t *testing.T) {
	clk := newClock()
	f := &fakeFinder{}
	f.set(secret('a'), &keystore.Key{ID: "key_a", Tenant: "acme", ExpiresAt: clk.Now().Add(time.Second)})
	a := keystore.NewAuthenticator(f, keystore.WithAuthClock(clk.Now), keystore.WithCacheTTL(time.Hour))
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, secret('a')); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Second)
	p, err := a.Authenticate(ctx, secret('a'))
	wantCode(t, p, err, keystore.CodeExpired)
	if n := f.lookups.Load(); n != 1 {
		t.Errorf("%d lookups, want 1: expiry is checked on the cached key", n)
	}
}

func TestAuthenticatorRevocation(t *testing.T) {
	clk := newClock()
	f := &fakeFinder{}
	key := &keystore.Key{ID: "key_a", Tenant: "acme"}
	f.set(secret('a'), key)
	f.set(secret('b'), &keystore.Key{ID: "key_b", Tenant: "acme"})
	a := keystore.NewAuthenticator(f, keystore.WithAuthClock(clk.Now), keystore.WithCacheTTL(5*time.Second))
	ctx := context.Background()
	for _, s := range []string{secret('a'), secret('b')} {
		if _, err := a.Authenticate(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// Revoked elsewhere: admitted from the cache until the TTL, refused after it.
	revoked := *key
	revoked.RevokedAt = clk.Now()
	f.set(secret('a'), &revoked)
	clk.Add(4 * time.Second)
	if _, err := a.Authenticate(ctx, secret('a')); err != nil {
		t.Fatalf("within the TTL: %v; want the cached admission", err)
	}
	clk.Add(time.Second)
	p, err := a.Authenticate(ctx, secret('a'))
	wantCode(t, p, err, keystore.CodeRevoked)

	// Revoked here: Invalidate makes it take effect at once, and leaves other keys cached.
	f.set(secret('b'), &keystore.Key{ID: "key_b", Tenant: "acme", RevokedAt: clk.Now()})
	before := f.lookups.Load()
	a.Invalidate("key_b")
	p, err = a.Authenticate(ctx, secret('b'))
	wantCode(t, p, err, keystore.CodeRevoked)
	if n := f.lookups.Load() - before; n != 1 {
		t.Errorf("%d lookups after Invalidate, want 1", n)
	}
}

func TestAuthenticatorStoreFailure(t *testing.T) {
	f := &fakeFinder{err: errors.New("connection refused")}
	f.set(secret('a'), &keystore.Key{ID: "key_a", Tenant: "acme"})
	a := keystore.NewAuthenticator(f)
	ctx := context.Background()
	_, err := a.Authenticate(ctx, secret('a'))
	if k := llm.KindOf(err); k != llm.KindUnavailable || strings.Contains(llm.AsError(err).SafeMessage(), "connection refused") {
		t.Fatalf("error = %v (%v); want UNAVAILABLE without the cause in the client message", err, k)
	}
	f.mu.Lock()
	f.err = nil
	f.mu.Unlock()
	if _, err := a.Authenticate(ctx, secret('a')); err != nil {
		t.Fatalf("after the store recovered: %v; want the failure not cached", err)
	}
}

func TestAuthenticatorSharesLookups(t *testing.T) {
	f := &fakeFinder{gate: make(chan struct{})}
	f.set(secret('a'), &keystore.Key{ID: "key_a", Tenant: "acme"})
	a := keystore.NewAuthenticator(f)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := a.Authenticate(context.Background(), secret('a'))
			errs <- err
		})
	}
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.lookups.Load(); n != 1 {
		t.Errorf("%d lookups for 16 concurrent requests with one token, want 1", n)
	}
}

func TestAuthenticatorBoundsCache(t *testing.T) {
	f := &fakeFinder{}
	a := keystore.NewAuthenticator(f, keystore.WithMaxEntries(4))
	ctx := context.Background()
	for i := range 10 {
		_, _ = a.Authenticate(ctx, secret("0123456789"[i]))
	}
	// The first tokens were evicted: trying them again asks the store again.
	before := f.lookups.Load()
	for i := range 10 {
		_, _ = a.Authenticate(ctx, secret("0123456789"[i]))
	}
	if n := f.lookups.Load() - before; n < 6 {
		t.Errorf("%d lookups for 10 tokens with room for 4, want at least 6", n)
	}
}

// stub is an authenticator with a fixed answer.
type stub struct {
	p     *auth.Principal
	err   error
	calls int
}

func (s *stub) Authenticate(context.Context, string) (*auth.Principal, error) {
	s.calls++
	return s.p, s.err
}

func TestChain(t *testing.T) {
	unauth := func(code string) error { return &llm.Error{Kind: llm.KindUnauthenticated, Code: code} }
	pa, pb := &auth.Principal{Tenant: "a"}, &auth.Principal{Tenant: "b"}
	cases := []struct {
		name      string
		stubs     []*stub
		want      *auth.Principal
		wantCode  string   // error code when want is nil
		wantKind  llm.Kind // error kind when want is nil
		wantCalls []int
	}{
		{"first admits", []*stub{{p: pa}, {p: pb}}, pa, "", 0, []int{1, 0}},
		{"second admits", []*stub{{err: unauth(keystore.CodeInvalid)}, {p: pb}}, pb, "", 0, []int{1, 1}},
		{"all refuse: first generic", []*stub{{err: unauth(keystore.CodeMissing)}, {err: unauth(keystore.CodeInvalid)}}, nil, keystore.CodeMissing, llm.KindUnauthenticated, []int{1, 1}},
		{"all refuse: specific wins", []*stub{{err: unauth(keystore.CodeInvalid)}, {err: unauth(keystore.CodeRevoked)}}, nil, keystore.CodeRevoked, llm.KindUnauthenticated, []int{1, 1}},
		{"other error stops", []*stub{{err: &llm.Error{Kind: llm.KindUnavailable, Code: "down"}}, {p: pb}}, nil, "down", llm.KindUnavailable, []int{1, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			as := make([]auth.Authenticator, len(c.stubs))
			for i, s := range c.stubs {
				as[i] = s
			}
			p, err := keystore.Chain(as...).Authenticate(context.Background(), "tok")
			if c.want != nil {
				if p != c.want || err != nil {
					t.Fatalf("= %+v, %v; want %+v", p, err, c.want)
				}
			} else {
				e, ok := errors.AsType[*llm.Error](err)
				if p != nil || !ok || e.Code != c.wantCode || e.Kind != c.wantKind {
					t.Fatalf("= %+v, %v; want %v %s", p, err, c.wantKind, c.wantCode)
				}
			}
			for i, s := range c.stubs {
				if s.calls != c.wantCalls[i] {
					t.Errorf("authenticator %d called %d times, want %d", i, s.calls, c.wantCalls[i])
				}
			}
		})
	}
}

// hangingFinder answers only when the lookup's context ends.
type hangingFinder struct{}

func (hangingFinder) Lookup(ctx context.Context, _ [sha256.Size]byte) (*keystore.Key, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestAuthenticatorLookupTimeout(t *testing.T) {
	a := keystore.NewAuthenticator(hangingFinder{}, keystore.WithLookupTimeout(time.Millisecond))
	// The caller's context never ends: the lookup's own deadline must.
	_, err := a.Authenticate(context.Background(), secret('a'))
	if k := llm.KindOf(err); k != llm.KindUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v (%v); want UNAVAILABLE caused by the lookup deadline", err, k)
	}
}
