// Package wireutil holds the small pieces of wire handling that several provider adapters share:
// a line reader without a small line limit, a Server-Sent Events reader, Retry-After parsing,
// transport error classification and the truncation of upstream messages kept for operators.
package wireutil

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard/switchyard/internal/llm"
)

// MaxUpstreamMessage bounds the upstream message an *llm.Error keeps for operators.
const MaxUpstreamMessage = 512

// Truncate trims s and cuts it to at most n bytes without splitting a UTF-8 sequence, marking a
// cut with "…".
func Truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// RetryAfter reads retry-after-ms (milliseconds, sent by OpenAI and Azure) or Retry-After
// (seconds or an HTTP date, relative to now). It returns 0 when neither is usable, and the
// largest Duration for a delay too long for one.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil {
			if d := toDuration(ms, time.Millisecond); d > 0 {
				return d
			}
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return toDuration(s, time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// toDuration returns n units: 0 for NaN, infinities and n <= 0; the largest Duration when n units
// do not fit in one (a float-to-integer conversion out of range gives a negative Duration).
func toDuration(n float64, unit time.Duration) time.Duration {
	if math.IsNaN(n) || math.IsInf(n, 0) || n <= 0 {
		return 0
	}
	if d := n * float64(unit); d < math.MaxInt64 {
		return time.Duration(d)
	}
	return math.MaxInt64
}

// ClassifyTransport turns an error from sending a request or reading an answer into an
// *llm.Error of the given provider. ctx is the call's context: its end decides between canceled
// and timed out. midStream selects the kind for a broken connection: KindUpstream once the
// upstream had answered, KindUnavailable when it could not be reached. err stays the cause.
func ClassifyTransport(ctx context.Context, provider string, err error, midStream bool) *llm.Error {
	e := &llm.Error{Provider: provider, Err: err, UpstreamMessage: Truncate(err.Error(), MaxUpstreamMessage)}
	var netErr net.Error
	switch cerr := ctx.Err(); {
	case errors.Is(cerr, context.Canceled) || (cerr == nil && errors.Is(err, context.Canceled)):
		e.Kind, e.Message = llm.KindCanceled, "the request was canceled"
	case cerr != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		e.Kind, e.Message = llm.KindTimeout, "the upstream provider timed out"
	case midStream:
		e.Kind, e.Message = llm.KindUpstream, "the upstream provider's stream broke"
	default:
		e.Kind, e.Message = llm.KindUnavailable, "the upstream provider is unreachable"
	}
	return e
}
