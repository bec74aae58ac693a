package interceptor

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/auth"
)

// Auditor takes one audit entry per call without blocking (audit.Writer).
type Auditor interface {
	Write(e *audit.Entry) bool
}

// Response headers the audit interceptor reads from what the services send (server.RouteHeader
// and server.AttemptsHeader; this package cannot import server).
const (
	routeHeader    = "x-switchyard-route"
	attemptsHeader = "x-switchyard-attempts"
)

// auditCall collects what a call reveals while it runs: the headers the service sets, the
// request (streams: the first message received) and the responses.
type auditCall struct {
	bodyMax int // 0: no bodies

	mu        sync.Mutex
	header    metadata.MD
	received  bool // the request was seen
	model     string
	user      string
	req       proto.Message   // a copy, only when bodies are kept
	resps     []proto.Message // copies, only when bodies are kept
	bodyBytes int
	truncated bool
	in, out   int64 // usage
}

func (c *auditCall) addHeader(md metadata.MD) {
	c.mu.Lock()
	if c.header == nil {
		c.header = metadata.MD{}
	}
	for k, v := range md {
		if k == routeHeader || k == attemptsHeader {
			c.header[k] = v
		}
	}
	c.mu.Unlock()
}

func (c *auditCall) addResponse(m any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r := m.(type) {
	case *pb.CreateChatCompletionResponse:
		c.in, c.out = int64(r.GetUsage().GetPromptTokens()), int64(r.GetUsage().GetCompletionTokens())
	case *pb.StreamChatCompletionResponse:
		if u := r.GetUsage(); u != nil {
			c.in, c.out = int64(u.GetPromptTokens()), int64(u.GetCompletionTokens())
		}
	case *pb.CreateEmbeddingResponse:
		c.in = int64(r.GetUsage().GetPromptTokens())
	}
	if c.bodyMax <= 0 || c.truncated {
		return
	}
	pm, ok := m.(proto.Message)
	if !ok {
		return
	}
	if n := proto.Size(pm); c.bodyBytes+n <= c.bodyMax {
		c.bodyBytes += n
		c.resps = append(c.resps, proto.Clone(pm))
	} else {
		c.truncated = true
	}
}

// setRequest notes the call's request (a stream's first message). Call it while the message is
// the server's alone: the in-process channel shares messages with the client, so bodies are
// copied here rather than read later on the writer's goroutine.
func (c *auditCall) setRequest(m any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.received {
		return
	}
	c.received = true
	req := m
	if sr, ok := req.(*pb.StreamChatCompletionRequest); ok {
		req = sr.GetRequest()
	}
	if g, ok := req.(interface{ GetModel() string }); ok {
		c.model = g.GetModel()
	}
	if g, ok := req.(interface{ GetUser() string }); ok {
		c.user = g.GetUser()
	}
	if pm, ok := m.(proto.Message); ok && c.bodyMax > 0 {
		if proto.Size(pm) > c.bodyMax {
			c.truncated = true
		} else {
			c.req = proto.Clone(pm)
		}
	}
}

// body returns the entry's body function, or nil when bodies are off or the caller was not
// authenticated (p nil: nobody to attribute, nor erase, the body by). Messages are encoded on
// the audit writer's goroutine: the services do not modify requests or responses once handled.
func (c *auditCall) body(p *auth.Principal) func() *audit.Body {
	if c.bodyMax <= 0 || p == nil {
		return nil
	}
	req, resps, truncated := c.req, c.resps, c.truncated
	return func() *audit.Body {
		b := &audit.Body{Truncated: truncated}
		if req != nil {
			b.Request, _ = protojson.Marshal(req)
		}
		for _, r := range resps {
			j, err := protojson.Marshal(r)
			if err == nil {
				b.Response = append(b.Response, j)
			}
		}
		return b
	}
}

// principalSlot carries the principal the auth interceptor admits back out to the audit
// interceptor, which runs outside auth and so never sees the context auth returns.
type principalSlot struct {
	p      atomic.Pointer[auth.Principal]
	accept func(tenant string) error // audit.Writer.Accepting; nil: every tenant
}

type principalSlotKey struct{}

// withPrincipalSlot returns ctx with a new, empty slot for notePrincipal to fill.
func withPrincipalSlot(ctx context.Context, a Auditor) (context.Context, *principalSlot) {
	s := &principalSlot{}
	if ac, ok := a.(interface{ Accepting(tenant string) error }); ok {
		s.accept = ac.Accepting
	}
	return context.WithValue(ctx, principalSlotKey{}, s), s
}

// notePrincipal stores p in ctx's principal slot, if the call is audited, and returns the audit
// log's refusal of p's tenant (its audit is required and cannot be recorded: audit.ErrUnavailable).
func notePrincipal(ctx context.Context, p *auth.Principal) error {
	if s, ok := ctx.Value(principalSlotKey{}).(*principalSlot); ok {
		s.p.Store(p)
		if s.accept != nil {
			return s.accept(p.Tenant)
		}
	}
	return nil
}

