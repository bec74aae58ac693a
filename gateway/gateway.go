// Package gateway is Switchyard's REST edge: the OpenAI-compatible API (chat completions with and
// without streaming, embeddings, rerank, models) served by grpc-gateway over a gRPC client connection to
// the process's own gRPC server, so REST calls pass the same interceptor chain as gRPC calls.
//
// Besides the generated handlers it owns the OpenAI wire details: a codec that normalizes
// OpenAI's polymorphic request fields and writes OpenAI's exact response JSON and server-sent
// events, a router that picks the streaming RPC when the body says "stream": true, OpenAI-shaped
// errors for every failure, gzip for JSON answers, a body size limit and tracing.
package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/klauspost/compress/gzhttp"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/mdkey"
	"github.com/switchyard/switchyard/internal/telemetry"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 32 << 20

// Options configures the gateway. The zero value is usable.
type Options struct {
	MaxBodyBytes int64        // request body limit; 0 means DefaultMaxBodyBytes. Larger bodies answer 413.
	Logger       *slog.Logger // nil means slog.Default()

	// Authenticate, when set, checks a request's credentials from its headers before any of its
	// body is read (requests without a body go straight to the chain). A non-nil error (an
	// *llm.Error or a gRPC status) is answered at once with its status and OpenAI error body and
	// the connection is closed, the body unread. It must apply the interceptor chain's rule
	// (auth.Resolve): it only refuses early what the chain would refuse; the chain still decides.
	Authenticate func(r *http.Request) error
	// MaxInflightBodyBytes caps the bytes of request bodies being read or held by calls at once,
	// process-wide; a request finding no room within 100 ms is answered 503 (code server_busy,
	// Retry-After). 0 means no cap.
	MaxInflightBodyBytes int64
	// BodyReadTimeout bounds reading one request's body; a slower client is answered 408 and
	// disconnected. 0 means no bound.
	BodyReadTimeout time.Duration
	// CompressStreams compresses server-sent event streams too when the client accepts gzip or
	// zstd, flushing the compressor after every event so each still arrives on its own. Off, only
	// JSON answers of 1 KiB or more are compressed: a compressor per open stream costs memory
	// (docs/edge.md, "Compression").
	CompressStreams bool
}

type gateway struct {
	log *slog.Logger
}

