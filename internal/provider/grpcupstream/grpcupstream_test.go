package grpcupstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/grpcupstream"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// fake is an upstream implementing Switchyard's services on loopback, scripted per test. Its
// answers are proto literals written in the tests, independent of the adapter's conversions.
type fake struct {
	pb.UnimplementedChatServiceServer
	pb.UnimplementedEmbeddingServiceServer
	pb.UnimplementedRerankServiceServer

	chat   func(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error)
	stream func(in *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error
	embed  func(ctx context.Context, in *pb.CreateEmbeddingRequest) (*pb.CreateEmbeddingResponse, error)
	rerank func(ctx context.Context, in *pb.RerankRequest) (*pb.RerankResponse, error)

	calls atomic.Int32     // calls received, retries included
	md    chan metadata.MD // incoming metadata of each call
	reqs  chan any         // each request received
}

func (f *fake) record(ctx context.Context, req any) {
	f.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	select {
	case f.md <- md:
	default:
	}
	select {
	case f.reqs <- req:
	default:
	}
}

func (f *fake) CreateChatCompletion(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
	f.record(ctx, in)
	return f.chat(ctx, in)
}

func (f *fake) StreamChatCompletion(in *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
	f.record(s.Context(), in)
	return f.stream(in, s)
}

func (f *fake) CreateEmbedding(ctx context.Context, in *pb.CreateEmbeddingRequest) (*pb.CreateEmbeddingResponse, error) {
	f.record(ctx, in)
	return f.embed(ctx, in)
}

func (f *fake) Rerank(ctx context.Context, in *pb.RerankRequest) (*pb.RerankResponse, error) {
	f.record(ctx, in)
	return f.rerank(ctx, in)
}

// start serves f on loopback and returns a provider for it. Retries back off 1 ms at most.
func start(t *testing.T, f *fake, opts map[string]string, srvOpts ...grpc.ServerOption) *grpcupstream.Provider {
	t.Helper()
	f.md = make(chan metadata.MD, 16)
	f.reqs = make(chan any, 16)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(srvOpts...)
	pb.RegisterChatServiceServer(srv, f)
	pb.RegisterEmbeddingServiceServer(srv, f)
	pb.RegisterRerankServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	o := map[string]string{"retry_backoff": "1ms"}
	for k, v := range opts {
		o[k] = v
	}
	p, err := grpcupstream.NewProvider(provider.Config{Name: "up", Type: "grpc", BaseURL: lis.Addr().String(), APIKey: "sk-test",
		Headers: map[string]string{"X-Tenant": "t1"}, Models: []string{"m"}, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func text(s string) *pb.MessageContent {
	return &pb.MessageContent{Content: &pb.MessageContent_Text{Text: s}}
}

func chunk(d *pb.Delta, finish string) *pb.StreamChatCompletionResponse {
	return &pb.StreamChatCompletionResponse{Id: "chatcmpl-1", Object: "chat.completion.chunk", Created: 1700000000, Model: "m",
		Choices: []*pb.ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}}}
}

func sendAll(msgs ...*pb.StreamChatCompletionResponse) func(*pb.StreamChatCompletionRequest, grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
	return func(_ *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
		for _, m := range msgs {
			if err := s.Send(m); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestChat(t *testing.T) {
	params, err := structpb.NewStruct(map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{chat: func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		return &pb.CreateChatCompletionResponse{Id: "chatcmpl-9", Object: "chat.completion", Created: 1700000000, Model: "m-2026",
			Choices: []*pb.Choice{{Index: 0, FinishReason: "tool_calls", Message: &pb.AssistantMessage{Role: "assistant",
				ReasoningContent: llm.Ptr("Paris means France."),
				ToolCalls:        []*pb.ToolCall{{Id: "call_1", Type: "function", Function: &pb.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}}}},
			Usage: &pb.Usage{PromptTokens: 12, CompletionTokens: 5, TotalTokens: 17, CompletionTokensDetails: &pb.CompletionTokensDetails{ReasoningTokens: 3}},
		}, nil
	}}
	p := start(t, f, nil)
	req := &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("system", "Be brief."), llm.TextMessage("user", "Weather in Paris?")},
		Temperature: llm.Ptr(0.2), MaxTokens: llm.Ptr(int32(64)), Stop: []string{"END"},
		Tools: []llm.Tool{{Name: "get_weather", Description: "Current weather.", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"}}}`)}}}
	got, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.ChatResponse{ID: "chatcmpl-9", Model: "m-2026", Created: 1700000000,
		Choices: []llm.Choice{{Index: 0, FinishReason: "tool_calls", ReasoningContent: llm.Ptr("Paris means France."),
			ToolCalls: []llm.ToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}}},
		Usage: &llm.Usage{PromptTokens: 12, CompletionTokens: 5, TotalTokens: 17, ReasoningTokens: 3}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response mismatch (-want +got):\n%s", diff)
	}
	wantReq := &pb.CreateChatCompletionRequest{Model: "m",
		Messages:    []*pb.ChatMessage{{Role: "system", Content: text("Be brief.")}, {Role: "user", Content: text("Weather in Paris?")}},
		Temperature: llm.Ptr(0.2), MaxCompletionTokens: llm.Ptr(int32(64)), Stop: []string{"END"},
		Tools: []*pb.Tool{{Type: "function", Function: &pb.FunctionDefinition{Name: "get_weather", Description: "Current weather.", Parameters: params}}}}
	if diff := cmp.Diff(wantReq, <-f.reqs, protocmp.Transform()); diff != "" {
		t.Errorf("upstream request mismatch (-want +got):\n%s", diff)
	}
	md := <-f.md
	if a, ten := md.Get("authorization"), md.Get("x-tenant"); len(a) != 1 || a[0] != "Bearer sk-test" || len(ten) != 1 || ten[0] != "t1" {
		t.Errorf("metadata authorization=%q x-tenant=%q; want the bearer key and the configured header", a, ten)
	}
}

func TestStream(t *testing.T) {
	usage := &pb.StreamChatCompletionResponse{Id: "chatcmpl-1", Model: "m", Usage: &pb.Usage{PromptTokens: 9, CompletionTokens: 4, TotalTokens: 13}}
	args := `{"city":"Paris","unit":"celsius"}`
	var split []*pb.StreamChatCompletionResponse
	split = append(split, chunk(&pb.Delta{Role: "assistant", ToolCalls: []*pb.ToolCallDelta{{Index: 0, Id: "call_a", Type: "function", Function: &pb.FunctionCall{Name: "get_weather"}}}}, ""))
	for i := 0; i < len(args); i += 3 {
		split = append(split, chunk(&pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Function: &pb.FunctionCall{Arguments: args[i:min(i+3, len(args))]}}}}, ""))
	}
	split = append(split, chunk(&pb.Delta{}, "tool_calls"))
	cases := []struct {
		name string
		msgs []*pb.StreamChatCompletionResponse
		want providertest.Assembled
	}{
		{
			name: "text, finish and usage",
			msgs: []*pb.StreamChatCompletionResponse{chunk(&pb.Delta{Role: "assistant", Content: llm.Ptr("Hel")}, ""), chunk(&pb.Delta{Content: llm.Ptr("lo.")}, ""), chunk(&pb.Delta{}, "stop"), usage},
			want: providertest.Assembled{Role: "assistant", Content: "Hello.", FinishReason: "stop", Usage: &llm.Usage{PromptTokens: 9, CompletionTokens: 4, TotalTokens: 13}, Chunks: 4},
		},
		{
			name: "tool call arguments split over many deltas",
			msgs: split,
			want: providertest.Assembled{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "call_a", Name: "get_weather", Arguments: args}}, FinishReason: "tool_calls",
				Chunks: len(split), ArgDeltas: len(split) - 2},
		},
		{
			name: "two tool calls in one turn",
			msgs: []*pb.StreamChatCompletionResponse{
				chunk(&pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Id: "c1", Type: "function", Function: &pb.FunctionCall{Name: "f", Arguments: `{"a":1}`}}}}, ""),
				chunk(&pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 1, Id: "c2", Type: "function", Function: &pb.FunctionCall{Name: "g", Arguments: `{"b":2}`}}}}, ""),
				chunk(&pb.Delta{}, "tool_calls"),
			},
			want: providertest.Assembled{ToolCalls: []llm.ToolCall{{ID: "c1", Name: "f", Arguments: `{"a":1}`}, {ID: "c2", Name: "g", Arguments: `{"b":2}`}}, FinishReason: "tool_calls", Chunks: 3, ArgDeltas: 2},
		},
		{
			name: "reasoning before the answer",
			msgs: []*pb.StreamChatCompletionResponse{chunk(&pb.Delta{ReasoningContent: llm.Ptr("Think")}, ""), chunk(&pb.Delta{ReasoningContent: llm.Ptr("ing.")}, ""), chunk(&pb.Delta{Content: llm.Ptr("42")}, "stop")},
			want: providertest.Assembled{Reasoning: "Thinking.", Content: "42", FinishReason: "stop", Chunks: 3},
		},
		{name: "finish length", msgs: []*pb.StreamChatCompletionResponse{chunk(&pb.Delta{Content: llm.Ptr("a")}, "length")}, want: providertest.Assembled{Content: "a", FinishReason: "length", Chunks: 1}},
		{name: "finish content_filter", msgs: []*pb.StreamChatCompletionResponse{chunk(&pb.Delta{}, "content_filter")}, want: providertest.Assembled{FinishReason: "content_filter", Chunks: 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fake{stream: sendAll(c.msgs...)}
			p := start(t, f, nil)
			s, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "hi")}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := providertest.Collect(s)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&c.want, got); diff != "" {
				t.Errorf("stream mismatch (-want +got):\n%s", diff)
			}
			in := (<-f.reqs).(*pb.StreamChatCompletionRequest).GetRequest()
			if !in.GetStream() || !in.GetStreamOptions().GetIncludeUsage() {
				t.Errorf("upstream request stream=%v include_usage=%v; want both true", in.GetStream(), in.GetStreamOptions().GetIncludeUsage())
			}
		})
	}
}

