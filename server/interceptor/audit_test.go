package interceptor_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/interceptor"
)

// recorder is an Auditor keeping every entry.
type recorder struct {
	mu      sync.Mutex
	entries []*audit.Entry
}

func (r *recorder) Write(e *audit.Entry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, e)
	return true
}

func (r *recorder) all() []*audit.Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*audit.Entry(nil), r.entries...)
}

// startAudited serves the chain with a over bufconn, like start in chain_test.go.
func startAudited(tb testing.TB, a interceptor.Auditor, bodyMax int) pb.ChatServiceClient {
	tb.Helper()
	return startAuditedWith(tb, a, bodyMax, apiKeyConfig, nil)
}

// startAuditedWith is startAudited with the API keys of ac and the limiter l (nil: no limits).
func startAuditedWith(tb testing.TB, a interceptor.Auditor, bodyMax int, ac auth.Config, l *limits.Limiter) pb.ChatServiceClient {
	tb.Helper()
	authn, err := auth.New(ac)
	if err != nil {
		tb.Fatal(err)
	}
	icfg := interceptor.Config{Logger: slog.New(slog.DiscardHandler), Authenticator: authn, AuditBodyMax: bodyMax, Limiter: l}
	if a != nil {
		icfg.Auditor = a
	}
	withSpan := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(trace.ContextWithSpanContext(ctx, testSpan), req)
	}
	// Pinned "fake/m" is retried once, quickly: the audit record's attempts count the retry.
	one := 1
	rt, err := router.Build(map[string]router.Backend{"fake": {Provider: provider{}}}, router.Config{
		ProviderRetry: map[string]router.RetryConfig{"fake": {MaxRetries: &one, InitialBackoff: time.Millisecond, RetryAfterCap: time.Millisecond}},
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{withSpan}, interceptor.Unary(icfg)...)...),
		grpc.ChainStreamInterceptor(interceptor.Stream(icfg)...),
	)
	server.Register(s, func() *router.Router { return rt })
	lis := bufconn.Listen(1 << 20)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return pb.NewChatServiceClient(conn)
}

func TestAuditRecords(t *testing.T) {
	rec := &recorder{}
	chat := startAudited(t, rec, 1<<10)
	ctx := withMD("authorization", "Bearer "+goodKey, "x-request-id", "req-1")
	req := chatReq("hello")
	req.User = "alice"
	if _, err := chat.CreateChatCompletion(ctx, req); err != nil {
		t.Fatal(err)
	}
	if _, err := chat.CreateChatCompletion(withMD("authorization", "Bearer "+goodKey), chatReq("ratelimit")); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("ratelimit: %v", err)
	}
	st, err := chat.StreamChatCompletion(withMD("authorization", "Bearer "+goodKey), &pb.StreamChatCompletionRequest{
		Request: &pb.CreateChatCompletionRequest{Model: "fake/m", Messages: chatReq("s").Messages,
			StreamOptions: &pb.StreamOptions{IncludeUsage: true}}})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, st)

	got := rec.all()
	if len(got) != 3 {
		t.Fatalf("%d entries, want 3", len(got))
	}
	method := "/switchyard.v1.ChatService/"
	cases := []struct {
		r                                  *audit.Record
		rpc, class, code, user, reqID, tid string
		attempts                           int
	}{
		{got[0].Record, method + "CreateChatCompletion", audit.ClassOK, "OK", "alice", "req-1", testSpan.TraceID().String(), 1},
		{got[1].Record, method + "CreateChatCompletion", audit.ClassQuota, "RESOURCE_EXHAUSTED", "", "", testSpan.TraceID().String(), 2}, // retried once
		{got[2].Record, method + "StreamChatCompletion", audit.ClassOK, "OK", "", "", "", 1},
	}
	for i, c := range cases {
		r := c.r
		if r.Tenant != "acme" || r.Subject != "dify" || r.KeyName != "dify" || r.RPC != c.rpc || r.Class != c.class ||
			r.Code != c.code || r.User != c.user || r.Model != "fake/m" || r.Target != "fake/m" ||
			r.Transport != audit.TransportGRPC || r.ClientAddr == "" || r.RequestID == "" || r.TraceID != c.tid {
			t.Errorf("entry %d: %+v", i, r)
		}
		if c.reqID != "" && r.RequestID != c.reqID {
			t.Errorf("entry %d: request id %q, want %q", i, r.RequestID, c.reqID)
		}
		if r.Attempts != c.attempts {
			t.Errorf("entry %d: attempts %d, want %d", i, r.Attempts, c.attempts)
		}
	}
	if got[2].Record.OutputTokens != 0 || got[2].Record.InputTokens != 0 {
		// The fake stream's usage chunk has only a total: no prompt/completion split to record.
		t.Errorf("stream tokens %d/%d", got[2].Record.InputTokens, got[2].Record.OutputTokens)
	}
	b := got[0].Body()
	var reqJSON map[string]any
	if err := json.Unmarshal(b.Request, &reqJSON); err != nil || reqJSON["user"] != "alice" || len(b.Response) != 1 {
		t.Errorf("body: request %s (%v), %d responses", b.Request, err, len(b.Response))
	}
	if b := got[2].Body(); len(b.Response) != 3 || b.Truncated {
		t.Errorf("stream body: %d responses, truncated %v; want 3", len(b.Response), b.Truncated)
	}
}

