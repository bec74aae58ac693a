// Package limits enforces requests-per-minute, tokens-per-minute and tokens-per-day limits per API
// key and per tenant.
//
// Algorithms: per-minute limits are GCRA buckets (the generic cell rate algorithm: a bucket of
// Limit that refills continuously at Limit per minute, so bursts up to the limit pass and then
// requests are spaced evenly); the daily token quota is a fixed window per UTC day (it empties at
// 00:00 UTC).
//
// Tokens are known only after the call, so a request reserves an estimate up front (the
// request's encoded size / 4 plus its max_tokens) and Settle corrects the buckets with the real
// usage once the call has ended: a request using more than it reserved puts the buckets in debt,
// which later requests wait out; one using less gives the rest back.
//
// Buckets live in a Store: Memory (per instance; the embedded default) or Redis (shared by
// instances). Every key includes the tenant, so tenants never share a bucket.
package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/switchyard/switchyard/internal/llm"
)

// Periods of the limits.
const (
	Minute = time.Minute
	Day    = 24 * time.Hour
)

// Limits are the limits of one key or tenant. Zero means no limit.
type Limits struct {
	RPM int64 `yaml:"rpm"` // requests per minute
	TPM int64 `yaml:"tpm"` // tokens per minute
	TPD int64 `yaml:"tpd"` // tokens per UTC day: a quota; exhausted, requests fail as insufficient_quota
}

// IsZero reports whether l sets no limit.
func (l Limits) IsZero() bool { return l == Limits{} }

// Policy says which limits apply to whom.
type Policy struct {
	// Default applies to each tenant without an entry in Tenants.
	Default Limits `yaml:"default"`
	// Tenants are per-tenant limits, shared by every caller of the tenant.
	Tenants map[string]Limits `yaml:"tenants"`
	// Keys are per-API-key limits, by the key's name, on top of its tenant's. Keys without an
	// entry are limited by their tenant's limits only; so are callers without a key (JWT).
	Keys map[string]Limits `yaml:"keys"`
}

// IsZero reports whether p limits nothing.
func (p *Policy) IsZero() bool {
	if !p.Default.IsZero() {
		return false
	}
	for _, l := range p.Tenants {
		if !l.IsZero() {
			return false
		}
	}
	for _, l := range p.Keys {
		if !l.IsZero() {
			return false
		}
	}
	return true
}

// Validate reports negative limits.
func (p *Policy) Validate() error {
	var errs []error
	check := func(where string, l Limits) {
		if l.RPM < 0 || l.TPM < 0 || l.TPD < 0 {
			errs = append(errs, fmt.Errorf("%s: limits must not be negative", where))
		}
	}
	check("default", p.Default)
	for n, l := range p.Tenants {
		check("tenants."+n, l)
	}
	for n, l := range p.Keys {
		check("keys."+n, l)
	}
	return errors.Join(errs...)
}

// What a Limiter does when its store fails (OnStoreError).
const (
	// FailLocal counts the request in a per-instance memory store instead: limits keep holding,
	// per instance (the default).
	FailLocal = "local"
	// FailOpen admits the request unchecked.
	FailOpen = "open"
	// FailClosed refuses the request with KindUnavailable.
	FailClosed = "closed"
)

// Option adjusts New.
type Option func(*Limiter)

// WithClock sets the clock (tests); the default is time.Now.
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// WithPrefix sets the prefix of every bucket key (default DefaultPrefix). Instances sharing a
// Redis and a prefix share their limits. The prefix must not contain '{' or '}'.
func WithPrefix(p string) Option { return func(l *Limiter) { l.prefix = p } }

// WithOnStoreError sets what happens when the store fails: FailLocal (default), FailOpen or
// FailClosed.
func WithOnStoreError(mode string) Option { return func(l *Limiter) { l.onErr = mode } }

// WithLogger sets the logger for store errors (default slog.Default()).
func WithLogger(log *slog.Logger) Option { return func(l *Limiter) { l.log = log } }

// WithMeterProvider sets the meter provider (default the global one). The limiter counts its
// decisions in switchyard.limits.decisions (attribute outcome: allowed, rate_limited,
// quota_exceeded, unchecked, refused) and store failures in switchyard.limits.store_errors.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(l *Limiter) { l.mp = mp } }

