package gateway

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
)

// The fake services choose their behaviour by model name.
const (
	modelEcho     = "mock/echo"      // answers "echo: <last text>"; streams role, two pieces, finish, usage
	modelTool     = "mock/tool"      // answers with a tool call and no content
	modelNotFound = "mock/missing"   // NOT_FOUND with code model_not_found, param model
	modelLimited  = "mock/limited"   // RESOURCE_EXHAUSTED, retry after 7 s
	modelMidFail  = "mock/midfail"   // streams one chunk, then UNAVAILABLE
	modelGated    = "mock/gated"     // streams one chunk, waits for the test's gate, then finishes
	modelHang     = "mock/hang"      // streams one chunk, then waits for the stream to be cancelled
	modelMany     = "mock/many"      // streams 20 content chunks
	modelEmpty    = "mock/empty"     // streams nothing
	modelBase64   = "mock/embed-b64" // always answers with embedding_bytes
)

type fakeChat struct {
	pb.UnimplementedChatServiceServer
	mu       sync.Mutex
	last     *pb.CreateChatCompletionRequest
	lastMD   metadata.MD
	gate     chan struct{} // modelGated waits for it
	canceled chan struct{} // modelHang closes it when its stream context ends
}

func (f *fakeChat) record(ctx context.Context, req *pb.CreateChatCompletionRequest) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.last, f.lastMD = req, md
	f.mu.Unlock()
}

func (f *fakeChat) lastRequest() (*pb.CreateChatCompletionRequest, metadata.MD) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.lastMD
}

func modelError(model string) error {
	switch model {
	case modelNotFound:
		return errmap.ToStatus(&llm.Error{Kind: llm.KindNotFound, Message: "The model `mock/missing` does not exist", Code: "model_not_found", Param: "model"}).Err()
	case modelLimited:
		return errmap.ToStatus(&llm.Error{Kind: llm.KindRateLimited, Message: "slow down", RetryAfter: 7 * time.Second}).Err()
	}
	return nil
}

func lastText(req *pb.CreateChatCompletionRequest) string {
	msgs := req.GetMessages()
	if len(msgs) == 0 {
		return ""
	}
	c := msgs[len(msgs)-1].GetContent()
	if t := c.GetText(); t != "" {
		return t
	}
	for _, p := range c.GetParts().GetParts() {
		if p.GetText() != "" {
			return p.GetText()
		}
	}
	return ""
}

func (f *fakeChat) CreateChatCompletion(ctx context.Context, req *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
	f.record(ctx, req)
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", "req-123", "x-ratelimit-remaining-requests", "99", "internal-secret", "do-not-leak"))
	if err := modelError(req.GetModel()); err != nil {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-switchyard-attempts", "3"))
		return nil, err
	}
	msg := &pb.AssistantMessage{Role: "assistant", Content: proto.String("echo: " + lastText(req))}
	finish := "stop"
	if req.GetModel() == modelTool {
		msg = &pb.AssistantMessage{Role: "assistant", ToolCalls: []*pb.ToolCall{{
			Id: "call_abc123", Type: "function",
			Function: &pb.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`},
		}}}
		finish = "tool_calls"
	}
	return &pb.CreateChatCompletionResponse{
		Id: "chatcmpl-1", Object: "chat.completion", Created: 1700000000, Model: req.GetModel(),
		Choices: []*pb.Choice{{Index: 0, Message: msg, FinishReason: finish}},
		Usage:   &pb.Usage{PromptTokens: 9, CompletionTokens: 2, TotalTokens: 11},
	}, nil
}

func chunk(choices ...*pb.ChunkChoice) *pb.StreamChatCompletionResponse {
	return &pb.StreamChatCompletionResponse{Id: "chatcmpl-2", Object: "chat.completion.chunk", Created: 1700000000, Model: "gw-chat", Choices: choices}
}

func contentChunk(s string) *pb.StreamChatCompletionResponse {
	return chunk(&pb.ChunkChoice{Delta: &pb.Delta{Content: proto.String(s)}})
}

func (f *fakeChat) StreamChatCompletion(req *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
	ctx := s.Context()
	f.record(ctx, req.GetRequest())
	model := req.GetRequest().GetModel()
	if err := modelError(model); err != nil {
		_ = s.SetHeader(metadata.Pairs("x-switchyard-attempts", "3")) // as the router sends it
		return err
	}
	first := chunk(&pb.ChunkChoice{Delta: &pb.Delta{Role: "assistant", Content: proto.String("")}})
	var rest []*pb.StreamChatCompletionResponse
	switch model {
	case modelEmpty:
		return nil
	case modelTool:
		rest = []*pb.StreamChatCompletionResponse{
			chunk(&pb.ChunkChoice{Delta: &pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Id: "call_abc123", Type: "function", Function: &pb.FunctionCall{Name: "get_weather"}}}}}),
			chunk(&pb.ChunkChoice{Delta: &pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Function: &pb.FunctionCall{Arguments: `{"city": "Pa`}}}}}),
			chunk(&pb.ChunkChoice{Delta: &pb.Delta{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Function: &pb.FunctionCall{Arguments: `ris"}`}}}}}),
			chunk(&pb.ChunkChoice{Delta: &pb.Delta{}, FinishReason: "tool_calls"}),
		}
	case modelMany:
		for i := range 20 {
			rest = append(rest, contentChunk("token"+strings.Repeat("x", i%3)))
		}
		rest = append(rest, chunk(&pb.ChunkChoice{Delta: &pb.Delta{}, FinishReason: "stop"}))
	default:
		rest = []*pb.StreamChatCompletionResponse{
			contentChunk("Hello"), contentChunk(" there"),
			chunk(&pb.ChunkChoice{Delta: &pb.Delta{}, FinishReason: "stop"}),
		}
	}
	if err := s.Send(first); err != nil {
		return err
	}
	switch model {
	case modelMidFail:
		return status.Error(codes.Unavailable, "upstream connection reset")
	case modelGated:
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	case modelHang:
		<-ctx.Done()
		close(f.canceled)
		return ctx.Err()
	}
	for _, c := range rest {
		if err := s.Send(c); err != nil {
			return err
		}
	}
	if req.GetRequest().GetStreamOptions().GetIncludeUsage() {
		u := chunk()
		u.Usage = &pb.Usage{PromptTokens: 21, CompletionTokens: 6, TotalTokens: 27}
		return s.Send(u)
	}
	return nil
}

type fakeEmbed struct {
	pb.UnimplementedEmbeddingServiceServer
	mu     sync.Mutex
	last   *pb.CreateEmbeddingRequest
	lastMD metadata.MD
}

func (f *fakeEmbed) lastRequest() (*pb.CreateEmbeddingRequest, metadata.MD) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last, f.lastMD
}

