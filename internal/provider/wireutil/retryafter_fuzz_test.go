package wireutil

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzRetryAfter checks that any Retry-After-Ms and Retry-After values give a delay of at least 0
// (NaN, infinities and numbers too large for a Duration included), and that a whole number of
// seconds alone gives that many seconds.
func FuzzRetryAfter(f *testing.F) {
	for _, v := range [][2]string{{"", "20"}, {"", "1.5"}, {"250", "1"}, {"", "Thu, 01 Jan 2026 12:00:30 GMT"}, {"", "soon"}} {
		f.Add(v[0], v[1])
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, ms, s string) {
		h := http.Header{}
		if ms != "" {
			h.Set("Retry-After-Ms", ms)
		}
		if s != "" {
			h.Set("Retry-After", s)
		}
		d := RetryAfter(h, now)
		if d < 0 {
			t.Fatalf("RetryAfter(ms %q, s %q) = %v", ms, s, d)
		}
		if n, err := strconv.Atoi(h.Get("Retry-After")); ms == "" && err == nil && n >= 0 && n < 1e9 && d != time.Duration(n)*time.Second {
			t.Fatalf("Retry-After %q = %v", s, d)
		}
	})
}
