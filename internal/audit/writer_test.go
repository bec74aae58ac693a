package audit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/switchyard/switchyard/internal/audit"
)

// blockingSink signals each Append on entered and holds it until release is closed.
type blockingSink struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	got     []*audit.Record
	fail    int // the first fail appends return an error
}

func (s *blockingSink) Append(_ context.Context, recs []*audit.Record) error {
	if s.entered != nil {
		s.entered <- struct{}{}
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("sink down")
	}
	s.got = append(s.got, recs...)
	return nil
}

func (s *blockingSink) Close() error { return nil }

// syncBuf is a goroutine-safe log buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func droppedByReason(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != audit.MetricDropped {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				reason, _ := dp.Attributes.Value("reason")
				out[reason.AsString()] += dp.Value
			}
		}
	}
	return out
}

// TestWriterFullBuffer: with the sink stuck, Write keeps returning at once; entries beyond the
// buffer are dropped, counted by reason and logged at warn once; the rest are written later.
func TestWriterFullBuffer(t *testing.T) {
	const buffer, extra = 8, 5
	sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	reader := sdkmetric.NewManualReader()
	var logs syncBuf
	w := audit.NewWriter(sink, audit.WriterOptions{BufferSize: buffer, BatchSize: 1,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
		Logger:        slog.New(slog.NewTextHandler(&logs, nil))})
	if !w.Write(&audit.Entry{Record: rec("a", 0, t0)}) {
		t.Fatal("the first entry was dropped")
	}
	<-sink.entered // the writer holds entry 0 in Append; the buffer is empty
	accepted := 0
	for i := range buffer + extra {
		if w.Write(&audit.Entry{Record: rec("a", i+1, t0)}) {
			accepted++
		}
	}
	if accepted != buffer || w.Dropped() != extra {
		t.Fatalf("accepted %d, dropped %d; want %d and %d", accepted, w.Dropped(), buffer, extra)
	}
	if got := droppedByReason(t, reader); got[audit.DropBufferFull] != extra || len(got) != 1 {
		t.Errorf("dropped counter = %v, want %d buffer_full", got, extra)
	}
	if n := strings.Count(logs.String(), "audit records dropped"); n != 1 {
		t.Errorf("%d drop warnings, want 1 (rate-limited):\n%s", n, logs.String())
	}
	close(sink.release)
	go func() {
		for range sink.entered {
		}
	}()
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(sink.entered)
	if len(sink.got) != 1+buffer {
		t.Errorf("%d records written, want %d", len(sink.got), 1+buffer)
	}
	if w.Write(&audit.Entry{Record: rec("a", 99, t0)}) {
		t.Error("Write after Close accepted the entry")
	}
	if got := droppedByReason(t, reader); got[audit.DropClosed] != 1 {
		t.Errorf("dropped after close = %v", got)
	}
}

// TestWriterSinkErrors: failed appends are retried; a batch that fails every retry is dropped
// and counted.
func TestWriterSinkErrors(t *testing.T) {
	cases := []struct {
		name        string
		fail        int
		wantWritten int
		wantDropped int64
	}{
		{"recovers on retry", 2, 1, 0},
		{"fails every retry", 3, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink := &blockingSink{fail: c.fail}
			w := audit.NewWriter(sink, audit.WriterOptions{RetryDelays: []time.Duration{0, 0},
				Logger: slog.New(slog.DiscardHandler)})
			w.Write(&audit.Entry{Record: rec("a", 0, t0)})
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if len(sink.got) != c.wantWritten || w.Dropped() != c.wantDropped {
				t.Errorf("written %d, dropped %d; want %d, %d", len(sink.got), w.Dropped(), c.wantWritten, c.wantDropped)
			}
		})
	}
}

func TestRedactor(t *testing.T) {
	cases := []struct {
		name            string
		paths, patterns []string
		in, want        string
	}{
		{"path into arrays", []string{"request.messages.*.content"}, nil,
			`{"messages":[{"content":"a","role":"user"},{"content":"b"}]}`,
			`{"messages":[{"content":"[REDACTED]","role":"user"},{"content":"[REDACTED]"}]}`},
		{"missing path", []string{"request.nope.x"}, nil, `{"a":1}`, `{"a":1}`},
		{"wildcard key", []string{"request.*.secret"}, nil, `{"a":{"secret":1},"b":{"secret":2,"k":3}}`,
			`{"a":{"secret":"[REDACTED]"},"b":{"k":3,"secret":"[REDACTED]"}}`},
		{"pattern in every string", nil, []string{`sk-[a-z0-9]{6,}`, `\b\d{3}-\d{4}\b`},
			`{"a":"key sk-abcdef123 call 555-1234","b":["sk-zzzzzzz"],"n":5551234}`,
			`{"a":"key [REDACTED] call [REDACTED]","b":["[REDACTED]"],"n":5551234}`},
		{"managed key secrets always", nil, nil,
			`{"secret":"sk-sy-` + strings.Repeat("0a", 32) + `","name":"ci"}`,
			`{"name":"ci","secret":"[REDACTED]"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := audit.NewRedactor(c.paths, c.patterns)
			if err != nil {
				t.Fatal(err)
			}
			sink := &blockingSink{}
			w := audit.NewWriter(sink, audit.WriterOptions{Redactor: r})
			w.Write(&audit.Entry{Record: rec("a", 0, t0), Body: func() *audit.Body { return &audit.Body{Request: []byte(c.in)} }})
			if err := w.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, err := audit.OpenBody(nil, sink.got[0])
			if err != nil {
				t.Fatal(err)
			}
			if want := `{"request":` + c.want + `}`; string(got) != want {
				t.Errorf("body = %s\nwant   %s", got, want)
			}
		})
	}
	for _, bad := range []struct{ paths, patterns []string }{{[]string{"a..b"}, nil}, {nil, []string{"("}}} {
		if _, err := audit.NewRedactor(bad.paths, bad.patterns); err == nil {
			t.Errorf("NewRedactor(%q, %q) accepted", bad.paths, bad.patterns)
		}
	}
}

func TestJSONL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	ctx := context.Background()
	s, err := audit.OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, []string{"a", "b"}, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening continues each chain where it ended.
	s, err = audit.OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	r := rec("a", 10, t0)
	if err := s.Append(ctx, []*audit.Record{r}); err != nil || r.Seq != 11 {
		t.Fatalf("append after reopening: seq %d, %v; want 11", r.Seq, err)
	}
	_ = s.Close()
	data, _ := os.ReadFile(path)
	if problems, err := audit.VerifyJSONL(bytes.NewReader(data)); err != nil || len(problems) > 0 {
		t.Fatalf("VerifyJSONL = %v, %v", problems, err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	cases := []struct {
		name    string
		edit    func([]string) []string
		wantSeq int64
	}{
		{"edited field", func(l []string) []string {
			l[4] = strings.Replace(l[4], `"output_tokens":7`, `"output_tokens":8`, 1)
			return l
		}, 3},
		{"removed line", func(l []string) []string { return append(l[:6:6], l[7:]...) }, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			edited := c.edit(append([]string(nil), lines...))
			problems, err := audit.VerifyJSONL(strings.NewReader(strings.Join(edited, "")))
			if err != nil || len(problems) != 1 || problems[0].Tenant != "a" || problems[0].Seq != c.wantSeq {
				t.Errorf("VerifyJSONL = %v, %v; want one problem at a/%d", problems, err, c.wantSeq)
			}
		})
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), `"output_tokens":7`, `"output_tokens":9`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.OpenJSONL(path); err == nil {
		t.Error("OpenJSONL accepted a file whose chain is broken")
	}
}
