package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

// jwksFetchTimeout bounds one fetch of a JWKS document (the HTTP client may set a shorter one).
const jwksFetchTimeout = 30 * time.Second

// remoteKeys is a JWKS document fetched from a URL: on first use, again in the background every
// refresh interval, and on demand when a token names a kid the cached set lacks (at most once per
// minRefresh, so forged kids cannot make the gateway hammer the issuer). A failed fetch keeps the
// previous set.
//
// One fetch (HTTP request, JWK parsing and validation) is jwkset's NewStorageFromHTTP without a
// refresh interval. The schedule is kept here rather than in jwkset's refresh goroutine and
// unknown-kid refresh (or keyfunc, built on them): those fetch when created, not on first use;
// their goroutine stops on a context but cannot be waited for, so Close could return with a fetch
// in flight; and their unknown-kid limiter is a golang.org/x/time/rate limiter on the wall clock
// that ignores the other fetches and makes the request wait, with the same deadline bounding
// the wait and the fetch.
type remoteKeys struct {
	url                 string
	refresh, minRefresh time.Duration
	client              *http.Client
	log                 *slog.Logger
	now                 func() time.Time

	set atomic.Pointer[keySet]

	mu        sync.Mutex // serializes fetches; guards lastFetch and started
	lastFetch time.Time
	started   bool

	stop      chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed when the background loop has ended (if it ran)
}

func newRemoteKeys(url string, refresh, minRefresh time.Duration, o options) *remoteKeys {
	client := *o.client
	client.Transport = jwksTransport{base: client.Transport}
	return &remoteKeys{url: url, refresh: refresh, minRefresh: minRefresh, client: &client, log: o.log,
		now: o.now, stop: make(chan struct{}), done: make(chan struct{})}
}

func (r *remoteKeys) keys(ctx context.Context, kid, alg string) ([]any, error) {
	set := r.set.Load()
	if set == nil {
		_ = r.fetchIfStale(ctx, nil, false) // logged; a nil set below says it failed
		if set = r.set.Load(); set == nil {
			return nil, unauthenticated("keys_unavailable", "The token's issuer keys could not be fetched.")
		}
	}
	ks, err := set.lookup(kid, alg)
	if errors.Is(err, errUnknownKid) {
		// The issuer may have rotated its keys: fetch again (rate-limited) and retry once.
		if ferr := r.fetchIfStale(ctx, set, true); ferr == nil {
			if now := r.set.Load(); now != set {
				ks, err = now.lookup(kid, alg)
			}
		}
	}
	if errors.Is(err, errUnknownKid) {
		return nil, unauthenticated("unknown_kid", "The token's key id %q is not known.", kid)
	}
	if len(ks) == 0 {
		return nil, unauthenticated("unknown_kid", "No key of this issuer fits the token's algorithm %q.", alg)
	}
	return ks, nil
}

// fetchIfStale fetches the document unless another caller replaced seen meanwhile, or (when
// limited) the last fetch was less than minRefresh ago. The first fetch starts the background
// loop.
func (r *remoteKeys) fetchIfStale(ctx context.Context, seen *keySet, limited bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.set.Load(); cur != seen {
		return nil // someone else fetched while we waited
	}
	if limited && !r.lastFetch.IsZero() && r.now().Sub(r.lastFetch) < r.minRefresh {
		return errors.New("jwks: refresh rate-limited")
	}
	if !r.lastFetch.IsZero() && seen == nil && r.now().Sub(r.lastFetch) < r.minRefresh {
		return errors.New("jwks: previous fetch failed recently")
	}
	err := r.fetchLocked(ctx)
	if !r.started {
		r.started = true
		go r.loop()
	}
	return err
}

func (r *remoteKeys) fetchLocked(ctx context.Context) error {
	r.lastFetch = r.now()
	set, err := r.get(ctx)
	if err != nil {
		r.log.Warn("jwks fetch", "url", r.url, "err", err)
		return err
	}
	r.set.Store(set)
	return nil
}

// get fetches and parses the document. Not the caller's cancellation: the set serves every
// caller; jwksFetchTimeout and the client's timeout bound it.
func (r *remoteKeys) get(ctx context.Context) (*keySet, error) {
	ctx = context.WithoutCancel(ctx)
	store, err := jwkset.NewStorageFromHTTP(r.url, jwkset.HTTPClientStorageOptions{
		Client: r.client, Ctx: ctx, HTTPTimeout: jwksFetchTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	jwks, err := store.KeyReadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	set, err := keySetOf(jwks)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	return set, nil
}

// loop re-fetches the document every refresh interval until close.
func (r *remoteKeys) loop() {
	defer close(r.done)
	t := time.NewTicker(r.refresh)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		_ = r.fetchLocked(context.Background())
		r.mu.Unlock()
	}
}

// close stops the background loop and waits for it to end.
func (r *remoteKeys) close() {
	r.closeOnce.Do(func() { close(r.stop) })
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	if started {
		<-r.done
	}
}

// jwksTransport asks for JSON and fails a response body longer than maxJWKSBytes, so an issuer
// (or whoever answers for it) cannot make the gateway read an unbounded document.
type jwksTransport struct{ base http.RoundTripper }

func (t jwksTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	req = req.Clone(req.Context())
	req.Header.Set("Accept", "application/json")
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxJWKSBytes}
	return resp, nil
}

// cappedBody reads at most left bytes, and fails once the body turns out to be longer.
type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1] // one byte more than allowed tells a longer body from one that ends here
	}
	n, err := b.ReadCloser.Read(p)
	if b.left -= int64(n); b.left < 0 {
		return 0, fmt.Errorf("document larger than %d bytes", maxJWKSBytes)
	}
	return n, err
}