// Limiter checks requests against a Policy. It is safe for concurrent use.
type Limiter struct {
	store  Store
	local  *Memory // FailLocal's fallback
	policy Policy
	prefix string
	onErr  string
	now    func() time.Time
	log    *slog.Logger
	mp     metric.MeterProvider

	decisions   metric.Int64Counter
	outcomes    map[string]metric.AddOption // precomputed attribute sets, by outcome
	storeErrors metric.Int64Counter
	errCount    atomic.Int64
	lastLog     atomic.Int64 // Unix ns of the last store error logged
	downUntil   atomic.Int64 // Unix ns: after a failed Take, the store is not asked until then
}

// storeDownFor is how long the limiter, after the store failed, goes straight to its store error
// mode without asking the store: during an outage requests do not each wait out the store
// client's dial retries (a second or more). Then one request asks the store again.
const storeDownFor = time.Second

// errStoreDown stands for the store's answer while it is presumed down.
var errStoreDown = errors.New("limits: the store failed less than a second ago; not asked")

// New returns a limiter enforcing p with buckets in store. It fails on an invalid policy or
// option.
func New(store Store, p Policy, opts ...Option) (*Limiter, error) {
	l := &Limiter{store: store, policy: p, prefix: DefaultPrefix, onErr: FailLocal, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		o(l)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("limits.New: %w", err)
	}
	switch l.onErr {
	case FailLocal:
		l.local = NewMemory()
	case FailOpen, FailClosed:
	default:
		return nil, fmt.Errorf("limits.New: unknown store error mode %q (want %q, %q or %q)", l.onErr, FailLocal, FailOpen, FailClosed)
	}
	for _, c := range l.prefix {
		if c == '{' || c == '}' {
			return nil, fmt.Errorf("limits.New: prefix %q must not contain braces", l.prefix)
		}
	}
	if l.mp == nil {
		l.mp = otel.GetMeterProvider()
	}
	m := l.mp.Meter("github.com/switchyard/switchyard/internal/limits")
	var err error
	if l.decisions, err = m.Int64Counter("switchyard.limits.decisions", metric.WithDescription("Rate limit decisions, by outcome.")); err != nil {
		return nil, fmt.Errorf("limits.New: %w", err)
	}
	l.outcomes = make(map[string]metric.AddOption)
	for _, o := range []string{"allowed", llm.KindRateLimited.String(), llm.KindQuotaExceeded.String(), "unchecked", "refused"} {
		l.outcomes[o] = metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", o)))
	}
	if l.storeErrors, err = m.Int64Counter("switchyard.limits.store_errors", metric.WithDescription("Failed calls to the rate limit store.")); err != nil {
		return nil, fmt.Errorf("limits.New: %w", err)
	}
	return l, nil
}

// StoreErrors reports how many store calls have failed.
func (l *Limiter) StoreErrors() int64 { return l.errCount.Load() }

// Request is what a request asks of its limits.
type Request struct {
	Tenant string // required
	Key    string // the API key's name, "" for callers without one
	Tokens int64  // estimated tokens, reserved until Settle
}

// Quota is one dimension's state for the x-ratelimit-* headers: the tightest of the applicable
// buckets.
type Quota struct {
	Limit     int64         // 0: no such limit applies
	Remaining int64         // after this request
	Reset     time.Duration // until the bucket is full again
}

// Reservation is the outcome of Reserve.
type Reservation struct {
	// Requests and Tokens are the per-minute request and token limits' states, for the
	// x-ratelimit-* headers. Both are zero when the store failed and the request passed
	// unchecked.
	Requests, Tokens Quota

	l        *Limiter
	store    Store
	buckets  []Bucket // the token buckets, for Settle
	reserved int64
}

// dims are the dimensions of a Limits, in bucket order.
type dim struct {
	name   string // in keys and messages
	label  string
	period time.Duration
	window bool
	tokens bool
}

var dims = [3]dim{
	{"rpm", "requests per minute (RPM)", Minute, false, false},
	{"tpm", "tokens per minute (TPM)", Minute, false, true},
	{"tpd", "tokens per day (TPD)", Day, true, true},
}

func (d dim) limit(l Limits) int64 {
	switch d.name {
	case "rpm":
		return l.RPM
	case "tpm":
		return l.TPM
	}
	return l.TPD
}