func TestEmbedKeepsInputOrder(t *testing.T) {
	f := &fake{embed: func(_ context.Context, in *pb.CreateEmbeddingRequest) (*pb.CreateEmbeddingResponse, error) {
		return &pb.CreateEmbeddingResponse{Object: "list", Model: "e", Usage: &pb.EmbeddingUsage{PromptTokens: 6, TotalTokens: 6},
			Data: []*pb.Embedding{{Index: 2, Embedding: []float32{3}}, {Index: 0, Embedding: []float32{1}}, {Index: 1, Embedding: []float32{2}}}}, nil
	}}
	p := start(t, f, nil)
	got, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: []string{"a", "b", "c"}, Dimensions: llm.Ptr(int32(1))})
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.EmbeddingResponse{Model: "e", PromptTokens: 6, Vectors: [][]float32{{1}, {2}, {3}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("embeddings mismatch (-want +got):\n%s", diff)
	}
	wantReq := &pb.CreateEmbeddingRequest{Model: "e", Input: &pb.EmbeddingInput{Texts: []string{"a", "b", "c"}}, EncodingFormat: "float", Dimensions: llm.Ptr(int32(1))}
	if diff := cmp.Diff(wantReq, <-f.reqs, protocmp.Transform()); diff != "" {
		t.Errorf("upstream request mismatch (-want +got):\n%s", diff)
	}
}

