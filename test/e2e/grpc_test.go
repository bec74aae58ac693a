package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

func (g *gateway) grpcConn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(g.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func authed(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+clientKey)
}

func textMsg(role, s string) *pb.ChatMessage {
	return &pb.ChatMessage{Role: role, Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: s}}}
}

// TestGRPCClient drives the generated Go client: unary, streaming, embeddings, models, health and
// errors with their ErrorInfo details.
func TestGRPCClient(t *testing.T) {
	g := startGateway(t, "")
	cc := g.grpcConn(t)
	chat := pb.NewChatServiceClient(cc)
	ctx := authed(t.Context())
	req := &pb.CreateChatCompletionRequest{Model: "chat", Messages: []*pb.ChatMessage{textMsg("user", "over grpc")}}

	t.Run("unary", func(t *testing.T) {
		var hdr metadata.MD
		resp, err := chat.CreateChatCompletion(ctx, req, grpc.Header(&hdr))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.GetChoices()[0].GetMessage().GetContent(); got != "pong: over grpc" {
			t.Errorf("content = %q", got)
		}
		if r := hdr.Get("x-switchyard-route"); len(r) != 1 || r[0] != "up/gpt-ok" {
			t.Errorf("route header = %v", r)
		}
		if id := hdr.Get("x-request-id"); len(id) != 1 || id[0] == "" {
			t.Errorf("x-request-id = %v", id)
		}
	})

	t.Run("stream", func(t *testing.T) {
		s, err := chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: &pb.CreateChatCompletionRequest{
			Model: "mock/echo", Messages: []*pb.ChatMessage{textMsg("user", "one two three four five six")},
			StreamOptions: &pb.StreamOptions{IncludeUsage: true}}})
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		var chunks int
		var usage *pb.Usage
		for {
			c, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			chunks++
			for _, ch := range c.GetChoices() {
				text.WriteString(ch.GetDelta().GetContent())
			}
			if c.GetUsage() != nil {
				usage = c.GetUsage()
			}
		}
		if text.String() != "one two three four five six" || chunks < 3 || usage.GetTotalTokens() == 0 {
			t.Errorf("text=%q chunks=%d usage=%v", text.String(), chunks, usage)
		}
	})

	t.Run("embeddings and models", func(t *testing.T) {
		emb, err := pb.NewEmbeddingServiceClient(cc).CreateEmbedding(ctx, &pb.CreateEmbeddingRequest{
			Model: "mock/embed", Input: &pb.EmbeddingInput{Texts: []string{"a", "b"}}, EncodingFormat: "base64"})
		if err != nil {
			t.Fatal(err)
		}
		if len(emb.GetData()) != 2 || len(emb.GetData()[1].GetEmbeddingBytes()) == 0 || len(emb.GetData()[1].GetEmbedding()) != 0 {
			t.Errorf("base64 over gRPC should fill embedding_bytes only: %v", emb.GetData())
		}
		m, err := pb.NewModelServiceClient(cc).GetModel(ctx, &pb.GetModelRequest{Id: "chat"})
		if err != nil {
			t.Fatal(err)
		}
		if m.GetModel().GetTarget() != "up/gpt-ok" {
			t.Errorf("alias target = %q", m.GetModel().GetTarget())
		}
	})

	t.Run("health without credentials", func(t *testing.T) {
		h, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health = %v, %v", h, err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		cases := []struct {
			name   string
			ctx    context.Context
			model  string
			code   codes.Code
			class  string
			status string
		}{
			{"no key", t.Context(), "chat", codes.Unauthenticated, "authentication", "401"},
			{"unknown model", ctx, "nope/x", codes.NotFound, "parameter", "404"},
			{"upstream 429", ctx, "up/err-429", codes.ResourceExhausted, "quota", "429"},
			{"upstream 500", ctx, "up/err-500", codes.Unavailable, "service", "502"},
		}
		for _, c := range cases {
			_, err := chat.CreateChatCompletion(c.ctx, &pb.CreateChatCompletionRequest{Model: c.model, Messages: req.Messages})
			st := status.Convert(err)
			if st.Code() != c.code {
				t.Errorf("%s: code %v, want %v (%v)", c.name, st.Code(), c.code, err)
				continue
			}
			info := errorInfo(st)
			if info == nil || info.GetMetadata()["class"] != c.class || info.GetMetadata()["http_status"] != c.status {
				t.Errorf("%s: ErrorInfo = %v, want class %s http_status %s", c.name, info, c.class, c.status)
			}
		}
	})
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// toolsBin is the repository's tool directory, where `make test-tools` builds the pinned grpcurl.
const toolsBin = "../../tools/bin"

// requireGRPCurl returns grpcurl from PATH, else from tools/bin. A missing grpcurl fails the test.
func requireGRPCurl(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("grpcurl"); err == nil {
		return bin
	}
	bin, err := filepath.Abs(filepath.Join(toolsBin, "grpcurl"))
	if err == nil {
		bin, err = exec.LookPath(bin)
	}
	if err != nil {
		t.Fatalf("grpcurl is neither on PATH nor in tools/bin: run make test-tools (%v)", err)
	}
	return bin
}

// TestGRPCurl uses grpcurl through server reflection: list, describe and call, unary and streaming.
func TestGRPCurl(t *testing.T) {
	bin := requireGRPCurl(t)
	g := startGateway(t, "")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(t.Context(), bin, append([]string{"-plaintext"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	services := run(g.GRPCAddr(), "list")
	for _, s := range []string{"switchyard.v1.ChatService", "switchyard.v1.EmbeddingService", "switchyard.v1.ModelService", "grpc.health.v1.Health"} {
		if !strings.Contains(services, s) {
			t.Errorf("grpcurl list lacks %s:\n%s", s, services)
		}
	}
	if d := run(g.GRPCAddr(), "describe", "switchyard.v1.ChatService"); !strings.Contains(d, "StreamChatCompletion") {
		t.Errorf("describe:\n%s", d)
	}
	auth := "authorization: Bearer " + clientKey
	out := run("-H", auth, "-d", `{"model":"mock/echo","messages":[{"role":"user","content":{"text":"hi grpcurl"}}]}`,
		g.GRPCAddr(), "switchyard.v1.ChatService/CreateChatCompletion")
	var resp struct {
		Choices []struct {
			Message struct{ Content string }
		}
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "hi grpcurl" {
		t.Errorf("unary output (%v):\n%s", err, out)
	}
	out = run("-H", auth, "-d", `{"request":{"model":"mock/echo","messages":[{"role":"user","content":{"text":"a b c d e f"}}]}}`,
		g.GRPCAddr(), "switchyard.v1.ChatService/StreamChatCompletion")
	if n := strings.Count(out, `"object": "chat.completion.chunk"`); n < 3 {
		t.Errorf("stream output has %d chunks:\n%s", n, out)
	}
	// Without the key the call fails with Unauthenticated.
	cmd := exec.CommandContext(t.Context(), bin, "-plaintext", "-d", `{"model":"mock/echo"}`, g.GRPCAddr(), "switchyard.v1.ChatService/CreateChatCompletion")
	if b, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(b), "Unauthenticated") {
		t.Errorf("unauthenticated grpcurl call: err=%v\n%s", err, b)
	}
}
