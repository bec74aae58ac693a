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
)

// remoteKeys is a JWKS document fetched from a URL: on first use, again in the background every
// refresh interval, and on demand when a token names a kid the cached set lacks (at most once per
// minRefresh, so forged kids cannot make the gateway hammer the issuer). A failed fetch keeps the
// previous set.
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
	return &remoteKeys{url: url, refresh: refresh, minRefresh: minRefresh, client: o.client, log: o.log,
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
	// Not the caller's cancellation: the set serves every caller; the client's timeout bounds it.
	set, err := r.get(context.WithoutCancel(ctx))
	if err != nil {
		r.log.Warn("jwks fetch", "url", r.url, "err", err)
		return err
	}
	r.set.Store(set)
	return nil
}

func (r *remoteKeys) get(ctx context.Context) (*keySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks %s: status %s", r.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", r.url, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks %s: document larger than %d bytes", r.url, maxJWKSBytes)
	}
	set, err := parseJWKS(body)
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
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		r.mu.Lock()
		_ = r.fetchLocked(ctx)
		r.mu.Unlock()
		cancel()
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