// wireStats records, on the upstream's side, the compression of each call and the bytes its
// messages took on the wire and decoded.
type wireStats struct {
	mu                  sync.Mutex
	compression         []string
	inWire, inDecoded   int
	outWire, outDecoded int
}

func (w *wireStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (w *wireStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (w *wireStats) HandleConn(context.Context, stats.ConnStats)                       {}
func (w *wireStats) HandleRPC(_ context.Context, s stats.RPCStats) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch s := s.(type) {
	case *stats.InHeader:
		w.compression = append(w.compression, s.Compression)
	case *stats.InPayload:
		w.inWire, w.inDecoded = w.inWire+s.CompressedLength, w.inDecoded+s.Length
	case *stats.OutPayload:
		w.outWire, w.outDecoded = w.outWire+s.CompressedLength, w.outDecoded+s.Length
	}
}

// TestCompression: with options.compression the request goes compressed and the upstream answers
// compressed the same way; the adapter decodes both.
func TestCompression(t *testing.T) {
	texts := make([]string, 200)
	vectors := make([]*pb.Embedding, len(texts))
	for i := range texts {
		texts[i] = "a typical sentence to embed, much like the one before it"
		vectors[i] = &pb.Embedding{Index: int32(i), Embedding: make([]float32, 64)}
	}
	for _, c := range []struct {
		opts map[string]string
		want string
	}{
		{nil, ""},
		{map[string]string{"compression": "none"}, ""},
		{map[string]string{"gzip": "true"}, "gzip"},
		{map[string]string{"compression": "gzip"}, "gzip"},
		{map[string]string{"compression": "zstd"}, "zstd"},
	} {
		t.Run(fmt.Sprint(c.opts), func(t *testing.T) {
			f := &fake{embed: func(context.Context, *pb.CreateEmbeddingRequest) (*pb.CreateEmbeddingResponse, error) {
				return &pb.CreateEmbeddingResponse{Object: "list", Model: "e", Data: vectors}, nil
			}}
			w := &wireStats{}
			p := start(t, f, c.opts, grpc.StatsHandler(w))
			got, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: texts})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Vectors) != len(texts) || len(got.Vectors[199]) != 64 {
				t.Fatalf("%d vectors", len(got.Vectors))
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.compression) != 1 || w.compression[0] != c.want {
				t.Errorf("upstream saw compression %q, want %q", w.compression, c.want)
			}
			compressed := w.inWire*4 < w.inDecoded && w.outWire*4 < w.outDecoded
			if compressed != (c.want != "") {
				t.Errorf("request %d of %d bytes on the wire, answer %d of %d: compressed = %v, want %v",
					w.inWire, w.inDecoded, w.outWire, w.outDecoded, compressed, c.want != "")
			}
		})
	}
}

