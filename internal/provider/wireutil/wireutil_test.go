package wireutil

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"none", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"20"}}, 20 * time.Second},
		{"fractional seconds", http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{"http date", http.Header{"Retry-After": {"Thu, 01 Jan 2026 12:00:30 GMT"}}, 30 * time.Second},
		{"date in the past", http.Header{"Retry-After": {"Thu, 01 Jan 2026 11:00:00 GMT"}}, 0},
		{"milliseconds first", http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"1"}}, 250 * time.Millisecond},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := RetryAfter(c.h, now); got != c.want {
				t.Errorf("RetryAfter = %v, want %v", got, c.want)
			}
		})
	}
}

func TestClassifyTransport(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	cases := []struct {
		name      string
		ctx       context.Context
		err       error
		midStream bool
		want      llm.Kind
	}{
		{"canceled", canceled, context.Canceled, false, llm.KindCanceled},
		{"deadline", expired, context.DeadlineExceeded, true, llm.KindTimeout},
		{"refused", context.Background(), errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), false, llm.KindUnavailable},
		{"reset mid-stream", context.Background(), errors.New("read: connection reset by peer"), true, llm.KindUpstream},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if e := ClassifyTransport(c.ctx, "p", c.err, c.midStream); e.Kind != c.want || !errors.Is(e, c.err) {
				t.Errorf("kind = %v, want %v (cause kept: %v)", e.Kind, c.want, errors.Is(e, c.err))
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"  short  ", 5, "short"},
		{"abcdef", 4, "abcd…"},
		{"ééé", 3, "é…"}, // 3 bytes would split the second é
	}
	for _, c := range cases {
		if got := Truncate(c.in, c.n); got != c.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}

func TestLineReader(t *testing.T) {
	long := strings.Repeat("x", 40<<10) // longer than the reader's buffer
	cases := []struct {
		name    string
		in      string
		max     int
		want    []string
		wantErr error
	}{
		{"lf and crlf", "a\nb\r\n\nc", 1 << 20, []string{"a", "b", "", "c"}, io.EOF},
		{"long line", long + "\nz\n", 1 << 20, []string{long, "z"}, io.EOF},
		{"over the limit", long + "\n", 1 << 10, nil, ErrLineTooLong},
		{"short line over the limit", "abcdef\n", 3, nil, ErrLineTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewLineReader(strings.NewReader(c.in), c.max)
			var got []string
			var err error
			for {
				var line []byte
				if line, err = r.ReadLine(); err != nil {
					break
				}
				got = append(got, string(line))
			}
			if !errors.Is(err, c.wantErr) {
				t.Errorf("end = %v, want %v", err, c.wantErr)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("lines = %.60q, want %.60q", got, c.want)
			}
		})
	}
}

