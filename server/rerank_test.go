package server_test

import (
	"context"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/server"
)

// fakeReranker answers with its results as they are (unsorted, maybe more than top_n) and its usage.
type fakeReranker struct {
	fakeProvider
	results []llm.RerankResult
	usage   llm.Usage
	units   int32
	last    *llm.RerankRequest
}

func (r *fakeReranker) Rerank(_ context.Context, req *llm.RerankRequest) (*llm.RerankResponse, error) {
	r.last = req
	return &llm.RerankResponse{Results: r.results, Usage: r.usage, SearchUnits: r.units}, nil
}

// startRerank serves Register over bufconn with an interceptor that maps errors and hands each
// call's record to records.
func startRerank(t *testing.T, backends map[string]router.Backend) (pb.RerankServiceClient, chan *callinfo.Record) {
	t.Helper()
	rt, err := router.New(backends, nil)
	if err != nil {
		t.Fatal(err)
	}
	records := make(chan *callinfo.Record, 16)
	s := grpc.NewServer(grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, rec := callinfo.NewContext(ctx, "r")
		records <- rec
		resp, err := h(ctx, req)
		if err != nil {
			return nil, errmap.ToStatus(err).Err()
		}
		return resp, nil
	}))
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
	return pb.NewRerankServiceClient(conn), records
}

func textDocs(texts ...string) []*pb.RerankDocument {
	out := make([]*pb.RerankDocument, len(texts))
	for i, s := range texts {
		out[i] = &pb.RerankDocument{Document: &pb.RerankDocument_Text{Text: s}}
	}
	return out
}

func TestRerank(t *testing.T) {
	unsorted := []llm.RerankResult{{Index: 2, RelevanceScore: 0.1}, {Index: 0, RelevanceScore: 0.9}, {Index: 1, RelevanceScore: 0.5}}
	good := &fakeReranker{results: unsorted, usage: llm.Usage{TotalTokens: 42}, units: 1}
	silent := &fakeReranker{results: unsorted} // reports no usage
	bad := &fakeReranker{results: []llm.RerankResult{{Index: 0}, {Index: 0}}}
	c, records := startRerank(t, map[string]router.Backend{
		"good": {Provider: good}, "silent": {Provider: silent}, "bad": {Provider: bad}, "chat": {Provider: &fakeProvider{}},
	})
	docs := textDocs("aaaa", "bbbb", "cccc")

	t.Run("sorted, cut to top_n, documents from the request", func(t *testing.T) {
		resp, err := c.Rerank(t.Context(), &pb.RerankRequest{Model: "good/r", Query: "qq", Documents: docs, TopN: llm.Ptr(int32(2)), ReturnDocuments: true})
		if err != nil {
			t.Fatal(err)
		}
		want := &pb.RerankResponse{Id: resp.GetId(), Model: "r", Usage: &pb.RerankUsage{TotalTokens: 42, SearchUnits: 1}, Results: []*pb.RerankResult{
			{Index: 0, RelevanceScore: 0.9, Document: docs[0]},
			{Index: 1, RelevanceScore: 0.5, Document: docs[1]},
		}}
		if diff := cmp.Diff(want, resp, protocmp.Transform()); diff != "" || len(resp.GetId()) < 8 {
			t.Errorf("id %q; mismatch (-want +got):\n%s", resp.GetId(), diff)
		}
		if good.last.TopN != 2 || good.last.Model != "r" || good.last.Query != "qq" || len(good.last.Documents) != 3 {
			t.Errorf("provider request = %+v", good.last)
		}
		info := (<-records).Info()
		if info.Target != "good/r" || info.Attempts != 1 || info.Usage.TotalTokens != 42 || info.Usage.Estimated || info.ResponseModel != "r" {
			t.Errorf("call record = %+v", info)
		}
	})
	t.Run("no documents unless asked; usage estimated when the upstream reports none", func(t *testing.T) {
		resp, err := c.Rerank(t.Context(), &pb.RerankRequest{Model: "silent/r", Query: "qq", Documents: docs})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetResults()) != 3 || resp.GetResults()[0].GetDocument() != nil {
			t.Errorf("results = %v; want all three without documents", resp.GetResults())
		}
		// Three pairs of 2+4 characters: 18 characters, 5 tokens.
		info := (<-records).Info()
		if !info.Usage.Estimated || info.Usage.TotalTokens != 5 || resp.GetUsage().GetTotalTokens() != 5 {
			t.Errorf("usage: recorded %+v, answered %v; want 5 estimated tokens", info.Usage, resp.GetUsage())
		}
	})
	errCases := []struct {
		name  string
		model string
		code  codes.Code
		param string
	}{
		{"not a reranker", "chat/x", codes.InvalidArgument, "model"},
		{"repeated index", "bad/r", codes.Unavailable, ""},
		{"unknown provider", "nope/x", codes.NotFound, "model"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Rerank(t.Context(), &pb.RerankRequest{Model: tc.model, Query: "q", Documents: docs})
			if status.Code(err) != tc.code {
				t.Fatalf("error %v; want code %v", err, tc.code)
			}
			if got := errorInfo(t, err).GetMetadata()[errmap.MetaParam]; got != tc.param {
				t.Errorf("param = %q; want %q", got, tc.param)
			}
			<-records
		})
	}
}
