package interceptor

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	rpccode "google.golang.org/genproto/googleapis/rpc/code"
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
	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
)

// Auditor takes one audit entry per call without blocking (audit.Writer).
type Auditor interface {
	Write(e *audit.Entry) bool
}

// auditCall collects what the messages of a call reveal while it runs: the request (streams: the
// first message received) and, when bodies are kept, the responses. The route, the attempts and
// the usage come from the call's record (callinfo) when the call ends.
type auditCall struct {
	bodyMax int // 0: no bodies

	mu        sync.Mutex
	received  bool // the request was seen
	model     string
	user      string
	req       proto.Message   // a copy, only when bodies are kept
	resps     []proto.Message // copies, only when bodies are kept
	bodyBytes int
	truncated bool
}

// addResponse keeps a copy of m for the body, while the body fits.
func (c *auditCall) addResponse(m any) {
	if c.bodyMax <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.truncated {
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

// record builds the call's audit record once it has finished with err. p is the principal auth
// admitted, nil when the call was refused before (or exempt from) authentication: the record
// then goes to the audit.UnauthenticatedTenant chain, without a body.
func (c *auditCall) record(ctx context.Context, p *auth.Principal, method string, start time.Time, err error) *audit.Record {
	call := callinfo.FromContext(ctx)
	info := call.Info()
	r := &audit.Record{
		Time:      start,
		Target:    info.Target,
		Attempts:  info.Attempts,
		Transport: audit.TransportGRPC,
		RPC:       method,
		Latency:   time.Since(start),
	}
	if call != nil {
		r.RequestID = call.RequestID
	}
	if info.HasUsage {
		r.InputTokens, r.OutputTokens = int64(info.Usage.PromptTokens), int64(info.Usage.CompletionTokens)
		r.UsageEstimated = info.Usage.Estimated
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
		if len(md.Get(mdkey.ForwardedHost)) > 0 {
			r.Transport = audit.TransportREST
		}
		r.ForwardedFor = strings.Join(md.Get(mdkey.ForwardedFor), ", ")
	}
	c.mu.Lock()
	r.Model, r.User = c.model, c.user
	c.mu.Unlock()
	r.Class, r.Code = AuditOutcome(err)
	return r
}

// AuditOutcome is the Record.Class and Record.Code of a call that ended with err (nil: "ok",
// "OK"); the REST edge uses it for the requests it refuses before the chain.
func AuditOutcome(err error) (class, code string) {
	return auditClass(err), rpccode.Code_name[int32(status.Code(err))]
}

// auditClass is the Record.Class of a call that ended with err: ok, canceled, or the class of
// err's kind in llm's error table.
func auditClass(err error) string {
	if err == nil {
		return audit.ClassOK
	}
	k := errmap.KindOf(err)
	if k == llm.KindCanceled {
		return audit.ClassCanceled
	}
	return k.Info().Class
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

// auditedServerStream records a stream's first request and responses, and gives the inner
// interceptors a context with the principal slot.
type auditedServerStream struct {
	grpc.ServerStream
	ctx  context.Context
	call *auditCall
}

func (s *auditedServerStream) Context() context.Context { return s.ctx }

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