// TestAuditAndLimitsShareTheRecord: the audit record and the limits settlement take a call's
// route, attempts and usage from the same per-call record; for a stream, the last usage the
// upstream reported, also when the client asked for no usage chunk.
func TestAuditAndLimitsShareTheRecord(t *testing.T) {
	l := frozenLimiter(t, limits.Policy{Tenants: map[string]limits.Limits{"acme": {RPM: 2, TPM: 10_000}}})
	rec := &recorder{}
	chat := pb.NewChatServiceClient(startLimitedAudited(t, l, &usageProvider{usage: 700}, rec))
	if _, err := chat.CreateChatCompletion(authed(), chatReq("hi")); err != nil {
		t.Fatal(err)
	}
	st, err := chat.StreamChatCompletion(authed(), &pb.StreamChatCompletionRequest{Request: chatReq("hi")})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, st)
	got := rec.all()
	if len(got) != 2 {
		t.Fatalf("%d entries, want 2", len(got))
	}
	for i, e := range got {
		if r := e.Record; r.Target != "fake/m" || r.Attempts != 1 || r.InputTokens != 350 || r.OutputTokens != 350 {
			t.Errorf("entry %d: target %q attempts %d tokens %d/%d; want fake/m, 1, 350/350", i, r.Target, r.Attempts, r.InputTokens, r.OutputTokens)
		}
	}
	if got := remainingTokens(t, l); got != 10_000-2*700 {
		t.Errorf("remaining tokens = %d, want %d", got, 10_000-2*700)
	}
}

// TestAuditRefusals: a call refused by auth, authz or limits, or one that panics, leaves exactly
// one record with the refusal's code; refused before authentication, it goes to the
// unauthenticated chain without a body.
func TestAuditRefusals(t *testing.T) {
	ac := auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{
		{Name: "dify", Key: goodKey, Tenant: "acme"},
		{Name: "reader", Key: "sk-reader-key", Tenant: "acme", Scopes: []string{auth.ScopeModelsRead}},
	}}
	cases := []struct {
		name, key, text string
		tenant, subject string
		class, code     string
		wantErr         codes.Code
		wantBody        bool
	}{
		{"bad key", "sk-wrong", "hi", audit.UnauthenticatedTenant, "", audit.ClassAuthentication, "UNAUTHENTICATED", codes.Unauthenticated, false},
		{"no key", "", "hi", audit.UnauthenticatedTenant, "", audit.ClassAuthentication, "UNAUTHENTICATED", codes.Unauthenticated, false},
		{"missing scope", "sk-reader-key", "hi", "acme", "reader", audit.ClassAuthentication, "PERMISSION_DENIED", codes.PermissionDenied, true},
		{"rate limited", goodKey, "hi", "acme", "dify", audit.ClassQuota, "RESOURCE_EXHAUSTED", codes.ResourceExhausted, true},
		{"panic", goodKey, "panic", "acme", "dify", audit.ClassService, "INTERNAL", codes.Internal, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			var l *limits.Limiter
			if c.name == "rate limited" {
				l = frozenLimiter(t, limits.Policy{Keys: map[string]limits.Limits{"dify": {RPM: 1}}})
				if _, err := l.Reserve(context.Background(), limits.Request{Tenant: "acme", Key: "dify"}); err != nil {
					t.Fatal(err)
				}
			}
			chat := startAuditedWith(t, rec, 1<<10, ac, l)
			ctx := context.Background()
			if c.key != "" {
				ctx = withMD("authorization", "Bearer "+c.key)
			}
			if _, err := chat.CreateChatCompletion(ctx, chatReq(c.text)); status.Code(err) != c.wantErr {
				t.Fatalf("call: %v, want %v", err, c.wantErr)
			}
			got := rec.all()
			if len(got) != 1 {
				t.Fatalf("%d entries, want 1", len(got))
			}
			r := got[0].Record
			if r.Tenant != c.tenant || r.Subject != c.subject || r.Class != c.class || r.Code != c.code ||
				r.RPC != "/switchyard.v1.ChatService/CreateChatCompletion" || r.Model != "fake/m" || r.Target != "" {
				t.Errorf("record %+v", r)
			}
			if (got[0].Body != nil) != c.wantBody {
				t.Errorf("body kept: %v, want %v", got[0].Body != nil, c.wantBody)
			}
		})
	}
}