func TestEmbedRejectsAWrongCount(t *testing.T) {
	f := &fake{embed: func(context.Context, *pb.CreateEmbeddingRequest) (*pb.CreateEmbeddingResponse, error) {
		return &pb.CreateEmbeddingResponse{Data: []*pb.Embedding{{Index: 0, Embedding: []float32{1}}}}, nil
	}}
	p := start(t, f, nil)
	_, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: []string{"a", "b"}})
	if k := llm.KindOf(err); k != llm.KindUpstream {
		t.Fatalf("err = %v; want upstream_error", err)
	}
}

// switchyardErr is what an upstream Switchyard answers for e: errmap's status with ErrorInfo.
func switchyardErr(e *llm.Error) error { return errmap.ToStatus(e).Err() }

func TestErrors(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		stream bool
		want   *llm.Error // Kind, Message, Code, Param, RetryAfter, HTTPStatus compared
	}{
		{name: "invalid argument keeps its message", err: status.Error(codes.InvalidArgument, "temperature must be at most 2"),
			want: &llm.Error{Kind: llm.KindInvalidArgument, Message: "temperature must be at most 2"}},
		{name: "not found", err: status.Error(codes.NotFound, "model m not found"), want: &llm.Error{Kind: llm.KindNotFound, Message: "model m not found"}},
		{name: "unimplemented", err: status.Error(codes.Unimplemented, "unknown service"), want: &llm.Error{Kind: llm.KindNotFound}},
		{name: "unauthenticated hides the message", err: status.Error(codes.Unauthenticated, "token sk-... rejected"), want: &llm.Error{Kind: llm.KindUnauthenticated}},
		{name: "permission denied", err: status.Error(codes.PermissionDenied, "no scope"), want: &llm.Error{Kind: llm.KindPermissionDenied}},
		{name: "rate limited", err: status.Error(codes.ResourceExhausted, "slow down"), want: &llm.Error{Kind: llm.KindRateLimited, Message: "slow down"}},
		{name: "message size limit", err: status.Error(codes.ResourceExhausted, "grpc: received message larger than max (9 vs. 4)"), want: &llm.Error{Kind: llm.KindTooLarge}},
		{name: "failed precondition is business", err: status.Error(codes.FailedPrecondition, "context too long"), want: &llm.Error{Kind: llm.KindBusiness, Message: "context too long"}},
		{name: "unavailable", err: status.Error(codes.Unavailable, "backend down at 10.0.0.7"), want: &llm.Error{Kind: llm.KindUnavailable}},
		{name: "internal hides the message", err: status.Error(codes.Internal, "panic: nil map"), want: &llm.Error{Kind: llm.KindUpstream}},
		{name: "deadline", err: status.Error(codes.DeadlineExceeded, "slow"), want: &llm.Error{Kind: llm.KindTimeout}},
		{name: "stream unavailable before the first message", stream: true, err: status.Error(codes.Unavailable, "down"), want: &llm.Error{Kind: llm.KindUnavailable}},
		{name: "switchyard business error keeps code, param and 422",
			err:  switchyardErr(&llm.Error{Kind: llm.KindBusiness, Message: "This model's maximum context length is 8192 tokens.", Code: "context_length_exceeded", Param: "messages", HTTPStatus: 422, Provider: "openai", UpstreamStatus: 400, UpstreamMessage: "too long"}),
			want: &llm.Error{Kind: llm.KindBusiness, Message: "This model's maximum context length is 8192 tokens.", Code: "context_length_exceeded", Param: "messages", HTTPStatus: 422}},
		{name: "switchyard quota keeps retry-after",
			err:  switchyardErr(&llm.Error{Kind: llm.KindQuotaExceeded, Message: "You exceeded your current quota.", Code: "insufficient_quota", RetryAfter: 7 * time.Second}),
			want: &llm.Error{Kind: llm.KindQuotaExceeded, Message: "You exceeded your current quota.", Code: "insufficient_quota", RetryAfter: 7 * time.Second}},
		{name: "switchyard error in a stream", stream: true,
			err:  switchyardErr(&llm.Error{Kind: llm.KindNotFound, Message: "The model 'x' does not exist.", Code: "model_not_found", Param: "model"}),
			want: &llm.Error{Kind: llm.KindNotFound, Message: "The model 'x' does not exist.", Code: "model_not_found", Param: "model"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fake{
				chat: func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
					return nil, c.err
				},
				stream: func(*pb.StreamChatCompletionRequest, grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
					return c.err
				},
			}
			p := start(t, f, map[string]string{"max_retries": "0"})
			req := &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "hi")}}
			var err error
			if c.stream {
				var s llm.Stream
				if s, err = p.ChatStream(context.Background(), req); err == nil {
					_, err = providertest.Collect(s)
					s.Close()
				}
			} else {
				_, err = p.Chat(context.Background(), req)
			}
			e, ok := errors.AsType[*llm.Error](err)
			if !ok {
				t.Fatalf("err = %v; want an *llm.Error", err)
			}
			got := &llm.Error{Kind: e.Kind, Message: e.Message, Code: e.Code, Param: e.Param, RetryAfter: e.RetryAfter, HTTPStatus: e.HTTPStatus}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s\nerror: %v", diff, err)
			}
			if e.Provider != "up" || e.UpstreamStatus == 0 || e.UpstreamMessage == "" {
				t.Errorf("provider %q, upstream status %d, message %q; want the provider name and the upstream's status kept", e.Provider, e.UpstreamStatus, e.UpstreamMessage)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	p, err := grpcupstream.NewProvider(provider.Config{Name: "up", BaseURL: addr, Options: map[string]string{"retry_backoff": "1ms"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = p.Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "hi")}})
	if k := llm.KindOf(err); k != llm.KindUnavailable {
		t.Fatalf("err = %v; want unavailable", err)
	}
}

