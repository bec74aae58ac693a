// Package grpcupstream adapts any server that implements Switchyard's own gRPC API
// (switchyard.v1.ChatService, EmbeddingService and RerankService, gen/go/switchyard/v1) to
// llm.Provider, llm.Embedder and llm.Reranker: an
// in-house model server that implements our proto, or another Switchyard (one gateway can chain
// to another). Requests and answers are converted with internal/pbconv, so nothing is lost on
// the way: tool calls, reasoning, usage and the exact error kind, code and param of an upstream
// Switchyard (its google.rpc.ErrorInfo) come back as they were.
//
// Configuration (provider.Config):
//
//   - BaseURL is the gRPC target: "host:port", "dns:///host:port", "unix:///path", ... (any
//     target grpc.NewClient accepts; http(s) URLs are refused).
//   - APIKey, when set, is sent as "authorization: Bearer <key>" metadata on every call;
//     Headers are sent as extra metadata (keys lower-cased).
//   - Timeout bounds a call that has no deadline of its own.
//   - Models lists the served models (Models()).
//
// Options (all optional):
//
//	tls                true | false (default false: plaintext, for servers inside the cluster or behind a mesh)
//	tls_ca_file        PEM file of the CAs to trust (default: the system roots); implies tls
//	tls_server_name    name to verify the server certificate against; implies tls
//	authority          :authority header (virtual hosting behind a proxy)
//	compression        none | gzip | zstd (default none): compress requests; the server answers
//	                   the same way (a Switchyard upstream speaks both; other servers must have
//	                   the compressor registered, gzip being the common one). gRPC compression
//	                   pays on large messages over slow links and costs CPU on both sides
//	                   (bench/README.md, "Throughput levers")
//	gzip               true | false (default false): the older spelling of compression: gzip
//	max_message_bytes  largest message sent or received (default 67108864, 64 MiB; at least 1 MiB)
//	keepalive_time     idle time before a keepalive ping on a connection with calls (default 1m;
//	                   the server must permit it: grpc-go servers refuse pings more often than 5m
//	                   unless their enforcement policy allows, Switchyard's allows 10s)
//	max_retries        retries after the first attempt (default 3; 0 disables)
//	retry_backoff      base of the exponential backoff (default 1s)
//
// Retries follow DESIGN.md's policy and are done by go-grpc-middleware's retry client
// interceptor, so the router must not retry this provider again: only UNAVAILABLE and
// RESOURCE_EXHAUSTED (rate limits, not billing quotas or message-size limits) are retried, at
// most max_retries times, waiting a random time between 0 and retry_backoff×2^(n−1) (full
// jitter), at least an upstream Switchyard's retry_after_seconds (capped at 30 s), and never
// past the call's deadline. A stream is retried only until its first message arrives.
package grpcupstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
	"github.com/switchyard/switchyard/internal/provider"
)

// Defaults of the options.
const (
	DefaultMaxMessageBytes = 64 << 20
	DefaultKeepaliveTime   = time.Minute
	DefaultMaxRetries      = 3
	DefaultRetryBackoff    = time.Second
)

// Provider calls one upstream over a single shared client connection. It implements
// llm.Provider, llm.Embedder, llm.Reranker, llm.ModelLister and io.Closer, and is safe for
// concurrent use.
type Provider struct {
	cfg    provider.Config
	conn   *Conn
	chat   pb.ChatServiceClient
	embed  pb.EmbeddingServiceClient
	rerank pb.RerankServiceClient
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.Reranker    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
	_ io.Closer       = (*Provider)(nil)
)

// New returns a provider for the upstream cfg describes (see the package documentation for the
// fields and Options used). It does not connect: the connection is made by the first call and
// kept. It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	return NewProvider(cfg)
}

// NewProvider is New returning the concrete type, for callers that need Close. extra dial
// options come last (tests, custom resolvers).
func NewProvider(cfg provider.Config, extra ...grpc.DialOption) (*Provider, error) {
	conn, err := Dial(cfg, nil, extra...)
	if err != nil {
		return nil, fmt.Errorf("grpcupstream.New: %w", err)
	}
	return &Provider{cfg: cfg, conn: conn, chat: pb.NewChatServiceClient(conn), embed: pb.NewEmbeddingServiceClient(conn),
		rerank: pb.NewRerankServiceClient(conn)}, nil
}

// RetriesCalls reports that p retries failed calls itself, with go-grpc-middleware's retry
// interceptor and DESIGN.md's policy (max_retries, retry_backoff), so the router makes one
// attempt per call and only falls back (router.SelfRetrying).
func (*Provider) RetriesCalls() bool { return true }