// stuckSink blocks every Append until the test ends.
type stuckSink struct {
	entered chan struct{}
	release chan struct{}
}

func (s stuckSink) Append(context.Context, []*audit.Record) error {
	s.entered <- struct{}{}
	<-s.release
	return nil
}

func (stuckSink) Close() error { return nil }

// TestAuditFullBufferDoesNotBlock: with the sink stuck and the buffer full, calls still complete
// and every record that did not fit is counted as dropped.
func TestAuditFullBufferDoesNotBlock(t *testing.T) {
	const buffer = 4
	sink := stuckSink{entered: make(chan struct{}), release: make(chan struct{})}
	w := audit.NewWriter(sink, audit.WriterOptions{BufferSize: buffer, BatchSize: 1, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() {
		close(sink.release)
		go func() {
			for range sink.entered {
			}
		}()
		_ = w.Close(context.Background())
	})
	chat := startAudited(t, w, 0)
	call := func() error {
		ctx, cancel := context.WithTimeout(withMD("authorization", "Bearer "+goodKey), time.Minute)
		defer cancel()
		_, err := chat.CreateChatCompletion(ctx, chatReq("hi"))
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	<-sink.entered // the writer is stuck in Append with the first record
	const more = 30
	var wg sync.WaitGroup
	for range more {
		wg.Go(func() {
			if err := call(); err != nil {
				t.Errorf("call with the audit buffer full: %v", err)
			}
		})
	}
	wg.Wait()
	if got := w.Dropped(); got != more-buffer {
		t.Errorf("dropped %d, want %d", got, more-buffer)
	}
}

type discardSink struct{}

func (discardSink) Append(context.Context, []*audit.Record) error { return nil }
func (discardSink) Close() error                                  { return nil }

// BenchmarkAudit measures a unary chat call through the whole chain with audit off, on with a
// sink that discards, and on with the SQLite store (bodies off and on).
func BenchmarkAudit(b *testing.B) {
	sqlite := func(b *testing.B) audit.Sink {
		db, err := database.Open(context.Background(), database.Config{DSN: filepath.Join(b.TempDir(), "a.db")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		st, err := audit.NewStore(context.Background(), db, nil)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	cases := []struct {
		name    string
		sink    func(*testing.B) audit.Sink
		bodyMax int
	}{
		{"off", nil, 0},
		{"on-discard", func(*testing.B) audit.Sink { return discardSink{} }, 0},
		{"on-sqlite", sqlite, 0},
		{"on-sqlite-bodies", sqlite, 64 << 10},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var w *audit.Writer
			var a interceptor.Auditor
			if c.sink != nil {
				w = audit.NewWriter(c.sink(b), audit.WriterOptions{BufferSize: 1 << 16, Logger: slog.New(slog.DiscardHandler)})
				a = w
			}
			chat := startAudited(b, a, c.bodyMax)
			ctx := withMD("authorization", "Bearer "+goodKey)
			req := chatReq("hello")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := chat.CreateChatCompletion(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
			if w != nil {
				b.StopTimer()
				_ = w.Close(context.Background())
				b.ReportMetric(float64(w.Dropped()), "dropped")
			}
		})
	}
}

// drain reads st to its end, failing t on an error.
func drain[T any](t *testing.T, st interface{ Recv() (T, error) }) {
	t.Helper()
	for {
		if _, err := st.Recv(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatal(err)
		}
	}
}
