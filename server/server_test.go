package server_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/server"
)

// fakeProvider answers from its fields and records the last request.
type fakeProvider struct {
	warn   string // recorded with llm.Warn on every call when set
	resp   *llm.ChatResponse
	chunks []*llm.Chunk
	err    error // returned by Chat/ChatStream
	midErr error // returned by the stream after its chunks
	closed atomic.Bool
	last   atomic.Pointer[llm.ChatRequest]
}

func (p *fakeProvider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	p.last.Store(req)
	if p.warn != "" {
		llm.Warn(ctx, "%s", p.warn)
	}
	return p.resp, p.err
}

func (p *fakeProvider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	p.last.Store(req)
	if p.warn != "" {
		llm.Warn(ctx, "%s", p.warn)
	}
	if p.err != nil {
		return nil, p.err
	}
	return &sliceStream{p: p, chunks: p.chunks}, nil
}

type sliceStream struct {
	p      *fakeProvider
	chunks []*llm.Chunk
}

func (s *sliceStream) Recv() (*llm.Chunk, error) {
	if len(s.chunks) == 0 {
		if s.p.midErr != nil {
			return nil, s.p.midErr
		}
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *sliceStream) Close() error { s.p.closed.Store(true); return nil }

// fakeEmbedder is a provider that also embeds: vector i is {i, i+0.5}.
type fakeEmbedder struct {
	fakeProvider
	short bool // answer one vector too few
}

func (e *fakeEmbedder) Embed(_ context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	n := len(req.Texts) + len(req.Tokens)
	if e.short {
		n--
	}
	resp := &llm.EmbeddingResponse{PromptTokens: 5}
	for i := range n {
		resp.Vectors = append(resp.Vectors, []float32{float32(i), float32(i) + 0.5})
	}
	return resp, nil
}

type clients struct {
	chat   pb.ChatServiceClient
	embed  pb.EmbeddingServiceClient
	models pb.ModelServiceClient
}

// start serves Register over bufconn with only an error-mapping interceptor.
func start(t *testing.T, backends map[string]router.Backend, aliases map[string]string) clients {
	t.Helper()
	// Pinned names keep the retry policy, with backoffs short enough for a fast suite.
	fast := map[string]router.RetryConfig{}
	for name := range backends {
		fast[name] = router.RetryConfig{InitialBackoff: time.Millisecond, RetryAfterCap: time.Millisecond}
	}
	rt, err := router.Build(backends, router.Config{Aliases: aliases, ProviderRetry: fast}, nil)
	if err != nil {
		t.Fatal(err)
	}
	toStatus := func(err error) error {
		if err == nil {
			return nil
		}
		return errmap.ToStatus(err).Err()
	}
	s := grpc.NewServer(
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			return resp, toStatus(err)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return toStatus(h(srv, ss))
		}),
	)
	server.Register(s, func() *router.Router { return rt })
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
	return clients{pb.NewChatServiceClient(conn), pb.NewEmbeddingServiceClient(conn), pb.NewModelServiceClient(conn)}
}

func userMsg(text string) []*pb.ChatMessage {
	return []*pb.ChatMessage{{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: text}}}}
}

func errorInfo(t *testing.T, err error) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	t.Fatalf("error %v has no ErrorInfo", err)
	return nil
}

func TestCreateChatCompletion(t *testing.T) {
	p := &fakeProvider{resp: &llm.ChatResponse{ID: "up-1", Model: "gpt-4o-2024-08-06", Created: 5,
		Choices: []llm.Choice{{Content: llm.Ptr("hi"), FinishReason: "stop"}}}}
	c := start(t, map[string]router.Backend{"openai": {Provider: p}}, map[string]string{"fast": "openai/gpt-4o"})

	var hdr metadata.MD
	resp, err := c.chat.CreateChatCompletion(context.Background(), &pb.CreateChatCompletionRequest{Model: "fast", Messages: userMsg("hello")}, grpc.Header(&hdr))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetModel() != "gpt-4o-2024-08-06" || resp.GetId() != "up-1" || resp.GetChoices()[0].GetMessage().GetContent() != "hi" {
		t.Errorf("response = %v; want the upstream's answer", resp)
	}
	if got := hdr.Get(mdkey.Route); len(got) != 1 || got[0] != "openai/gpt-4o" {
		t.Errorf("%s header = %v; want [openai/gpt-4o]", mdkey.Route, got)
	}
	if req := p.last.Load(); req.Model != "gpt-4o" || req.Messages[0].Text() != "hello" {
		t.Errorf("provider got model %q text %q; want gpt-4o, hello", req.Model, req.Messages[0].Text())
	}
}