// bucketRef says which scope and dimension a bucket is.
type bucketRef struct {
	dim   dim
	scope string // "key" or "tenant"
	name  string
}

// Reserve takes one request and r.Tokens from the per-minute and daily buckets of r's key and
// tenant, all or nothing. Admitted, it returns the reservation (settle it with Settle once the
// call has ended). Refused, it returns the reservation too (for the headers) and an *llm.Error:
// KindQuotaExceeded when the daily token quota is the reason (Code "insufficient_quota"),
// KindRateLimited otherwise (Code "rate_limit_exceeded"), with RetryAfter set when waiting
// helps. With no limits for r, it returns a zero reservation. When the store fails, the
// limiter's store error mode decides (FailLocal, FailOpen, FailClosed).
func (l *Limiter) Reserve(ctx context.Context, r Request) (*Reservation, error) {
	res := &Reservation{l: l, reserved: max(r.Tokens, 0)}
	keyL, hasKey := Limits{}, false
	if r.Key != "" {
		keyL, hasKey = l.policy.Keys[r.Key]
	}
	tenantL, ok := l.policy.Tenants[r.Tenant]
	if !ok {
		tenantL = l.policy.Default
	}
	if keyL.IsZero() && tenantL.IsZero() {
		return res, nil
	}
	now := l.now()
	base := l.prefix + "{" + url.QueryEscape(r.Tenant) + "}:"
	bs := make([]Bucket, 0, 6)
	refs := make([]bucketRef, 0, 6)
	add := func(scope, name, keyBase string, lim Limits) {
		for _, d := range dims {
			n := d.limit(lim)
			if n <= 0 {
				continue
			}
			b := Bucket{Key: keyBase + d.name, Limit: n, Period: d.period, Window: d.window, Cost: 1}
			if d.tokens {
				b.Cost = res.reserved
			}
			if d.window {
				b.Key += ":" + strconv.FormatInt(now.UnixNano()/int64(d.period), 10)
			}
			bs = append(bs, b)
			refs = append(refs, bucketRef{d, scope, name})
		}
	}
	if hasKey {
		add("key", r.Key, base+"k:"+url.QueryEscape(r.Key)+":", keyL)
	}
	add("tenant", r.Tenant, base+"t:", tenantL)

	res.store = l.store
	states, taken, err := l.take(ctx, now, bs)
	if err != nil {
		l.storeFailed(ctx, "take", err)
		switch l.onErr {
		case FailOpen:
			l.count(ctx, "unchecked")
			return &Reservation{l: l}, nil
		case FailClosed:
			l.count(ctx, "refused")
			return res, &llm.Error{Kind: llm.KindUnavailable, Message: "The rate limiter is unavailable; try again shortly.", Err: err}
		}
		res.store = l.local
		if states, taken, err = l.local.Take(ctx, now, bs); err != nil {
			return res, llm.Wrap(llm.KindInternal, err, "")
		}
	}
	for i, st := range states {
		q := &res.Requests
		switch refs[i].dim.name {
		case "tpm":
			q = &res.Tokens
		case "tpd":
			continue
		}
		if q.Limit == 0 || st.Remaining < q.Remaining {
			*q = Quota{Limit: bs[i].Limit, Remaining: st.Remaining, Reset: st.Reset}
		}
	}
	if !taken {
		e := l.refusal(bs, refs, states)
		l.count(ctx, e.Kind.String())
		return res, e
	}
	for i, ref := range refs {
		if ref.dim.tokens {
			res.buckets = append(res.buckets, bs[i])
		}
	}
	l.count(ctx, "allowed")
	return res, nil
}