func TestSSEReader(t *testing.T) {
	type ev struct{ name, data string }
	cases := []struct {
		name    string
		in      string
		want    []ev
		wantErr error
	}{
		{"named and unnamed", "event: ping\ndata: {}\n\ndata: a\n\n", []ev{{"ping", "{}"}, {"", "a"}}, io.EOF},
		{"comments, id, retry, no space", ": hi\nid: 1\nretry: 5\ndata:x\n\n", []ev{{"", "x"}}, io.EOF},
		{"multi-line data, CRLF", "data: a\r\ndata: b\r\n\r\n", []ev{{"", "a\nb"}}, io.EOF},
		{"event without data dropped", "event: x\n\ndata: y\n\n", []ev{{"", "y"}}, io.EOF},
		{"pending event at the end", "data: last", []ev{{"", "last"}}, io.EOF},
		{"oversized event", "data: " + strings.Repeat("x", 60) + "\ndata: " + strings.Repeat("y", 60) + "\n\n", nil, ErrLineTooLong},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewSSEReader(strings.NewReader(c.in), 100)
			var got []ev
			var err error
			for {
				var data []byte
				var name string
				if data, name, err = r.Next(); err != nil {
					break
				}
				got = append(got, ev{name, string(data)})
			}
			if !errors.Is(err, c.wantErr) {
				t.Errorf("end = %v, want %v", err, c.wantErr)
			}
			if len(got) != len(c.want) {
				t.Fatalf("events = %q, want %q", got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("event %d = %q, want %q", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestClassifyStatus(t *testing.T) {
	cases := []struct {
		status   int
		upstream string
		want     llm.Kind
		wantCode string
		wantMsg  string
	}{
		{400, "bad temperature", llm.KindInvalidArgument, "", "bad temperature"},
		{422, "", llm.KindInvalidArgument, "", "rejected the request"},
		{401, "key sk-1 invalid", llm.KindUnauthenticated, "", "gateway's credentials"},
		{403, "", llm.KindPermissionDenied, "", "denied"},
		{404, "model x not found", llm.KindNotFound, "model_not_found", "not found"},
		{408, "", llm.KindTimeout, "", "timed out"},
		{413, "", llm.KindTooLarge, "", "too large"},
		{402, "", llm.KindQuotaExceeded, "insufficient_quota", "quota"},
		{429, "", llm.KindRateLimited, "", "rate limit"},
		{500, "stack trace", llm.KindUpstream, "", "failed"},
		{502, "", llm.KindUpstream, "", "failed"},
		{503, "", llm.KindUnavailable, "", "unavailable"},
		{504, "", llm.KindTimeout, "", "timed out"},
		{529, "", llm.KindRateLimited, "", "overloaded"},
	}
	for _, c := range cases {
		t.Run(http.StatusText(c.status), func(t *testing.T) {
			e := &llm.Error{UpstreamMessage: c.upstream}
			ClassifyStatus(e, c.status)
			if e.Kind != c.want || e.Code != c.wantCode || !strings.Contains(e.Message, c.wantMsg) {
				t.Errorf("kind/code/message = %v/%q/%q, want %v/%q/…%s…", e.Kind, e.Code, e.Message, c.want, c.wantCode, c.wantMsg)
			}
		})
	}
}

func TestCallContext(t *testing.T) {
	ctx, cancel := CallContext(context.Background(), time.Minute)
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		t.Error("no deadline from the timeout")
	}
	parent, pcancel := context.WithTimeout(context.Background(), time.Hour)
	defer pcancel()
	ctx2, cancel2 := CallContext(parent, time.Minute)
	defer cancel2()
	if d1, _ := parent.Deadline(); func() bool { d2, _ := ctx2.Deadline(); return !d2.Equal(d1) }() {
		t.Error("the caller's deadline was replaced")
	}
	ctx3, cancel3 := CallContext(context.Background(), 0)
	cancel3()
	if _, ok := ctx3.Deadline(); ok || ctx3.Err() == nil {
		t.Error("timeout 0 set a deadline, or the CancelFunc does not cancel")
	}
}

func TestPostJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Test") != "1" || string(b) != "{\"a\":\"<b>\"}\n" {
			w.WriteHeader(400)
			io.WriteString(w, "bad request: "+string(b))
			return
		}
		w.WriteHeader(200)
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	cases := []struct {
		name       string
		header     http.Header
		wantStatus int
		wantBody   string // errBody
	}{
		{"2xx", http.Header{"X-Test": {"1"}}, 200, ""},
		{"error answer", nil, 400, "bad request: {\"a\":\"<b>\"}\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, errBody, err := PostJSON(context.Background(), srv.Client(), "p", srv.URL, map[string]string{"a": "<b>"}, c.header)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.wantStatus || string(errBody) != c.wantBody {
				t.Errorf("status %d body %q, want %d %q", resp.StatusCode, errBody, c.wantStatus, c.wantBody)
			}
			resp.Body.Close()
		})
	}
	_, _, err := PostJSON(context.Background(), srv.Client(), "p", srv.URL, func() {}, nil)
	if e, ok := errors.AsType[*llm.Error](err); !ok || e.Kind != llm.KindInvalidArgument || e.Provider != "p" {
		t.Errorf("unencodable body: %v", err)
	}
}

func TestBaseURL(t *testing.T) {
	cases := []struct{ configured, want string }{
		{"", "https://api.example.com/v1"},
		{"http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1"},
		{"https://h", "https://h"},
	}
	for _, c := range cases {
		if got, err := BaseURL("x.New", c.configured, "https://api.example.com/v1"); err != nil || got != c.want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", c.configured, got, err, c.want)
		}
	}
	for _, bad := range []string{"ftp://h", "localhost:8000", "http://", "://x"} {
		if _, err := BaseURL("x.New", bad, "https://d"); err == nil || !strings.Contains(err.Error(), "x.New") {
			t.Errorf("BaseURL(%q) err = %v; want an error naming x.New", bad, err)
		}
	}
}