func TestCreateChatCompletionErrors(t *testing.T) {
	p := &fakeProvider{err: &llm.Error{Kind: llm.KindRateLimited, Provider: "openai", UpstreamStatus: 429}}
	c := start(t, map[string]router.Backend{"openai": {Provider: p, Models: []string{"gpt-4o"}}}, nil)
	cases := []struct {
		model string
		code  codes.Code
	}{
		{"openai/unknown", codes.NotFound},
		{"nope/gpt-4o", codes.NotFound},
		{"openai/gpt-4o", codes.ResourceExhausted},
	}
	for _, tc := range cases {
		_, err := c.chat.CreateChatCompletion(context.Background(), &pb.CreateChatCompletionRequest{Model: tc.model, Messages: userMsg("x")})
		if status.Code(err) != tc.code {
			t.Errorf("model %s: error %v; want code %v", tc.model, err, tc.code)
		}
	}
}

func TestStreamChatCompletion(t *testing.T) {
	chunks := []*llm.Chunk{
		{ID: "s-1", Created: 9, Model: "gpt-4o-x", Choices: []llm.ChunkChoice{{Content: llm.Ptr("he")}}},
		{ID: "s-1", Created: 9, Choices: []llm.ChunkChoice{{Content: llm.Ptr("llo"), FinishReason: "stop"}}},
		{ID: "s-1", Created: 9, Usage: &llm.Usage{TotalTokens: 4}},
	}
	cases := []struct {
		name       string
		usage      bool
		midErr     error
		wantChunks int
		wantCode   codes.Code
	}{
		{"without usage", false, nil, 2, codes.OK},
		{"with usage", true, nil, 3, codes.OK},
		{"broken mid-way", false, &llm.Error{Kind: llm.KindUpstream, Message: "upstream broke"}, 2, codes.Unavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakeProvider{chunks: chunks, midErr: tc.midErr}
			c := start(t, map[string]router.Backend{"openai": {Provider: p}}, nil)
			st, err := c.chat.StreamChatCompletion(context.Background(), &pb.StreamChatCompletionRequest{Request: &pb.CreateChatCompletionRequest{
				Model: "openai/gpt-4o", Messages: userMsg("x"), StreamOptions: &pb.StreamOptions{IncludeUsage: tc.usage},
			}})
			if err != nil {
				t.Fatal(err)
			}
			var got []*pb.StreamChatCompletionResponse
			for {
				r, err := st.Recv()
				if err != nil {
					if ok := errors.Is(err, io.EOF); (tc.wantCode == codes.OK) != ok || (!ok && status.Code(err) != tc.wantCode) {
						t.Fatalf("stream ended with %v; want code %v", err, tc.wantCode)
					}
					break
				}
				got = append(got, r)
			}
			if len(got) != tc.wantChunks {
				t.Fatalf("got %d chunks; want %d: %v", len(got), tc.wantChunks, got)
			}
			if d := got[0].GetChoices()[0].GetDelta(); d.GetRole() != "assistant" || d.GetContent() != "he" {
				t.Errorf("first delta = %v; want role assistant, content he", d)
			}
			if tc.usage && got[2].GetUsage().GetTotalTokens() != 4 {
				t.Errorf("last chunk = %v; want usage", got[2])
			}
			hdr, _ := st.Header()
			if r := hdr.Get(mdkey.Route); len(r) != 1 || r[0] != "openai/gpt-4o" {
				t.Errorf("route header = %v", r)
			}
			if !p.closed.Load() {
				t.Error("the upstream stream was not closed")
			}
			if p.last.Load().IncludeStreamUsage != tc.usage {
				t.Errorf("IncludeStreamUsage = %v; want %v", p.last.Load().IncludeStreamUsage, tc.usage)
			}
		})
	}
}