// failThen fails the first n calls with err and answers afterwards.
func failThen(n int32, err error) func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
	var calls atomic.Int32
	return func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		if calls.Add(1) <= n {
			return nil, err
		}
		return &pb.CreateChatCompletionResponse{Id: "ok", Choices: []*pb.Choice{{Message: &pb.AssistantMessage{Content: llm.Ptr("fine")}, FinishReason: "stop"}}}, nil
	}
}

func TestRetryUnary(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "down")
	cases := []struct {
		name      string
		chat      func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error)
		opts      map[string]string
		timeout   time.Duration
		wantCalls int32
		wantKind  llm.Kind // KindInternal: success
	}{
		{name: "unavailable twice, then success", chat: failThen(2, unavailable), wantCalls: 3},
		{name: "rate limited, then success", chat: failThen(1, status.Error(codes.ResourceExhausted, "slow down")), wantCalls: 2},
		{name: "unavailable every time: three retries", chat: failThen(100, unavailable), wantCalls: 4, wantKind: llm.KindUnavailable},
		{name: "max_retries 1", chat: failThen(100, unavailable), opts: map[string]string{"max_retries": "1"}, wantCalls: 2, wantKind: llm.KindUnavailable},
		{name: "invalid argument is not retried", chat: failThen(100, status.Error(codes.InvalidArgument, "bad")), wantCalls: 1, wantKind: llm.KindInvalidArgument},
		{name: "internal is not retried", chat: failThen(100, status.Error(codes.Internal, "bug")), wantCalls: 1, wantKind: llm.KindUpstream},
		{name: "billing quota is not retried", chat: failThen(100, switchyardErr(&llm.Error{Kind: llm.KindQuotaExceeded, Code: "insufficient_quota"})), wantCalls: 1, wantKind: llm.KindQuotaExceeded},
		{name: "message size limit is not retried", chat: failThen(100, status.Error(codes.ResourceExhausted, "grpc: received message larger than max (9 vs. 4)")), wantCalls: 1, wantKind: llm.KindTooLarge},
		{name: "retry-after beyond the deadline is not waited for", timeout: 5 * time.Second,
			chat: failThen(100, switchyardErr(&llm.Error{Kind: llm.KindRateLimited, Message: "Rate limit reached", RetryAfter: 20 * time.Second})), wantCalls: 1, wantKind: llm.KindRateLimited},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fake{chat: c.chat}
			p := start(t, f, c.opts)
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			resp, err := p.Chat(ctx, &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "hi")}})
			if c.wantKind == llm.KindInternal {
				if err != nil || resp.ID != "ok" {
					t.Fatalf("Chat = %+v, %v; want the answer after retries", resp, err)
				}
			} else if k := llm.KindOf(err); k != c.wantKind {
				t.Fatalf("err = %v; want %v", err, c.wantKind)
			}
			if n := f.calls.Load(); n != c.wantCalls {
				t.Errorf("upstream saw %d attempts; want %d", n, c.wantCalls)
			}
			// Retries say which attempt they are.
			for i := range c.wantCalls {
				md := <-f.md
				if got := md.Get("x-retry-attempt"); i > 0 && (len(got) != 1 || got[0] != strconv.Itoa(int(i))) {
					t.Errorf("attempt %d: x-retry-attempt %q; want %d", i, got, i)
				}
			}
		})
	}
}

