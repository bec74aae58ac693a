// Package inproc is an in-process gRPC channel: a grpc.ClientConnInterface that dispatches calls
// straight to the services registered on it, through the same server interceptor chains a
// grpc.Server would run, without HTTP/2, sockets or serialization.
//
// What a handler sees is what it would see behind a grpc.Server: the caller's outgoing metadata as
// incoming metadata, the caller's deadline, a context cancelled when the caller's is, a peer
// (address "inproc"), grpc.Method, and grpc.SetHeader / SendHeader / SetTrailer (a
// grpc.ServerTransportStream is in the context). The server context does not carry the caller's
// other context values, as over a network; it carries the caller's span (and baggage) so traces
// continue, with a server span of its own when a tracer provider is configured.
//
// What the caller sees is what a grpc.ClientConn gives: status errors with their details (a
// handler's non-status error becomes UNKNOWN, context errors CANCELED / DEADLINE_EXCEEDED),
// grpc.Header, grpc.Trailer and grpc.Peer call options, and streams with Header, Trailer,
// CloseSend and io.EOF after a successful end. As on the wire, header metadata set but not sent
// before a failure arrives with the trailer (a "trailers-only" answer).
//
// Messages are handed over, not copied: the receiver gets a shallow copy of the sender's message
// struct, sharing every nested message, slice and string. Neither side may modify a message after
// handing it over (a request after Invoke / SendMsg, a response after the handler returned it or
// passed it to SendMsg), nor modify what it received in place. grpc-gateway's generated handlers
// and Switchyard's server build a fresh message for every call and every stream message, and
// only read what they receive, so they keep this contract.
//
// Call options other than grpc.Header, grpc.Trailer and grpc.Peer (compression, message size
// limits, wait-for-ready) are ignored: there is no transport for them to configure.
package inproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Addr is the peer address handlers see for in-process calls.
var Addr net.Addr = addr{}

type addr struct{}

func (addr) Network() string { return "inproc" }
func (addr) String() string  { return "inproc" }

// DefaultStreamBuffer is how many stream messages may be in flight in each direction before the
// sender blocks, when WithStreamBuffer is not given.
const DefaultStreamBuffer = 8

// Channel is the in-process connection. Register every service (RegisterService) before the
// first call; after that, Invoke and NewStream are safe for concurrent use.
type Channel struct {
	methods   map[string]*method // by full method name, "/pkg.Service/Method"
	unary     grpc.UnaryServerInterceptor
	stream    grpc.StreamServerInterceptor
	tracer    trace.Tracer // nil: no server spans
	meter     metric.Meter // nil: no metrics
	streamBuf int
	inUse     atomic.Bool // set by the first call; RegisterService then panics
}

var (
	_ grpc.ClientConnInterface = (*Channel)(nil)
	_ grpc.ServiceRegistrar    = (*Channel)(nil)
)

// Option configures a Channel.
type Option func(*Channel)

// WithUnaryInterceptors sets the unary server interceptors, outermost first, as
// grpc.ChainUnaryInterceptor does for a grpc.Server.
func WithUnaryInterceptors(ints ...grpc.UnaryServerInterceptor) Option {
	return func(c *Channel) { c.unary = chainUnary(ints) }
}

// WithStreamInterceptors sets the stream server interceptors, outermost first, as
// grpc.ChainStreamInterceptor does for a grpc.Server.
func WithStreamInterceptors(ints ...grpc.StreamServerInterceptor) Option {
	return func(c *Channel) { c.stream = chainStream(ints) }
}

// WithTracerProvider makes the channel start a server span for every call, a child of the
// caller's span, named and attributed as otelgrpc's server stats handler does (span name
// "pkg.Service/Method", rpc.system.name, rpc.method, rpc.response.status_code).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *Channel) { c.tracer = tp.Tracer(instrumentationName) }
}

// WithMeterProvider makes the channel record rpc.server.call.duration for every call, with the
// attributes otelgrpc's server stats handler uses.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *Channel) { c.meter = mp.Meter(instrumentationName) }
}

// WithStreamBuffer sets how many stream messages may be in flight in each direction before the
// sender blocks (at least 1).
func WithStreamBuffer(n int) Option {
	return func(c *Channel) { c.streamBuf = max(n, 1) }
}

// New returns an empty channel.
func New(opts ...Option) *Channel {
	c := &Channel{methods: map[string]*method{}, streamBuf: DefaultStreamBuffer}
	for _, o := range opts {
		o(c)
	}
	return c
}