// refusal builds the error for a refused request: the daily quota wins; among the others, the
// bucket with the longest wait.
func (l *Limiter) refusal(bs []Bucket, refs []bucketRef, states []BucketState) *llm.Error {
	worst := -1
	var wait time.Duration
	for i, st := range states {
		if st.Allowed {
			continue
		}
		if refs[i].dim.window {
			worst = i
			wait = st.RetryAfter
			break
		}
		if worst < 0 || st.RetryAfter < 0 || (wait >= 0 && st.RetryAfter > wait) {
			worst, wait = i, st.RetryAfter
		}
	}
	b, ref := bs[worst], refs[worst]
	e := &llm.Error{Kind: llm.KindRateLimited, Code: "rate_limit_exceeded"}
	if ref.dim.window {
		e.Kind, e.Code = llm.KindQuotaExceeded, "insufficient_quota"
	}
	if wait < 0 {
		e.Message = fmt.Sprintf("Request too large for the %s of %s %q: Limit %d, Requested %d. Reduce the input or max_tokens.",
			ref.dim.label, ref.scope, ref.name, b.Limit, b.Cost)
		return e
	}
	e.RetryAfter = wait
	e.Message = fmt.Sprintf("Rate limit reached for the %s of %s %q: Limit %d, Remaining %d, Requested %d. Please try again in %s.",
		ref.dim.label, ref.scope, ref.name, b.Limit, states[worst].Remaining, b.Cost, FormatReset(wait))
	if ref.dim.window {
		e.Message = fmt.Sprintf("You exceeded the %s of %s %q: Limit %d, Remaining %d, Requested %d. The quota resets at 00:00 UTC.",
			ref.dim.label, ref.scope, ref.name, b.Limit, states[worst].Remaining, b.Cost)
	}
	return e
}

// Settle corrects the token buckets of an admitted request once its call has ended: used is the
// tokens the call really used (from the upstream's usage), or a negative number when unknown.
// Unknown usage keeps the estimate when the call succeeded (failed false) and gives all of it
// back when it failed (a failed call costs a request, not tokens). Settle is a no-op for
// refused or unchecked requests and when nothing changes. Store errors are counted and logged,
// not returned.
func (r *Reservation) Settle(ctx context.Context, used int64, failed bool) {
	if r == nil || len(r.buckets) == 0 {
		return
	}
	buckets := r.buckets
	r.buckets = nil // settle once
	if used < 0 {
		if !failed {
			return
		}
		used = 0
	}
	delta := used - r.reserved
	if delta == 0 {
		return
	}
	bs := make([]Bucket, len(buckets))
	for i, b := range buckets {
		b.Cost = delta
		bs[i] = b
	}
	if err := r.store.Add(ctx, r.l.now(), bs); err != nil {
		r.l.storeFailed(ctx, "add", err)
	}
}

// take is the store's Take, unless the store failed less than storeDownFor ago (errStoreDown).
// Once that time has passed, a single request asks the store again; the others keep going to the
// error mode until it succeeds.
func (l *Limiter) take(ctx context.Context, now time.Time, bs []Bucket) ([]BucketState, bool, error) {
	wall := time.Now().UnixNano()
	if until := l.downUntil.Load(); until != 0 &&
		(wall < until || !l.downUntil.CompareAndSwap(until, wall+int64(storeDownFor))) {
		return nil, false, errStoreDown
	}
	states, taken, err := l.store.Take(ctx, now, bs)
	switch {
	case err != nil && ctx.Err() == nil: // a caller that left says nothing about the store
		l.downUntil.Store(time.Now().UnixNano() + int64(storeDownFor))
	case err == nil && l.downUntil.Load() != 0:
		l.downUntil.Store(0)
	}
	return states, taken, err
}

func (l *Limiter) count(ctx context.Context, outcome string) {
	l.decisions.Add(ctx, 1, l.outcomes[outcome])
}

// storeFailed counts a store error and logs it, at most once every 10 seconds.
func (l *Limiter) storeFailed(ctx context.Context, op string, err error) {
	l.errCount.Add(1)
	l.storeErrors.Add(ctx, 1, metric.WithAttributes(attribute.String("op", op)))
	now := time.Now().UnixNano()
	last := l.lastLog.Load()
	if now-last >= int64(10*time.Second) && l.lastLog.CompareAndSwap(last, now) {
		l.log.WarnContext(ctx, "rate limit store failed", "op", op, "err", err, "on_error", l.onErr, "failures", l.errCount.Load())
	}
}

// FormatReset formats d as OpenAI's x-ratelimit-reset-* headers do: "6m0s", "1s", "20ms";
// durations of a second or more are rounded up to whole seconds (a client waiting that long
// finds room), shorter ones up to whole milliseconds.
func FormatReset(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	if d < time.Second {
		return ((d + time.Millisecond - 1) / time.Millisecond * time.Millisecond).String()
	}
	return ((d + time.Second - 1) / time.Second * time.Second).String()
}