// Close closes the connection; calls in flight fail. Safe to call more than once.
func (p *Provider) Close() error { return p.conn.Close() }

// Models returns the configured model names (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// Chat calls ChatService.CreateChatCompletion.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	in, err := pbconv.ChatRequestToPB(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.conn.CallContext(ctx)
	defer cancel()
	resp, err := p.chat.CreateChatCompletion(ctx, in, p.conn.RetryOptions(ctx, nil)...)
	if err != nil {
		return nil, Classify(ctx, p.cfg.Name, err, false)
	}
	return pbconv.ChatResponseFromPB(resp), nil
}

// ChatStream calls ChatService.StreamChatCompletion. The upstream is always asked for the usage
// chunk (stream_options.include_usage); whether the client sees it is the caller's decision.
// The call is retried (see the package documentation) until its first message arrives; an
// error after that ends the stream.
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	in, err := pbconv.ChatRequestToPB(req)
	if err != nil {
		return nil, err
	}
	in.Stream = true
	in.StreamOptions = &pb.StreamOptions{IncludeUsage: true}
	ctx, cancel := p.conn.CallContext(ctx)
	s := &stream{ctx: ctx, cancel: cancel, name: p.cfg.Name}
	s.up, err = p.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: in}, p.conn.RetryOptions(ctx, &s.received)...)
	if err != nil {
		cancel()
		return nil, Classify(ctx, p.cfg.Name, err, false)
	}
	return s, nil
}

// Embed calls EmbeddingService.CreateEmbedding, asking for float vectors, and returns them in
// input order.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	n := len(req.Texts)
	if n == 0 {
		n = len(req.Tokens)
	}
	if n == 0 {
		return nil, llm.Errorf(llm.KindInvalidArgument, "embeddings need at least one input")
	}
	ctx, cancel := p.conn.CallContext(ctx)
	defer cancel()
	resp, err := p.embed.CreateEmbedding(ctx, pbconv.EmbeddingRequestToPB(req), p.conn.RetryOptions(ctx, nil)...)
	if err != nil {
		return nil, Classify(ctx, p.cfg.Name, err, false)
	}
	out, err := pbconv.EmbeddingResponseFromPB(resp, n)
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindUpstream, Provider: p.cfg.Name, Message: "the upstream provider sent an invalid answer",
			Err: fmt.Errorf("grpcupstream %s: embeddings: %w", p.cfg.Name, err)}
	}
	return out, nil
}

// Rerank calls RerankService.Rerank. Documents are not asked back (the gateway returns them from
// the request); the results' indexes are checked against the documents sent.
func (p *Provider) Rerank(ctx context.Context, req *llm.RerankRequest) (*llm.RerankResponse, error) {
	in := pbconv.RerankRequestToPB(req)
	in.ReturnDocuments = false
	ctx, cancel := p.conn.CallContext(ctx)
	defer cancel()
	resp, err := p.rerank.Rerank(ctx, in, p.conn.RetryOptions(ctx, nil)...)
	if err != nil {
		return nil, Classify(ctx, p.cfg.Name, err, false)
	}
	out, err := pbconv.RerankResponseFromPB(resp, len(req.Documents))
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindUpstream, Provider: p.cfg.Name, Message: "the upstream provider sent an invalid answer",
			Err: fmt.Errorf("grpcupstream %s: rerank: %w", p.cfg.Name, err)}
	}
	return out, nil
}

// stream adapts the upstream's server stream. Used by one goroutine at a time.
type stream struct {
	ctx      context.Context
	cancel   context.CancelFunc
	name     string
	up       grpc.ServerStreamingClient[pb.StreamChatCompletionResponse]
	received bool // a message arrived: no more retries (read by the retry policy)
	done     bool
}

func (s *stream) Recv() (*llm.Chunk, error) {
	if s.done {
		return nil, io.EOF
	}
	msg, err := s.up.Recv()
	if errors.Is(err, io.EOF) {
		s.finish()
		return nil, io.EOF
	}
	if err != nil {
		e := Classify(s.ctx, s.name, err, s.received) // before finish cancels ctx
		s.finish()
		return nil, e
	}
	s.received = true
	return pbconv.ChunkFromPB(msg), nil
}

// Close cancels the upstream call if it is still running.
func (s *stream) Close() error {
	s.finish()
	return nil
}

func (s *stream) finish() {
	s.done = true
	s.cancel()
}