// embedVector is the fake embedding of input i: [i+0.5, -0.25, 1e-7].
func embedVector(i int) []float32 { return []float32{float32(i) + 0.5, -0.25, 1e-7} }

func (f *fakeEmbed) CreateEmbedding(ctx context.Context, req *pb.CreateEmbeddingRequest) (*pb.CreateEmbeddingResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.last, f.lastMD = req, md
	f.mu.Unlock()
	n := len(req.GetInput().GetTexts()) + len(req.GetInput().GetTokens())
	resp := &pb.CreateEmbeddingResponse{Object: "list", Model: req.GetModel(), Usage: &pb.EmbeddingUsage{PromptTokens: int32(n), TotalTokens: int32(n)}}
	for i := range n {
		e := &pb.Embedding{Object: "embedding", Index: int32(i)}
		v := embedVector(i)
		if req.GetEncodingFormat() == "base64" || req.GetModel() == modelBase64 {
			for _, x := range v {
				e.EmbeddingBytes = binary.LittleEndian.AppendUint32(e.EmbeddingBytes, math.Float32bits(x))
			}
		} else {
			e.Embedding = v
		}
		resp.Data = append(resp.Data, e)
	}
	return resp, nil
}

// fakeRerank ranks the documents in reverse order, scores 1/(1+position); modelLimited and
// modelNotFound fail as modelError says.
type fakeRerank struct {
	pb.UnimplementedRerankServiceServer
	mu   sync.Mutex
	last *pb.RerankRequest
}

func (f *fakeRerank) lastRequest() *pb.RerankRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *fakeRerank) Rerank(_ context.Context, req *pb.RerankRequest) (*pb.RerankResponse, error) {
	f.mu.Lock()
	f.last = req
	f.mu.Unlock()
	if err := modelError(req.GetModel()); err != nil {
		return nil, err
	}
	resp := &pb.RerankResponse{Id: "rerank-1", Model: req.GetModel(), Usage: &pb.RerankUsage{TotalTokens: 12}}
	n := len(req.GetDocuments())
	for pos := range n {
		i := n - 1 - pos
		r := &pb.RerankResult{Index: int32(i), RelevanceScore: 1 / float64(1+pos)}
		if req.GetReturnDocuments() {
			r.Document = req.GetDocuments()[i]
		}
		resp.Results = append(resp.Results, r)
	}
	if req.GetModel() == "mock/cohere" {
		resp.Usage.SearchUnits = 1
	}
	return resp, nil
}

type fakeModels struct {
	pb.UnimplementedModelServiceServer
}

var testModels = []*pb.Model{
	{Id: "mock/echo", Object: "model", Created: 1700000000, OwnedBy: "mock"},
	{Id: "gw-chat", Object: "model", Created: 1700000000, OwnedBy: "switchyard", Target: "mock/echo"},
	{Id: "mock/rerank", Object: "model", Created: 1700000000, OwnedBy: "mock", Type: "rerank"},
}

func (fakeModels) ListModels(context.Context, *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	return &pb.ListModelsResponse{Object: "list", Data: testModels}, nil
}

func (fakeModels) GetModel(_ context.Context, req *pb.GetModelRequest) (*pb.GetModelResponse, error) {
	for _, m := range testModels {
		if m.GetId() == req.GetId() {
			return &pb.GetModelResponse{Model: m}, nil
		}
	}
	return nil, errmap.ToStatus(&llm.Error{Kind: llm.KindNotFound, Message: "no model " + req.GetId(), Code: "model_not_found", Param: "model"}).Err()
}

type harness struct {
	url    string
	chat   *fakeChat
	embed  *fakeEmbed
	rerank *fakeRerank
}

const maxMsg = 64 << 20

// newHarness serves the fakes on a loopback gRPC server and the gateway over a real client
// connection to it, on an httptest server.
func newHarness(tb testing.TB, opts Options) *harness {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	h := &harness{
		chat:   &fakeChat{gate: make(chan struct{}), canceled: make(chan struct{})},
		embed:  &fakeEmbed{},
		rerank: &fakeRerank{},
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(maxMsg), grpc.MaxSendMsgSize(maxMsg))
	pb.RegisterChatServiceServer(gs, h.chat)
	pb.RegisterEmbeddingServiceServer(gs, h.embed)
	pb.RegisterRerankServiceServer(gs, h.rerank)
	pb.RegisterModelServiceServer(gs, fakeModels{})
	go func() { _ = gs.Serve(lis) }()
	tb.Cleanup(gs.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	handler, err := New(context.Background(), conn, opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	tb.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}