func TestCreateEmbedding(t *testing.T) {
	emb := &fakeEmbedder{}
	c := start(t, map[string]router.Backend{
		"oa":    {Provider: emb},
		"short": {Provider: &fakeEmbedder{short: true}},
		"chat":  {Provider: &fakeProvider{}},
	}, nil)
	texts := &pb.EmbeddingInput{Texts: []string{"a", "b"}}

	t.Run("float", func(t *testing.T) {
		resp, err := c.embed.CreateEmbedding(context.Background(), &pb.CreateEmbeddingRequest{Model: "oa/e", Input: texts})
		if err != nil {
			t.Fatal(err)
		}
		want := &pb.CreateEmbeddingResponse{Object: "list", Model: "e", Usage: &pb.EmbeddingUsage{PromptTokens: 5, TotalTokens: 5}, Data: []*pb.Embedding{
			{Object: "embedding", Index: 0, Embedding: []float32{0, 0.5}},
			{Object: "embedding", Index: 1, Embedding: []float32{1, 1.5}},
		}}
		if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("base64 tokens", func(t *testing.T) {
		resp, err := c.embed.CreateEmbedding(context.Background(), &pb.CreateEmbeddingRequest{Model: "oa/e", EncodingFormat: "base64",
			Input: &pb.EmbeddingInput{Tokens: []*pb.TokenIDs{{Ids: []int32{1, 2}}}}})
		if err != nil {
			t.Fatal(err)
		}
		d := resp.GetData()[0]
		b := d.GetEmbeddingBytes()
		if len(d.GetEmbedding()) != 0 || len(b) != 8 || math.Float32frombits(binary.LittleEndian.Uint32(b[4:])) != 0.5 {
			t.Errorf("embedding = %v bytes %x; want only bytes of [0 0.5] as little-endian float32", d.GetEmbedding(), b)
		}
	})
	errCases := []struct {
		name  string
		req   *pb.CreateEmbeddingRequest
		code  codes.Code
		param string
	}{
		{"not an embedder", &pb.CreateEmbeddingRequest{Model: "chat/x", Input: texts}, codes.InvalidArgument, "model"},
		{"bad encoding", &pb.CreateEmbeddingRequest{Model: "oa/e", Input: texts, EncodingFormat: "hex"}, codes.InvalidArgument, "encoding_format"},
		{"wrong vector count", &pb.CreateEmbeddingRequest{Model: "short/e", Input: texts}, codes.Unavailable, ""},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.embed.CreateEmbedding(context.Background(), tc.req)
			if status.Code(err) != tc.code {
				t.Fatalf("error %v; want code %v", err, tc.code)
			}
			if got := errorInfo(t, err).GetMetadata()[errmap.MetaParam]; got != tc.param {
				t.Errorf("param = %q; want %q", got, tc.param)
			}
		})
	}
}

func TestModels(t *testing.T) {
	c := start(t, map[string]router.Backend{"openai": {Provider: &fakeProvider{}, Models: []string{"gpt-4o"}}}, map[string]string{"fast": "openai/gpt-4o"})
	list, err := c.models.ListModels(context.Background(), &pb.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetData()) != 2 || list.GetObject() != "list" {
		t.Fatalf("ListModels = %v; want two models", list)
	}
	for _, m := range list.GetData() {
		if m.GetCreated() == 0 || m.GetObject() != "model" {
			t.Errorf("model %v lacks created or object", m)
		}
	}
	got, err := c.models.GetModel(context.Background(), &pb.GetModelRequest{Id: "fast"})
	if err != nil || got.GetModel().GetTarget() != "openai/gpt-4o" || got.GetModel().GetOwnedBy() != "switchyard" {
		t.Errorf("GetModel(fast) = %v, %v; want the alias to openai/gpt-4o", got, err)
	}
	_, err = c.models.GetModel(context.Background(), &pb.GetModelRequest{Id: "openai/nope"})
	if status.Code(err) != codes.NotFound || errorInfo(t, err).GetMetadata()[errmap.MetaCode] != "model_not_found" {
		t.Errorf("GetModel(unknown) error = %v; want NOT_FOUND model_not_found", err)
	}
}

// TestWarningHeader checks that warnings an adapter records reach the client as
// x-switchyard-warning headers, on both RPCs, and that no header is sent without warnings.
func TestWarningHeader(t *testing.T) {
	p := &fakeProvider{warn: "seed dropped: not supported by this provider",
		resp:   &llm.ChatResponse{Choices: []llm.Choice{{Content: llm.Ptr("hi"), FinishReason: "stop"}}},
		chunks: []*llm.Chunk{{Choices: []llm.ChunkChoice{{Content: llm.Ptr("hi"), FinishReason: "stop"}}}}}
	c := start(t, map[string]router.Backend{"openai": {Provider: p}}, nil)
	req := &pb.CreateChatCompletionRequest{Model: "openai/gpt-4o", Messages: userMsg("hello")}

	var hdr metadata.MD
	if _, err := c.chat.CreateChatCompletion(context.Background(), req, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get(mdkey.Warning); len(got) != 1 || got[0] != p.warn {
		t.Errorf("unary %s = %v; want [%s]", mdkey.Warning, got, p.warn)
	}

	s, err := c.chat.StreamChatCompletion(context.Background(), &pb.StreamChatCompletionRequest{Request: req})
	if err != nil {
		t.Fatal(err)
	}
	shdr, err := s.Header()
	if err != nil {
		t.Fatal(err)
	}
	if got := shdr.Get(mdkey.Warning); len(got) != 1 || got[0] != p.warn {
		t.Errorf("stream %s = %v; want [%s]", mdkey.Warning, got, p.warn)
	}
	for {
		if _, err := s.Recv(); err != nil {
			break
		}
	}

	p.warn = ""
	hdr = nil
	if _, err := c.chat.CreateChatCompletion(context.Background(), req, grpc.Header(&hdr)); err != nil {
		t.Fatal(err)
	}
	if got := hdr.Get(mdkey.Warning); got != nil {
		t.Errorf("%s = %v without warnings; want none", mdkey.Warning, got)
	}
}