// method is one registered RPC. It is immutable after registration.
type method struct {
	srv      any
	name     string // "/pkg.Service/Method"
	unary    *grpc.MethodDesc
	stream   *grpc.StreamDesc
	unaryInf *grpc.UnaryServerInfo
	strmInf  *grpc.StreamServerInfo
	tel      *methodTelemetry
}

// RegisterService registers a service implementation, like grpc.Server.RegisterService. It panics
// if impl does not implement desc's handler type, if a method is registered twice, or when called
// after the first call.
func (c *Channel) RegisterService(desc *grpc.ServiceDesc, impl any) {
	if c.inUse.Load() {
		panic("inproc: RegisterService after the first call")
	}
	if impl != nil {
		ht := reflect.TypeOf(desc.HandlerType).Elem()
		if st := reflect.TypeOf(impl); !st.Implements(ht) {
			panic(fmt.Sprintf("inproc: RegisterService: %v does not implement %v", st, ht))
		}
	}
	add := func(name string, m *method) {
		if _, dup := c.methods[name]; dup {
			panic("inproc: RegisterService: duplicate method " + name)
		}
		m.srv, m.name = impl, name
		m.tel = newMethodTelemetry(c.meter, name)
		c.methods[name] = m
	}
	for i := range desc.Methods {
		md := &desc.Methods[i]
		name := "/" + desc.ServiceName + "/" + md.MethodName
		add(name, &method{unary: md, unaryInf: &grpc.UnaryServerInfo{Server: impl, FullMethod: name}})
	}
	for i := range desc.Streams {
		sd := &desc.Streams[i]
		name := "/" + desc.ServiceName + "/" + sd.StreamName
		add(name, &method{stream: sd, strmInf: &grpc.StreamServerInfo{
			FullMethod: name, IsClientStream: sd.ClientStreams, IsServerStream: sd.ServerStreams,
		}})
	}
}

func (c *Channel) lookup(name string) (*method, error) {
	if !c.inUse.Load() {
		c.inUse.Store(true)
	}
	if m, ok := c.methods[name]; ok {
		return m, nil
	}
	return nil, status.Errorf(codes.Unimplemented, "unknown method %s", name)
}

// Invoke performs a unary call on the caller's goroutine. args is handed to the handler and the
// handler's response is copied (shallowly) into reply, which must be a pointer to the same message
// type.
func (c *Channel) Invoke(ctx context.Context, name string, args, reply any, opts ...grpc.CallOption) error {
	m, err := c.lookup(name)
	if err != nil {
		return err
	}
	if m.unary == nil {
		return status.Errorf(codes.Unimplemented, "method %s is a stream", name)
	}
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	call := &serverCall{method: name}
	sctx, finish := c.serverContext(ctx, m, call)
	resp, herr := m.unary.Handler(m.srv, sctx, func(v any) error { return handOver(v, args) }, c.unary)
	st := toStatus(herr)
	if st.Code() == codes.OK {
		if err := handOver(reply, resp); err != nil {
			st = status.New(codes.Internal, err.Error())
		}
	}
	finish(st)
	header, trailer := call.result(st.Code() != codes.OK)
	applyCallOptions(opts, header, trailer)
	return st.Err()
}

// serverContext builds the handler's context for a call from the caller's ctx: incoming metadata,
// peer, transport stream, deadline and cancellation, span and baggage. finish must be called once
// with the final status; it ends the span, records the duration and releases the context.
func (c *Channel) serverContext(ctx context.Context, m *method, call *serverCall) (context.Context, func(*status.Status)) {
	base := context.Background()
	var cancel context.CancelFunc
	if dl, ok := ctx.Deadline(); ok {
		base, cancel = context.WithDeadline(base, dl)
	} else {
		base, cancel = context.WithCancel(base)
	}
	stop := context.AfterFunc(ctx, func() {
		// A deadline is left to the handler context's own timer (the same instant), so the
		// handler sees DeadlineExceeded, not Canceled.
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
		}
	})
	md, _ := metadata.FromOutgoingContext(ctx)
	if md == nil {
		md = metadata.MD{}
	}
	sctx := metadata.NewIncomingContext(base, md)
	sctx = peer.NewContext(sctx, &peer.Peer{Addr: Addr, LocalAddr: Addr})
	sctx = grpc.NewContextWithServerTransportStream(sctx, call)
	sctx, end := c.startTelemetry(ctx, sctx, m)
	return sctx, func(st *status.Status) {
		end(st)
		stop()
		cancel()
	}
}

