package server_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/server"
)

// shareEmbedder answers like a micro-batched provider: its usage is a share, marked estimated.
type shareEmbedder struct{ fakeProvider }

func (e *shareEmbedder) Embed(_ context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	return &llm.EmbeddingResponse{Vectors: [][]float32{{1}}, PromptTokens: 3, UsageEstimated: true}, nil
}

// TestEmbeddingUsageEstimated checks that an embedding answer whose usage is a batch share is
// recorded as estimated in the call record (what limits and audit read), with the share as usage.
func TestEmbeddingUsageEstimated(t *testing.T) {
	for _, estimated := range []bool{true, false} {
		var p llm.Provider = &fakeEmbedder{}
		if estimated {
			p = &shareEmbedder{}
		}
		rt, err := router.New(map[string]router.Backend{"b": {Provider: p}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		records := make(chan *callinfo.Record, 1)
		s := grpc.NewServer(grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, rec := callinfo.NewContext(ctx, "r")
			records <- rec
			return h(ctx, req)
		}))
		server.Register(s, func() *router.Router { return rt })
		lis := bufconn.Listen(1 << 20)
		go func() { _ = s.Serve(lis) }()
		conn, err := grpc.NewClient("passthrough:///bufconn",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := pb.NewEmbeddingServiceClient(conn).CreateEmbedding(t.Context(),
			&pb.CreateEmbeddingRequest{Model: "b/e", Input: &pb.EmbeddingInput{Texts: []string{"a"}}})
		conn.Close()
		s.Stop()
		if err != nil {
			t.Fatal(err)
		}
		info := (<-records).Info()
		if info.Usage.Estimated != estimated || info.Usage.PromptTokens != resp.GetUsage().GetPromptTokens() {
			t.Errorf("estimated answer %v: recorded usage %+v, response usage %v", estimated, info.Usage, resp.GetUsage())
		}
	}
}
