package interceptor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/interceptor"
)

const goodKey = "sk-test-key"

// provider answers by the text of the last message: "panic" panics, "ratelimit" is a quota error
// with Retry-After, "boom" is a plain (non-llm) error; anything else is echoed. Streams send two
// text chunks and a usage chunk.
type provider struct{}

func (provider) Chat(_ context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	switch txt := req.Messages[len(req.Messages)-1].Text(); txt {
	case "panic":
		panic("provider exploded")
	case "ratelimit":
		return nil, &llm.Error{Kind: llm.KindRateLimited, Provider: "fake", UpstreamStatus: 429,
			UpstreamMessage: "slow down, org-123", RetryAfter: 1500 * time.Millisecond}
	case "boom":
		return nil, errors.New("boom: secret internal detail")
	default:
		return &llm.ChatResponse{Model: req.Model, Choices: []llm.Choice{{Content: &txt, FinishReason: "stop"}}}, nil
	}
}

func (provider) ChatStream(_ context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	if req.Messages[len(req.Messages)-1].Text() == "ratelimit" {
		return nil, &llm.Error{Kind: llm.KindRateLimited, RetryAfter: 3 * time.Second}
	}
	return &stream{chunks: []*llm.Chunk{
		{Choices: []llm.ChunkChoice{{Content: llm.Ptr("a")}}},
		{Choices: []llm.ChunkChoice{{Content: llm.Ptr("b"), FinishReason: "stop"}}},
		{Usage: &llm.Usage{TotalTokens: 2}},
	}}, nil
}

type stream struct{ chunks []*llm.Chunk }

func (s *stream) Recv() (*llm.Chunk, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *stream) Close() error { return nil }

// logBuffer collects log lines written by server goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines whose msg is msg.
func (b *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

var testSpan = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
	SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
	TraceFlags: trace.FlagsSampled,
})

type conns struct {
	conn   *grpc.ClientConn
	chat   pb.ChatServiceClient
	models pb.ModelServiceClient
	health healthpb.HealthClient
	logs   *logBuffer
}

// start serves the full chain around server.Register over bufconn. Like otelgrpc's stats handler,
// an outermost interceptor puts a span context in each call's context.
func start(t *testing.T, cfg auth.Config) conns {
	t.Helper()
	authn, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	icfg := interceptor.Config{Logger: telemetry.NewLogger(logs, slog.LevelDebug, "json"), Authenticator: authn}
	withSpan := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(trace.ContextWithSpanContext(ctx, testSpan), req)
	}
	// One attempt per request (provider retry: max_retries 0): these tests are about the errors.
	rt, err := router.Build(map[string]router.Backend{"fake": {Provider: provider{}}},
		router.Config{ProviderRetry: map[string]router.RetryConfig{"fake": {MaxRetries: new(int)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(append([]grpc.UnaryServerInterceptor{withSpan}, interceptor.Unary(icfg)...)...),
		grpc.ChainStreamInterceptor(interceptor.Stream(icfg)...),
	)
	server.Register(s, func() *router.Router { return rt })
	healthpb.RegisterHealthServer(s, health.NewServer())
	lis := bufconn.Listen(1 << 20)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conns{conn, pb.NewChatServiceClient(conn), pb.NewModelServiceClient(conn), healthpb.NewHealthClient(conn), logs}
}

var apiKeyConfig = auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "dify", Key: goodKey, Tenant: "acme"}}}

func withMD(kv ...string) context.Context {
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(kv...))
}

func chatReq(text string) *pb.CreateChatCompletionRequest {
	return &pb.CreateChatCompletionRequest{Model: "fake/m", Messages: []*pb.ChatMessage{
		{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: text}}},
	}}
}

func errorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func TestAuth(t *testing.T) {
	cases := []struct {
		name string
		cfg  auth.Config
		ctx  context.Context
		want codes.Code
	}{
		{"api_key: right key", apiKeyConfig, withMD("authorization", "Bearer "+goodKey), codes.OK},
		{"api_key: scheme is case-insensitive", apiKeyConfig, withMD("authorization", "bearer "+goodKey), codes.OK},
		{"api_key: missing", apiKeyConfig, context.Background(), codes.Unauthenticated},
		{"api_key: empty header", apiKeyConfig, withMD("authorization", ""), codes.Unauthenticated},
		{"api_key: bearer without token", apiKeyConfig, withMD("authorization", "Bearer "), codes.Unauthenticated},
		{"api_key: wrong key", apiKeyConfig, withMD("authorization", "Bearer sk-wrong"), codes.Unauthenticated},
		{"api_key: other scheme", apiKeyConfig, withMD("authorization", "Basic "+goodKey), codes.Unauthenticated},
		{"api_key: key without scheme", apiKeyConfig, withMD("authorization", goodKey), codes.Unauthenticated},
		{"none: no header", auth.Config{Mode: "none"}, context.Background(), codes.OK},
		{"none: empty header", auth.Config{Mode: "none"}, withMD("authorization", ""), codes.OK},
		{"none: any header", auth.Config{Mode: "none"}, withMD("authorization", "Basic abc"), codes.OK},
		{"api_key: reserved tenant", auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{{Name: "x", Key: goodKey, Tenant: "_unauthenticated"}}},
			withMD("authorization", "Bearer "+goodKey), codes.Unauthenticated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cs := start(t, c.cfg)
			_, err := cs.models.ListModels(c.ctx, &pb.ListModelsRequest{})
			if status.Code(err) != c.want {
				t.Fatalf("ListModels error = %v; want code %v", err, c.want)
			}
			if c.want == codes.Unauthenticated {
				info := errorInfo(err)
				if info.GetMetadata()[errmap.MetaHTTPStatus] != "401" || info.GetMetadata()[errmap.MetaType] != "authentication_error" {
					t.Errorf("ErrorInfo = %v; want http_status 401, type authentication_error", info)
				}
			}
			// Streams go through the same check.
			st, err := cs.chat.StreamChatCompletion(c.ctx, &pb.StreamChatCompletionRequest{Request: chatReq("hi")})
			if err == nil {
				_, err = st.Recv()
			}
			if status.Code(err) != c.want {
				t.Fatalf("StreamChatCompletion error = %v; want code %v", err, c.want)
			}
		})
	}
}

func TestHealthNeedsNoAuth(t *testing.T) {
	cs := start(t, apiKeyConfig)
	resp, err := cs.health.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check = %v, %v; want SERVING without credentials", resp, err)
	}
}

