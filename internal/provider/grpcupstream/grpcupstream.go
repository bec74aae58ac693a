// Package grpcupstream adapts any server that implements Switchyard's own gRPC API
// (switchyard.v1.ChatService and EmbeddingService, gen/go/switchyard/v1) to llm.Provider: an
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
//	gzip               true | false (default false): compress requests, accept compressed answers
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
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/retry"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

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
// llm.Provider, llm.Embedder, llm.ModelLister and io.Closer, and is safe for concurrent use.
type Provider struct {
	cfg    provider.Config
	conn   *grpc.ClientConn
	chat   pb.ChatServiceClient
	embed  pb.EmbeddingServiceClient
	md     []string // metadata pairs sent on every call
	policy retryPolicy
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
	_ io.Closer       = (*Provider)(nil)
)

// New returns a provider for the upstream cfg describes (see the package documentation for the
// fields and Options used). It does not connect: the connection is made by the first call and
// kept. It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	return NewProvider(cfg)
}

// NewProvider is New returning the concrete type, for callers that need Close.
func NewProvider(cfg provider.Config, extra ...grpc.DialOption) (*Provider, error) {
	o, err := parseOptions(cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("grpcupstream.New: %w", err)
	}
	target := strings.TrimSpace(cfg.BaseURL)
	switch {
	case target == "":
		return nil, errors.New("grpcupstream.New: base_url (the gRPC target, host:port) is required")
	case strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "https://"):
		return nil, fmt.Errorf("grpcupstream.New: base_url %q is an HTTP URL; give a gRPC target such as host:port or dns:///host:port (options.tls selects TLS)", target)
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	call := []grpc.CallOption{grpc.MaxCallRecvMsgSize(o.maxMsg), grpc.MaxCallSendMsgSize(o.maxMsg)}
	if o.gzip {
		call = append(call, grpc.UseCompressor(gzip.Name))
	}
	policy := retryPolicy{base: o.backoff, maxRetries: o.maxRetries}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithDefaultCallOptions(call...),
		// The retry interceptors are configured per call (see retryPolicy.callOptions); here
		// they only get their place in the chain.
		grpc.WithChainUnaryInterceptor(retry.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(retry.StreamClientInterceptor()),
	}
	if o.keepalive > 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: o.keepalive, Timeout: 20 * time.Second}))
	}
	if o.authority != "" {
		opts = append(opts, grpc.WithAuthority(o.authority))
	}
	conn, err := grpc.NewClient(target, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("grpcupstream.New: target %q: %w", target, err)
	}
	p := &Provider{cfg: cfg, conn: conn, chat: pb.NewChatServiceClient(conn), embed: pb.NewEmbeddingServiceClient(conn), policy: policy}
	if cfg.APIKey != "" {
		p.md = append(p.md, "authorization", "Bearer "+cfg.APIKey)
	}
	keys := make([]string, 0, len(cfg.Headers))
	for k := range cfg.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.md = append(p.md, strings.ToLower(k), cfg.Headers[k])
	}
	return p, nil
}

// Close closes the connection; calls in flight fail. Safe to call more than once.
func (p *Provider) Close() error {
	if err := p.conn.Close(); err != nil && !strings.Contains(err.Error(), "already closed") {
		return fmt.Errorf("grpcupstream %s: close: %w", p.cfg.Name, err)
	}
	return nil
}

// Models returns the configured model names (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// Chat calls ChatService.CreateChatCompletion.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	in, err := pbconv.ChatRequestToPB(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	resp, err := p.chat.CreateChatCompletion(ctx, in, p.policy.callOptions(ctx, nil)...)
	if err != nil {
		return nil, classify(ctx, p.cfg.Name, err, false)
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
	ctx, cancel := p.callContext(ctx)
	s := &stream{ctx: ctx, cancel: cancel, name: p.cfg.Name}
	s.up, err = p.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: in}, p.policy.callOptions(ctx, &s.received)...)
	if err != nil {
		cancel()
		return nil, classify(ctx, p.cfg.Name, err, false)
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
	ctx, cancel := p.callContext(ctx)
	defer cancel()
	resp, err := p.embed.CreateEmbedding(ctx, pbconv.EmbeddingRequestToPB(req), p.policy.callOptions(ctx, nil)...)
	if err != nil {
		return nil, classify(ctx, p.cfg.Name, err, false)
	}
	out, err := pbconv.EmbeddingResponseFromPB(resp, n)
	if err != nil {
		return nil, &llm.Error{Kind: llm.KindUpstream, Provider: p.cfg.Name, Message: "the upstream provider sent an invalid answer",
			Err: fmt.Errorf("grpcupstream %s: embeddings: %w", p.cfg.Name, err)}
	}
	return out, nil
}

// callContext applies cfg.Timeout when ctx has no deadline of its own, and adds the metadata.
func (p *Provider) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if len(p.md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, p.md...)
	}
	if p.cfg.Timeout > 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithTimeout(ctx, p.cfg.Timeout)
		}
	}
	return context.WithCancel(ctx)
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
		e := classify(s.ctx, s.name, err, s.received) // before finish cancels ctx
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

type options struct {
	tls        *tls.Config
	authority  string
	gzip       bool
	maxMsg     int
	keepalive  time.Duration
	maxRetries uint
	backoff    time.Duration
}

// parseOptions validates cfg.Options; unknown keys are errors (a typo must not pass silently).
func parseOptions(m map[string]string) (options, error) {
	o := options{maxMsg: DefaultMaxMessageBytes, keepalive: DefaultKeepaliveTime, maxRetries: DefaultMaxRetries, backoff: DefaultRetryBackoff}
	var useTLS bool
	var caFile, serverName string
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.TrimSpace(m[k])
		var err error
		switch k {
		case "tls":
			useTLS, err = strconv.ParseBool(v)
		case "tls_ca_file":
			caFile = v
		case "tls_server_name":
			serverName = v
		case "authority":
			o.authority = v
		case "gzip":
			o.gzip, err = strconv.ParseBool(v)
		case "max_message_bytes":
			o.maxMsg, err = strconv.Atoi(v)
			if err == nil && o.maxMsg < 1<<20 {
				err = errors.New("must be at least 1048576")
			}
		case "keepalive_time":
			o.keepalive, err = parseDuration(v)
		case "max_retries":
			var n uint64
			n, err = strconv.ParseUint(v, 10, 8)
			o.maxRetries = uint(n)
		case "retry_backoff":
			o.backoff, err = parseDuration(v)
			if err == nil && o.backoff <= 0 {
				err = errors.New("must be positive")
			}
		default:
			return o, fmt.Errorf("unknown option %q (known: tls, tls_ca_file, tls_server_name, authority, gzip, max_message_bytes, keepalive_time, max_retries, retry_backoff)", k)
		}
		if err != nil {
			return o, fmt.Errorf("option %s=%q: %w", k, v, err)
		}
	}
	if useTLS || caFile != "" || serverName != "" {
		o.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return o, fmt.Errorf("option tls_ca_file: %w", err)
			}
			o.tls.RootCAs = x509.NewCertPool()
			if !o.tls.RootCAs.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("option tls_ca_file: no certificate in %s", caFile)
			}
		}
	}
	return o, nil
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = errors.New("must not be negative")
	}
	return d, err
}
