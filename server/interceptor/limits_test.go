package interceptor_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/interceptor"
)

// usageProvider answers every call with the usage in usage (total tokens, split in half between
// prompt and completion) and counts its calls.
type usageProvider struct {
	calls atomic.Int32
	usage int32
}

func (p *usageProvider) Chat(_ context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	p.calls.Add(1)
	return &llm.ChatResponse{Model: req.Model, Choices: []llm.Choice{{Content: llm.Ptr("ok"), FinishReason: "stop"}},
		Usage: &llm.Usage{PromptTokens: p.usage / 2, CompletionTokens: p.usage - p.usage/2}}, nil
}

func (p *usageProvider) ChatStream(context.Context, *llm.ChatRequest) (llm.Stream, error) {
	p.calls.Add(1)
	return &stream{chunks: []*llm.Chunk{
		{Choices: []llm.ChunkChoice{{Content: llm.Ptr("a"), FinishReason: "stop"}}},
		{Usage: &llm.Usage{PromptTokens: p.usage / 2, CompletionTokens: p.usage - p.usage/2, TotalTokens: p.usage}},
	}}, nil
}

// startLimited serves the chain with l (nil: limits off) around server.Register over bufconn,
// routing "fake/…" to p, for the API key goodKey of tenant acme.
func startLimited(tb testing.TB, l *limits.Limiter, p llm.Provider) *grpc.ClientConn {
	tb.Helper()
	return startLimitedAudited(tb, l, p, nil)
}

// startLimitedAudited is startLimited with the auditor a (nil: audit off).
func startLimitedAudited(tb testing.TB, l *limits.Limiter, p llm.Provider, a interceptor.Auditor) *grpc.ClientConn {
	tb.Helper()
	authn, err := auth.New(auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "dify", Key: goodKey, Tenant: "acme", Scopes: []string{"*"}}}})
	if err != nil {
		tb.Fatal(err)
	}
	icfg := interceptor.Config{Logger: slog.New(slog.DiscardHandler), Authenticator: authn, Limiter: l, Auditor: a}
	rt, err := router.New(map[string]router.Backend{"fake": {Provider: p}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(interceptor.Unary(icfg)...), grpc.ChainStreamInterceptor(interceptor.Stream(icfg)...))
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
	return conn
}