// NewStream starts a streaming call; the handler runs on its own goroutine until it returns.
func (c *Channel) NewStream(ctx context.Context, desc *grpc.StreamDesc, name string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	m, err := c.lookup(name)
	if err != nil {
		return nil, err
	}
	if m.stream == nil {
		return nil, status.Errorf(codes.Unimplemented, "method %s is not a stream", name)
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	s := newStream(ctx, c.streamBuf, name, opts)
	sctx, finish := c.serverContext(ctx, m, &s.serverCall)
	s.sctx = sctx
	ss := &serverStream{s: s}
	go func() {
		var herr error
		if c.stream != nil {
			herr = c.stream(m.srv, ss, m.strmInf, m.stream.Handler)
		} else {
			herr = m.stream.Handler(m.srv, ss)
		}
		st := toStatus(herr)
		s.end(st)
		finish(st)
	}()
	return &clientStream{s: s}, nil
}

// toStatus converts a handler's error as grpc.Server does: status errors as they are, context
// errors to CANCELED or DEADLINE_EXCEEDED, anything else to UNKNOWN with the error's text.
func toStatus(err error) *status.Status {
	if err == nil {
		return status.New(codes.OK, "")
	}
	if st, ok := status.FromError(err); ok {
		return st
	}
	return status.FromContextError(err)
}

// handOver copies *src into *dst: dst and src are pointers to the same struct type (generated
// messages). The copy is shallow; see the package doc for the contract this needs.
func handOver(dst, src any) error {
	dv, sv := reflect.ValueOf(dst), reflect.ValueOf(src)
	if dv.Kind() != reflect.Pointer || dv.IsNil() || sv.Kind() != reflect.Pointer || sv.IsNil() || dv.Type() != sv.Type() {
		return fmt.Errorf("inproc: cannot hand a %T over as a %T", src, dst)
	}
	dv.Elem().Set(sv.Elem())
	return nil
}

// applyCallOptions fills the grpc.Header, grpc.Trailer and grpc.Peer call options.
func applyCallOptions(opts []grpc.CallOption, header, trailer metadata.MD) {
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			if header != nil {
				*o.HeaderAddr = header
			}
		case grpc.TrailerCallOption:
			*o.TrailerAddr = trailer
		case grpc.PeerCallOption:
			*o.PeerAddr = peer.Peer{Addr: Addr, LocalAddr: Addr}
		}
	}
}

// serverCall is the grpc.ServerTransportStream of one call: it collects header and trailer
// metadata. For streams, headerSent signals the client when the header goes out.
type serverCall struct {
	method string

	mu         sync.Mutex
	header     metadata.MD
	trailer    metadata.MD
	headerSent bool
	ended      bool
	onSend     func() // called (under mu) when the header is sent; streams only
}

var _ grpc.ServerTransportStream = (*serverCall)(nil)

func (c *serverCall) Method() string { return c.method }

func (c *serverCall) SetHeader(md metadata.MD) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headerSent || c.ended {
		return status.Error(codes.Internal, "inproc: SetHeader after the header was sent")
	}
	c.header = join(c.header, md)
	return nil
}

func (c *serverCall) SendHeader(md metadata.MD) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headerSent || c.ended {
		return status.Error(codes.Internal, "inproc: SendHeader called twice or after the end")
	}
	c.header = join(c.header, md)
	c.sendHeaderLocked()
	return nil
}

func (c *serverCall) sendHeaderLocked() {
	c.headerSent = true
	if c.header == nil {
		c.header = metadata.MD{}
	}
	if c.onSend != nil {
		c.onSend()
	}
}

func (c *serverCall) SetTrailer(md metadata.MD) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return status.Error(codes.Internal, "inproc: SetTrailer after the end")
	}
	c.trailer = join(c.trailer, md)
	return nil
}

// result ends the call and returns what the client receives as header and trailer. With the
// header unsent and trailersOnly (a unary call's failure, a stream that sent nothing), there is
// no header and the header metadata is merged into the trailer, as in gRPC's trailers-only answer.
func (c *serverCall) result(trailersOnly bool) (header, trailer metadata.MD) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resultLocked(trailersOnly)
}

func (c *serverCall) resultLocked(trailersOnly bool) (header, trailer metadata.MD) {
	c.ended = true
	if trailersOnly && !c.headerSent {
		return nil, join(join(metadata.MD{}, c.header), c.trailer)
	}
	c.headerSent = true
	if c.header == nil {
		c.header = metadata.MD{}
	}
	if c.trailer == nil {
		c.trailer = metadata.MD{}
	}
	return c.header, c.trailer
}

// join appends src's values to dst (allocated when nil) and returns dst.
func join(dst, src metadata.MD) metadata.MD {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(metadata.MD, len(src))
	}
	for k, vs := range src {
		k = strings.ToLower(k) // as on the wire
		dst[k] = append(dst[k], vs...)
	}
	return dst
}