func TestRetryStream(t *testing.T) {
	t.Run("unavailable before the first message, then success", func(t *testing.T) {
		var calls atomic.Int32
		f := &fake{stream: func(in *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
			if calls.Add(1) == 1 {
				return status.Error(codes.Unavailable, "warming up")
			}
			return sendAll(chunk(&pb.Delta{Content: llm.Ptr("ok")}, "stop"))(in, s)
		}}
		p := start(t, f, nil)
		s, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "hi")}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got, err := providertest.Collect(s)
		if err != nil || got.Content != "ok" {
			t.Fatalf("stream = %q, %v; want ok", got.Content, err)
		}
		if n := f.calls.Load(); n != 2 {
			t.Errorf("upstream saw %d attempts; want 2", n)
		}
	})
	t.Run("no retry after the first message", func(t *testing.T) {
		f := &fake{stream: func(in *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
			if err := s.Send(chunk(&pb.Delta{Content: llm.Ptr("par")}, "")); err != nil {
				return err
			}
			return status.Error(codes.Unavailable, "node drained")
		}}
		p := start(t, f, nil)
		s, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "hi")}})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got, err := providertest.Collect(s)
		if got.Content != "par" || llm.KindOf(err) != llm.KindUpstream {
			t.Fatalf("stream = %q, %v; want the first piece, then an upstream_error", got.Content, err)
		}
		if n := f.calls.Load(); n != 1 {
			t.Errorf("upstream saw %d attempts; want 1", n)
		}
	})
}

func TestCancelReachesUpstream(t *testing.T) {
	t.Run("chat", func(t *testing.T) {
		started, canceled := make(chan struct{}), make(chan struct{})
		f := &fake{chat: func(ctx context.Context, _ *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
			close(started)
			<-ctx.Done()
			close(canceled)
			return nil, ctx.Err()
		}}
		p := start(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := p.Chat(ctx, &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "hi")}})
			errc <- err
		}()
		<-started
		cancel()
		waitClosed(t, canceled)
		if err := <-errc; llm.KindOf(err) != llm.KindCanceled {
			t.Errorf("err = %v; want canceled", err)
		}
		if n := f.calls.Load(); n != 1 {
			t.Errorf("upstream saw %d attempts; want 1 (a cancel is not retried)", n)
		}
	})
	t.Run("stream close", func(t *testing.T) {
		canceled := make(chan struct{})
		f := &fake{stream: func(_ *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
			if err := s.Send(chunk(&pb.Delta{Content: llm.Ptr("a")}, "")); err != nil {
				return err
			}
			<-s.Context().Done()
			close(canceled)
			return nil
		}}
		p := start(t, f, nil)
		s, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage("user", "hi")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		waitClosed(t, canceled)
		if _, err := s.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("Recv after Close = %v; want io.EOF", err)
		}
	})
}