func TestRequestID(t *testing.T) {
	cs := start(t, auth.Config{})
	cases := []struct {
		name string
		ctx  context.Context
		echo string // "" means a generated id is expected
	}{
		{"echoed", withMD("x-request-id", "req-42.a_B"), "req-42.a_B"},
		{"generated when absent", context.Background(), ""},
		{"generated when unsafe", withMD("x-request-id", "bad id\";"), ""},
		{"generated when too long", withMD("x-request-id", strings.Repeat("a", 129)), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr metadata.MD
			if _, err := cs.chat.CreateChatCompletion(c.ctx, chatReq("hi"), grpc.Header(&hdr)); err != nil {
				t.Fatal(err)
			}
			got := hdr.Get(mdkey.RequestID)
			if len(got) != 1 {
				t.Fatalf("x-request-id header = %v; want one value", got)
			}
			if c.echo != "" && got[0] != c.echo {
				t.Errorf("x-request-id = %q; want %q echoed", got[0], c.echo)
			}
			if c.echo == "" && (len(got[0]) != 32 || strings.Trim(got[0], "0123456789abcdef") != "") {
				t.Errorf("x-request-id = %q; want 32 generated hex digits", got[0])
			}
			var logged bool
			for _, l := range cs.logs.lines(t, "finished call") {
				logged = logged || l["request_id"] == got[0]
			}
			if !logged {
				t.Errorf("no finished-call log line with request_id %q", got[0])
			}
		})
	}
	// Errors carry the header too.
	var hdr metadata.MD
	_, err := cs.chat.CreateChatCompletion(withMD("x-request-id", "err-1"), chatReq("ratelimit"), grpc.Header(&hdr))
	if err == nil || len(hdr.Get(mdkey.RequestID)) != 1 || hdr.Get(mdkey.RequestID)[0] != "err-1" {
		t.Errorf("failed call: err %v, header %v; want an error and x-request-id err-1", err, hdr)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	cs := start(t, auth.Config{})
	_, err := cs.chat.CreateChatCompletion(context.Background(), chatReq("panic"))
	if st := status.Convert(err); st.Code() != codes.Internal || st.Message() != "internal error" {
		t.Fatalf("error = %v; want INTERNAL \"internal error\"", err)
	}
	lines := cs.logs.lines(t, "panic in gRPC handler")
	if len(lines) != 1 {
		t.Fatalf("got %d panic log lines; want 1", len(lines))
	}
	if lines[0]["panic"] != "provider exploded" || !strings.Contains(lines[0]["stack"].(string), "chain_test.go") {
		t.Errorf("panic log = %v; want the panic value and a stack through the provider", lines[0])
	}
	// The server survives.
	if _, err := cs.chat.CreateChatCompletion(context.Background(), chatReq("hi")); err != nil {
		t.Errorf("call after panic: %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	cs := start(t, apiKeyConfig)
	ctx := withMD("authorization", "Bearer "+goodKey, "x-request-id", "rl-1")

	t.Run("quota error with retry-after", func(t *testing.T) {
		var hdr metadata.MD
		_, err := cs.chat.CreateChatCompletion(ctx, chatReq("ratelimit"), grpc.Header(&hdr))
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("error = %v; want RESOURCE_EXHAUSTED", err)
		}
		md := errorInfo(err).GetMetadata()
		if md[errmap.MetaClass] != "quota" || md[errmap.MetaProvider] != "fake" || md[errmap.MetaUpstreamStatus] != "429" || md[errmap.MetaRetryAfter] != "2" {
			t.Errorf("ErrorInfo metadata = %v; want quota class, provider, upstream status and retry after", md)
		}
		if got := hdr.Get(mdkey.RetryAfter); len(got) != 1 || got[0] != "2" {
			t.Errorf("retry-after header = %v; want [2]", got)
		}
		var found bool
		for _, l := range cs.logs.lines(t, "request failed") {
			if l["request_id"] == "rl-1" {
				found = true
				if l["level"] != "WARN" || l["upstream.message"] != "slow down, org-123" || l["tenant"] != "acme" || l["provider"] != "fake" {
					t.Errorf("error log = %v; want a warning with the upstream details and tenant", l)
				}
			}
		}
		if !found {
			t.Error("the quota error was not logged")
		}
	})
	t.Run("plain error hides its detail", func(t *testing.T) {
		_, err := cs.chat.CreateChatCompletion(ctx, chatReq("boom"))
		if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") {
			t.Fatalf("error = %v; want INTERNAL without the cause", err)
		}
		var found bool
		for _, l := range cs.logs.lines(t, "request failed") {
			found = found || (l["level"] == "ERROR" && strings.Contains(l["error"].(string), "secret internal detail"))
		}
		if !found {
			t.Error("the internal error's cause was not logged")
		}
	})
	t.Run("validation error names the param", func(t *testing.T) {
		req := chatReq("hi")
		req.Temperature = llm.Ptr(3.0)
		_, err := cs.chat.CreateChatCompletion(ctx, req)
		if status.Code(err) != codes.InvalidArgument || errorInfo(err).GetMetadata()[errmap.MetaParam] != "temperature" {
			t.Fatalf("error = %v (info %v); want INVALID_ARGUMENT with param temperature", err, errorInfo(err))
		}
	})
	t.Run("stream validation error names the param", func(t *testing.T) {
		req := chatReq("hi")
		req.Messages[0].Role = "robot"
		st, err := cs.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: req})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.InvalidArgument || errorInfo(err).GetMetadata()[errmap.MetaParam] != "messages[0].role" {
			t.Fatalf("error = %v; want INVALID_ARGUMENT with param messages[0].role", err)
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		req := chatReq("hi")
		req.Model = "nope/m"
		_, err := cs.chat.CreateChatCompletion(ctx, req)
		if status.Code(err) != codes.NotFound || errorInfo(err).GetMetadata()[errmap.MetaCode] != "model_not_found" {
			t.Fatalf("error = %v; want NOT_FOUND model_not_found", err)
		}
	})
	t.Run("stream quota error before the first chunk", func(t *testing.T) {
		st, err := cs.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: chatReq("ratelimit")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Recv()
		hdr, _ := st.Header()
		if status.Code(err) != codes.ResourceExhausted || len(hdr.Get(mdkey.RetryAfter)) != 1 || hdr.Get(mdkey.RetryAfter)[0] != "3" {
			t.Fatalf("error = %v, header %v; want RESOURCE_EXHAUSTED with retry-after 3", err, hdr)
		}
	})
}