// record builds the call's record once it has finished with err. p is the principal auth
// admitted, nil when the call was refused before (or exempt from) authentication: the record
// then goes to the audit.UnauthenticatedTenant chain, without a body.
func (c *auditCall) record(ctx context.Context, p *auth.Principal, method string, start time.Time, err error) *audit.Record {
	r := &audit.Record{
		Time:      start,
		RequestID: RequestIDFromContext(ctx),
		RPC:       method,
		Latency:   time.Since(start),
		Transport: audit.TransportGRPC,
	}
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		r.TraceID = sc.TraceID().String()
	}
	if p != nil {
		r.Tenant, r.Subject, r.KeyName = p.Tenant, p.Subject, p.KeyName
	} else {
		r.Tenant = audit.UnauthenticatedTenant
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		r.ClientAddr = p.Addr.String()
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		// grpc-gateway sets x-forwarded-host on every REST call it forwards.
		if len(md.Get("x-forwarded-host")) > 0 {
			r.Transport = audit.TransportREST
		}
		r.ForwardedFor = strings.Join(md.Get("x-forwarded-for"), ", ")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Model, r.User = c.model, c.user
	if v := c.header.Get(routeHeader); len(v) > 0 {
		r.Target = v[0]
	}
	if v := c.header.Get(attemptsHeader); len(v) > 0 {
		r.Attempts, _ = strconv.Atoi(v[0])
	}
	r.InputTokens, r.OutputTokens = c.in, c.out
	code := status.Code(err)
	r.Class, r.Code = audit.ClassOf(code), "OK"
	if code != codes.OK {
		r.Code = strings.ToUpper(camelToSnake(code.String()))
	}
	return r
}

// camelToSnake turns a codes.Code name ("ResourceExhausted") into "Resource_Exhausted".
func camelToSnake(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && 'A' <= c && c <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// auditedStream is the grpc.ServerTransportStream of a unary call, recording the headers the
// service sets.
type auditedStream struct {
	grpc.ServerTransportStream
	call *auditCall
}

func (s *auditedStream) SetHeader(md metadata.MD) error {
	s.call.addHeader(md)
	return s.ServerTransportStream.SetHeader(md)
}

func (s *auditedStream) SendHeader(md metadata.MD) error {
	s.call.addHeader(md)
	return s.ServerTransportStream.SendHeader(md)
}

// unaryAudit writes one audit entry per call, after the call (nothing when a is nil), whether the
// call was answered or refused by auth, authz or limits (all run inside it). A call that panics
// is recorded as INTERNAL, then the panic goes on to the recovery interceptor. Health checks and
// reflection are not audited.
func unaryAudit(a Auditor, bodyMax int) grpc.UnaryServerInterceptor {
	if a == nil {
		return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(ctx, req)
		}
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if !audited(info.FullMethod) {
			return handler(ctx, req)
		}
		start := time.Now()
		call := &auditCall{bodyMax: bodyMax}
		call.setRequest(req)
		ctx, slot := withPrincipalSlot(ctx, a)
		if sts := grpc.ServerTransportStreamFromContext(ctx); sts != nil {
			ctx = grpc.NewContextWithServerTransportStream(ctx, &auditedStream{ServerTransportStream: sts, call: call})
		}
		defer func() {
			rec := recover()
			if rec != nil {
				err = status.Error(codes.Internal, "internal error")
			}
			p := slot.p.Load()
			a.Write(&audit.Entry{Record: call.record(ctx, p, info.FullMethod, start, err), Body: call.body(p)})
			if rec != nil {
				panic(rec)
			}
		}()
		resp, err = handler(ctx, req)
		if err == nil {
			call.addResponse(resp)
		}
		return resp, err
	}
}

// auditedServerStream records a stream's headers, first request and responses, and gives the
// inner interceptors a context with the principal slot.
type auditedServerStream struct {
	grpc.ServerStream
	ctx  context.Context
	call *auditCall
}

func (s *auditedServerStream) Context() context.Context { return s.ctx }

func (s *auditedServerStream) SetHeader(md metadata.MD) error {
	s.call.addHeader(md)
	return s.ServerStream.SetHeader(md)
}

func (s *auditedServerStream) SendHeader(md metadata.MD) error {
	s.call.addHeader(md)
	return s.ServerStream.SendHeader(md)
}

// SendMsg notes m before sending it: once sent, an in-process client shares it.
func (s *auditedServerStream) SendMsg(m any) error {
	s.call.addResponse(m)
	return s.ServerStream.SendMsg(m)
}

func (s *auditedServerStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.call.setRequest(m)
	}
	return err
}

// streamAudit is unaryAudit for streams.
func streamAudit(a Auditor, bodyMax int) grpc.StreamServerInterceptor {
	if a == nil {
		return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return handler(srv, ss)
		}
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		if !audited(info.FullMethod) {
			return handler(srv, ss)
		}
		start := time.Now()
		call := &auditCall{bodyMax: bodyMax}
		ctx, slot := withPrincipalSlot(ss.Context(), a)
		defer func() {
			rec := recover()
			if rec != nil {
				err = status.Error(codes.Internal, "internal error")
			}
			p := slot.p.Load()
			a.Write(&audit.Entry{Record: call.record(ctx, p, info.FullMethod, start, err), Body: call.body(p)})
			if rec != nil {
				panic(rec)
			}
		}()
		return handler(srv, &auditedServerStream{ServerStream: ss, ctx: ctx, call: call})
	}
}

// audited reports whether calls of the method are audited: everything but health checks and
// server reflection.
func audited(method string) bool {
	return !strings.HasPrefix(method, "/grpc.health.v1.") && !strings.HasPrefix(method, "/grpc.reflection.")
}