// waitClosed fails the test if ch is not closed soon; the bound only catches a hang.
func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream did not see the cancellation")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     provider.Config
		wantErr bool
	}{
		{name: "host:port", cfg: provider.Config{BaseURL: "models.internal:9000"}},
		{name: "dns target with options", cfg: provider.Config{BaseURL: "dns:///models.internal:9000", Options: map[string]string{
			"tls": "true", "authority": "models.internal", "gzip": "true", "max_message_bytes": "33554432",
			"keepalive_time": "30s", "max_retries": "2", "retry_backoff": "500ms"}}},
		{name: "TLS server name", cfg: provider.Config{BaseURL: "10.0.0.7:9000", Options: map[string]string{"tls_server_name": "models.internal"}}},
		{name: "missing target", cfg: provider.Config{}, wantErr: true},
		{name: "http URL", cfg: provider.Config{BaseURL: "http://models.internal:9000"}, wantErr: true},
		{name: "unknown option", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"tsl": "true"}}, wantErr: true},
		{name: "zstd", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"compression": "zstd"}}},
		{name: "compression none", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"compression": "none"}}},
		{name: "gzip both ways", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"compression": "gzip", "gzip": "true"}}},
		{name: "unknown compression", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"compression": "brotli"}}, wantErr: true},
		{name: "gzip and zstd", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"compression": "zstd", "gzip": "true"}}, wantErr: true},
		{name: "bad bool", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"gzip": "yes please"}}, wantErr: true},
		{name: "small message limit", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"max_message_bytes": "1024"}}, wantErr: true},
		{name: "zero backoff", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"retry_backoff": "0s"}}, wantErr: true},
		{name: "missing CA file", cfg: provider.Config{BaseURL: "h:1", Options: map[string]string{"tls_ca_file": "/nonexistent/ca.pem"}}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := grpcupstream.New(c.cfg)
			if (err != nil) != c.wantErr {
				t.Fatalf("New = %v; want error %v", err, c.wantErr)
			}
			if err == nil {
				_ = p.(*grpcupstream.Provider).Close()
			}
		})
	}
}

func TestRerank(t *testing.T) {
	f := &fake{rerank: func(_ context.Context, in *pb.RerankRequest) (*pb.RerankResponse, error) {
		if in.GetModel() == "bad" {
			return &pb.RerankResponse{Results: []*pb.RerankResult{{Index: 5}}}, nil
		}
		return &pb.RerankResponse{Id: "rerank-1", Model: "r", Usage: &pb.RerankUsage{TotalTokens: 9, SearchUnits: 2},
			Results: []*pb.RerankResult{{Index: 1, RelevanceScore: 0.75}, {Index: 0, RelevanceScore: 0.25}}}, nil
	}}
	p := start(t, f, nil)
	req := &llm.RerankRequest{Model: "r", Query: "q", TopN: 2, ReturnDocuments: true, MaxChunksPerDoc: 4, User: "u", Documents: []llm.RerankDocument{
		{Text: "a"}, {Fields: map[string]string{"t": "T", "b": "B"}, Keys: []string{"t", "b"}},
	}}
	got, err := p.Rerank(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.RerankResponse{Model: "r", SearchUnits: 2, Usage: llm.Usage{PromptTokens: 9, TotalTokens: 9},
		Results: []llm.RerankResult{{Index: 1, RelevanceScore: 0.75}, {Index: 0, RelevanceScore: 0.25}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rerank mismatch (-want +got):\n%s", diff)
	}
	wantReq := &pb.RerankRequest{Model: "r", Query: "q", TopN: llm.Ptr(int32(2)), MaxChunksPerDoc: llm.Ptr(int32(4)), User: "u", Documents: []*pb.RerankDocument{
		{Document: &pb.RerankDocument_Text{Text: "a"}},
		{Document: &pb.RerankDocument_Structured{Structured: &pb.StructuredDocument{Fields: []*pb.DocumentField{{Key: "t", Value: "T"}, {Key: "b", Value: "B"}}}}},
	}}
	if diff := cmp.Diff(wantReq, <-f.reqs, protocmp.Transform()); diff != "" {
		t.Errorf("upstream request mismatch (-want +got):\n%s", diff)
	}
	req.Model = "bad"
	if _, err := p.Rerank(t.Context(), req); llm.KindOf(err) != llm.KindUpstream {
		t.Errorf("out-of-range index: %v, want upstream_error", err)
	}
}