func TestStreamThroughChain(t *testing.T) {
	cs := start(t, apiKeyConfig)
	ctx := withMD("authorization", "Bearer "+goodKey, "x-request-id", "stream-1")
	req := chatReq("hi")
	req.StreamOptions = &pb.StreamOptions{IncludeUsage: true}
	st, err := cs.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: req})
	if err != nil {
		t.Fatal(err)
	}
	var got []*pb.StreamChatCompletionResponse
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) != 3 || got[0].GetChoices()[0].GetDelta().GetRole() != "assistant" || got[2].GetUsage().GetTotalTokens() != 2 {
		t.Fatalf("chunks = %v; want two deltas (the first with role) and a usage chunk", got)
	}
	hdr, err := st.Header()
	if err != nil {
		t.Fatal(err)
	}
	if hdr.Get(mdkey.RequestID)[0] != "stream-1" || hdr.Get(mdkey.Route)[0] != "fake/m" {
		t.Errorf("headers = %v; want x-request-id stream-1 and route fake/m", hdr)
	}
	var line map[string]any
	for _, l := range cs.logs.lines(t, "finished call") {
		if l["request_id"] == "stream-1" {
			line = l
		}
	}
	if line == nil {
		t.Fatal("no finished-call line for the stream")
	}
	if line["grpc.method"] != "StreamChatCompletion" || line["grpc.code"] != "OK" || line["tenant"] != "acme" || line["grpc.time_ms"] == nil {
		t.Errorf("finished-call line = %v; want method, code OK, tenant acme and duration", line)
	}
	for k := range line {
		if strings.Contains(k, "content") {
			t.Errorf("log line has payload field %q", k)
		}
	}
}

func TestLogLineCarriesTraceAndTenant(t *testing.T) {
	cs := start(t, apiKeyConfig)
	ctx := withMD("authorization", "Bearer "+goodKey, "x-request-id", "trace-1")
	if _, err := cs.chat.CreateChatCompletion(ctx, chatReq("top secret prompt")); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	for _, l := range cs.logs.lines(t, "finished call") {
		if l["request_id"] == "trace-1" {
			line = l
		}
	}
	if line == nil {
		t.Fatal("no finished-call line")
	}
	if line["trace_id"] != testSpan.TraceID().String() || line["tenant"] != "acme" || line["grpc.method"] != "CreateChatCompletion" {
		t.Errorf("finished-call line = %v; want trace_id, tenant and method", line)
	}
	cs.logs.mu.Lock()
	defer cs.logs.mu.Unlock()
	if strings.Contains(cs.logs.buf.String(), "top secret prompt") {
		t.Error("the prompt was logged")
	}
}