// frozenLimiter returns a limiter on a memory store whose clock stands still.
func frozenLimiter(t testing.TB, p limits.Policy) *limits.Limiter {
	t.Helper()
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	l, err := limits.New(limits.NewMemory(), p, limits.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// remainingTokens probes l for the tokens acme has left this minute. Call it when acme's request
// limit is used up: the probe is refused then, and takes nothing.
func remainingTokens(t *testing.T, l *limits.Limiter) int64 {
	t.Helper()
	res, err := l.Reserve(context.Background(), limits.Request{Tenant: "acme"})
	if llm.KindOf(err) != llm.KindRateLimited {
		t.Fatalf("probe: %v, want a refusal", err)
	}
	return res.Tokens.Remaining
}

func authed() context.Context { return withMD("authorization", "Bearer "+goodKey) }

func TestLimitsUnary(t *testing.T) {
	l := frozenLimiter(t, limits.Policy{Tenants: map[string]limits.Limits{"acme": {RPM: 2, TPM: 10_000}}})
	p := &usageProvider{usage: 300}
	conn := startLimited(t, l, p)
	chat := pb.NewChatServiceClient(conn)
	wantRemaining := []string{"1", "0"}
	for i, want := range wantRemaining {
		var hdr metadata.MD
		if _, err := chat.CreateChatCompletion(authed(), chatReq("hi"), grpc.Header(&hdr)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := hdr.Get(mdkey.RemainingRequests); len(got) != 1 || got[0] != want {
			t.Errorf("call %d: remaining requests %v, want %s", i, got, want)
		}
		if got := hdr.Get(mdkey.LimitRequests); len(got) != 1 || got[0] != "2" {
			t.Errorf("call %d: limit requests %v, want 2", i, got)
		}
		if got := hdr.Get(mdkey.LimitTokens); len(got) != 1 || got[0] != "10000" {
			t.Errorf("call %d: limit tokens %v, want 10000", i, got)
		}
	}
	var hdr metadata.MD
	_, err := chat.CreateChatCompletion(authed(), chatReq("hi"), grpc.Header(&hdr))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third call: %v, want RESOURCE_EXHAUSTED", err)
	}
	he := errmap.FromStatus(status.Convert(err))
	if he.Status != 429 || he.Body.Error.Type != "rate_limit_error" || he.Body.Error.Code == nil || *he.Body.Error.Code != "rate_limit_exceeded" {
		t.Errorf("REST answer %+v, want 429 rate_limit_error rate_limit_exceeded", he)
	}
	if got := hdr.Get(mdkey.RetryAfter); len(got) != 1 || got[0] != "30" {
		t.Errorf("retry-after %v, want 30", got)
	}
	if got := hdr.Get(mdkey.ResetRequests); len(got) != 1 || got[0] != "1m0s" {
		t.Errorf("reset requests %v, want 1m0s", got)
	}
	// Both calls were settled to the usage the provider reported: 300 tokens each.
	if got := remainingTokens(t, l); got != 10_000-600 {
		t.Errorf("remaining tokens = %d, want %d", got, 10_000-600)
	}
	if n := p.calls.Load(); n != 2 {
		t.Errorf("provider called %d times, want 2: a refused call must do no work upstream", n)
	}
	// Listing models is not rate limited.
	var mh metadata.MD
	if _, err := pb.NewModelServiceClient(conn).ListModels(authed(), &pb.ListModelsRequest{}, grpc.Header(&mh)); err != nil {
		t.Fatalf("ListModels: %v", err)
	}
	if got := mh.Get(mdkey.LimitRequests); got != nil {
		t.Errorf("ListModels carries %v", got)
	}
}

func TestLimitsDailyQuota(t *testing.T) {
	l := frozenLimiter(t, limits.Policy{Keys: map[string]limits.Limits{"dify": {TPD: 1000}}})
	p := &usageProvider{usage: 1000}
	chat := pb.NewChatServiceClient(startLimited(t, l, p))
	if _, err := chat.CreateChatCompletion(authed(), chatReq("hi")); err != nil {
		t.Fatal(err)
	}
	_, err := chat.CreateChatCompletion(authed(), chatReq("hi"))
	he := errmap.FromStatus(status.Convert(err))
	if status.Code(err) != codes.ResourceExhausted || he.Body.Error.Type != "insufficient_quota" {
		t.Errorf("err = %v (%+v), want RESOURCE_EXHAUSTED insufficient_quota", err, he.Body.Error)
	}
}

func TestLimitsStream(t *testing.T) {
	l := frozenLimiter(t, limits.Policy{Tenants: map[string]limits.Limits{"acme": {RPM: 1, TPM: 10_000}}})
	p := &usageProvider{usage: 700}
	chat := pb.NewChatServiceClient(startLimited(t, l, p))

	// The client asks for no usage chunk: the usage still settles the reservation.
	st, err := chat.StreamChatCompletion(authed(), &pb.StreamChatCompletionRequest{Request: chatReq("hi")})
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := st.Header()
	if err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get(mdkey.RemainingRequests); len(got) != 1 || got[0] != "0" {
		t.Errorf("remaining requests %v, want 0", got)
	}
	chunks := 0
	for {
		_, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks++
	}
	if chunks != 1 {
		t.Errorf("%d chunks, want 1", chunks)
	}
	if got := remainingTokens(t, l); got != 10_000-700 {
		t.Errorf("remaining tokens = %d, want %d", got, 10_000-700)
	}

	st, err = chat.StreamChatCompletion(authed(), &pb.StreamChatCompletionRequest{Request: chatReq("hi")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Recv()
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("second stream: %v, want RESOURCE_EXHAUSTED", err)
	}
	hdr, _ = st.Header()
	if got := hdr.Get(mdkey.RetryAfter); len(got) != 1 || got[0] != "60" {
		t.Errorf("retry-after %v, want 60", got)
	}
	if n := p.calls.Load(); n != 1 {
		t.Errorf("provider called %d times, want 1", n)
	}
}

func TestLimitsOffSendsNoHeaders(t *testing.T) {
	for name, l := range map[string]*limits.Limiter{"nil limiter": nil, "no limits for the tenant": frozenLimiter(t, limits.Policy{Tenants: map[string]limits.Limits{"other": {RPM: 1}}})} {
		t.Run(name, func(t *testing.T) {
			chat := pb.NewChatServiceClient(startLimited(t, l, &usageProvider{usage: 1}))
			for range 3 {
				var hdr metadata.MD
				if _, err := chat.CreateChatCompletion(authed(), chatReq("hi"), grpc.Header(&hdr)); err != nil {
					t.Fatal(err)
				}
				for k := range hdr {
					if len(k) > 12 && k[:12] == "x-ratelimit-" {
						t.Errorf("header %s sent with limits off", k)
					}
				}
			}
		})
	}
}

// BenchmarkChainLimits measures unary chat through the whole chain over bufconn with limits off
// and on (memory store; a tenant and a key limit, so six buckets per call). Compare the ns/op of
// the sub-benchmarks for the ratio.
func BenchmarkChainLimits(b *testing.B) {
	big := int64(1) << 40
	for _, c := range []struct {
		name string
		l    func(testing.TB) *limits.Limiter
	}{
		{"off", func(testing.TB) *limits.Limiter { return nil }},
		{"memory", func(tb testing.TB) *limits.Limiter {
			l, err := limits.New(limits.NewMemory(), limits.Policy{
				Tenants: map[string]limits.Limits{"acme": {RPM: big, TPM: big, TPD: big}},
				Keys:    map[string]limits.Limits{"dify": {RPM: big, TPM: big, TPD: big}},
			})
			if err != nil {
				tb.Fatal(err)
			}
			return l
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			chat := pb.NewChatServiceClient(startLimited(b, c.l(b), &usageProvider{usage: 10}))
			ctx, req := authed(), chatReq("hello")
			b.ReportAllocs()
			for b.Loop() {
				if _, err := chat.CreateChatCompletion(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