// New returns the REST handler serving the OpenAI-compatible API over conn, a gRPC client
// connection to the process's own gRPC server (so REST shares the server's interceptor chain).
// ctx bounds registration.
//
// conn's message size limits must be at least MaxBodyBytes (gRPC's default of 4 MiB turns large
// requests into errors): use grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(n),
// grpc.MaxCallRecvMsgSize(n)). For traces to continue from REST into gRPC, conn needs an otelgrpc
// client stats handler. conn may also be an in-process channel (internal/inproc), which has no
// size limits and carries the trace itself.
//
// Served routes, each also without the /v1 prefix: POST /v1/chat/completions (JSON, or server-sent
// events when the body has "stream": true), POST /v1/embeddings, POST /v1/rerank, GET /v1/models and
// GET /v1/models/{id} (ids may contain '/'); AdminService under /admin/v1/ (docs/routing.md);
// SessionService under /v1/sessions (docs/sessions.md).
//
// Request headers forwarded as gRPC metadata: authorization (an empty header is dropped),
// x-request-id, x-switchyard-*, and the standard HTTP headers as grpcgateway-*. Response
// metadata forwarded as headers: x-request-id, x-switchyard-*, x-ratelimit-*, retry-after.
func New(ctx context.Context, conn grpc.ClientConnInterface, opts Options) (http.Handler, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	g := &gateway{log: opts.Logger}
	if g.log == nil {
		g.log = slog.Default()
	}
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newCodec()), // any Content-Type is JSON
		runtime.WithErrorHandler(g.errorHandler),
		runtime.WithRoutingErrorHandler(g.routingErrorHandler),
		runtime.WithIncomingHeaderMatcher(incomingHeader),
		runtime.WithOutgoingHeaderMatcher(outgoingHeader),
		runtime.WithOutgoingTrailerMatcher(outgoingHeader),
		runtime.WithForwardResponseOption(sseHeaders),
		runtime.WithDisablePathLengthFallback(),  // a form-encoded POST must not turn into a GET
		runtime.WithStrictDeepWildcardMatching(), // GET /v1/models is the list, not the model ""
		runtime.WithWriteContentLength(),
	)
	if err := pb.RegisterChatServiceHandlerClient(ctx, mux, chatClient{pb.NewChatServiceClient(conn)}); err != nil {
		return nil, fmt.Errorf("gateway.New: register chat service: %w", err)
	}
	if err := pb.RegisterEmbeddingServiceHandlerClient(ctx, mux, pb.NewEmbeddingServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("gateway.New: register embedding service: %w", err)
	}
	if err := pb.RegisterRerankServiceHandlerClient(ctx, mux, pb.NewRerankServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("gateway.New: register rerank service: %w", err)
	}
	if err := pb.RegisterModelServiceHandlerClient(ctx, mux, pb.NewModelServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("gateway.New: register model service: %w", err)
	}
	if err := pb.RegisterSessionServiceHandlerClient(ctx, mux, pb.NewSessionServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("gateway.New: register session service: %w", err)
	}
	if err := pb.RegisterAdminServiceHandlerClient(ctx, mux, pb.NewAdminServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("gateway.New: register admin service: %w", err)
	}
	if err := pb.RegisterAuditServiceHandlerClient(ctx, mux, pb.NewAuditServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("gateway.New: register audit service: %w", err)
	}
	if err := pb.RegisterKeyServiceHandlerClient(ctx, mux, pb.NewKeyServiceClient(conn)); err != nil {
		return nil, fmt.Errorf("gateway.New: register key service: %w", err)
	}
	types := gzhttp.ExceptContentTypes([]string{"text/event-stream"}) // SSE chunks are tiny and latency-bound
	if opts.CompressStreams {
		// grpc-gateway flushes after each event, which flushes the compressor: the first Flush
		// starts compression (a stream has no Content-Length), each later one emits its event.
		types = gzhttp.ContentTypeFilter(gzhttp.DefaultContentTypeFilter)
	}
	gz, err := gzhttp.NewWrapper(types, gzhttp.MinSize(1024))
	if err != nil {
		return nil, fmt.Errorf("gateway.New: gzip: %w", err)
	}
	var h http.Handler = &router{next: mux, maxBody: opts.MaxBodyBytes, authenticate: opts.Authenticate,
		budget: newBodyBudget(opts.MaxInflightBodyBytes), bodyTimeout: opts.BodyReadTimeout}
	h = gz(h)
	h = telemetry.NewHTTPHandler(h, telemetry.WithHTTPSpanName(func(r *http.Request) string { return spanName("", r) }))
	return h, nil
}

// sseHeaders sets the event-stream headers. The gateway calls it with a nil message once, when a
// stream starts.
func sseHeaders(_ context.Context, w http.ResponseWriter, m proto.Message) error {
	if m == nil {
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no") // nginx must not buffer the stream
	}
	return nil
}

// incomingHeader maps request headers to gRPC metadata: x-request-id and x-switchyard-* as
// themselves, the rest as grpc-gateway does by default. (Authorization is always forwarded.)
func incomingHeader(key string) (string, bool) {
	lower := strings.ToLower(key)
	if lower == mdkey.RequestID || strings.HasPrefix(lower, mdkey.SwitchyardPrefix) {
		return lower, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// outgoingHeader is the allowlist of response metadata sent to clients as headers; anything else
// (grpc-gateway would send it as Grpc-Metadata-*) stays internal.
func outgoingHeader(key string) (string, bool) {
	lower := strings.ToLower(key)
	switch {
	case lower == mdkey.RequestID, lower == mdkey.RetryAfter,
		strings.HasPrefix(lower, mdkey.SwitchyardPrefix), strings.HasPrefix(lower, mdkey.RateLimitPrefix):
		return lower, true
	}
	return "", false
}
