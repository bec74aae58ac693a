package interceptor

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/internal/auth"
)

// The access log: one line per finished call, never payloads. The line has the fields and the
// order go-grpc-middleware's logging interceptor (which this replaces, for its per-call cost)
// wrote with our options, so log queries keep working:
//
//	msg "finished call", request_id, grpc.service, grpc.method, grpc.method_type, peer.address,
//	grpc.start_time, grpc.request.deadline (when the call has one), tenant and subject (once auth
//	admitted the caller), grpc.code, grpc.error (when the call failed), grpc.time_ms
//
// plus trace_id and span_id from a trace-aware handler (telemetry.NewLogger). The level follows
// the code (serverCodeLevel): info for OK and the caller's own mistakes, warn for refusals and
// unavailability, error for server faults.
const (
	msgFinishedCall = "finished call"

	fieldRequestID   = "request_id"
	fieldService     = "grpc.service"
	fieldMethod      = "grpc.method"
	fieldMethodType  = "grpc.method_type"
	fieldPeerAddress = "peer.address"
	fieldStartTime   = "grpc.start_time"
	fieldDeadline    = "grpc.request.deadline"
	fieldTenant      = "tenant"
	fieldSubject     = "subject"
	fieldCode        = "grpc.code"
	fieldError       = "grpc.error"
	fieldTimeMs      = "grpc.time_ms"
)

// Method types, as grpc.method_type spells them.
const (
	methodUnary        = "unary"
	methodClientStream = "client_stream"
	methodServerStream = "server_stream"
	methodBidiStream   = "bidi_stream"
)

// logCtx is the call's context as the logging interceptor hands it inward: it carries the
// principal auth admitted (noteLogPrincipal) back out to the finished-call line, in the same
// allocation as the context itself. The chain runs on the call's goroutine, so plain fields do.
type logCtx struct {
	context.Context
	tenant, subject string
	admitted        bool
}

type logCtxKey struct{}

func (c *logCtx) Value(key any) any {
	if key == (logCtxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// noteLogPrincipal records p for the call's access-log line (tenant, subject). Outside the
// logging interceptor it does nothing.
func noteLogPrincipal(ctx context.Context, p *auth.Principal) {
	if c, ok := ctx.Value(logCtxKey{}).(*logCtx); ok {
		c.tenant, c.subject, c.admitted = p.Tenant, p.Subject, true
	}
}

func unaryLogging(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		lc := &logCtx{Context: ctx}
		resp, err := handler(lc, req)
		logFinished(log, lc, info.FullMethod, methodUnary, start, err)
		return resp, err
	}
}

func streamLogging(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		lc := &logCtx{Context: ss.Context()}
		err := handler(srv, &middleware.WrappedServerStream{ServerStream: ss, WrappedContext: lc})
		typ := methodServerStream
		switch {
		case info.IsClientStream && info.IsServerStream:
			typ = methodBidiStream
		case info.IsClientStream:
			typ = methodClientStream
		}
		logFinished(log, lc, info.FullMethod, typ, start, err)
		return err
	}
}

// logFinished writes the call's line, if its level is enabled. It builds no field slice: the
// attributes go to slog.LogAttrs, which keeps up to five inline and the rest in one slice.
func logFinished(log *slog.Logger, lc *logCtx, fullMethod, methodType string, start time.Time, err error) {
	if errors.Is(err, io.EOF) {
		err = nil
	}
	code := status.Code(err)
	level := serverCodeLevel(code)
	ctx := lc.Context
	if !log.Enabled(ctx, level) {
		return
	}
	d := time.Since(start)
	service, method := splitMethod(fullMethod)
	peerAddr := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		peerAddr = p.Addr.String()
	}
	var attrs [14]slog.Attr
	a := append(attrs[:0],
		slog.String(fieldRequestID, RequestIDFromContext(ctx)),
		slog.String(fieldService, service),
		slog.String(fieldMethod, method),
		slog.String(fieldMethodType, methodType),
	)
	if peerAddr != "" {
		a = append(a, slog.String(fieldPeerAddress, peerAddr))
	}
	a = append(a, slog.String(fieldStartTime, formatSecond(start)))
	if dl, ok := ctx.Deadline(); ok {
		a = append(a, slog.String(fieldDeadline, dl.Format(time.RFC3339)))
	}
	if lc.admitted {
		a = append(a, slog.String(fieldTenant, lc.tenant), slog.String(fieldSubject, lc.subject))
	}
	a = append(a, slog.String(fieldCode, code.String()))
	if err != nil {
		a = append(a, slog.String(fieldError, err.Error()))
	}
	a = append(a, slog.String(fieldTimeMs, timeMs(d)))
	log.LogAttrs(ctx, level, msgFinishedCall, a...)
}

// splitMethod splits "/package.Service/Method" without allocating.
func splitMethod(fullMethod string) (service, method string) {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return "unknown", "unknown"
}

// serverCodeLevel is the level of a finished call's line by its code.
func serverCodeLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK, codes.NotFound, codes.Canceled, codes.AlreadyExists, codes.InvalidArgument, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	default: // Unknown, Unimplemented, Internal, DataLoss and codes beyond the known ones
		return slog.LevelError
	}
}

// timeMs is d in milliseconds with microsecond resolution, spelled as fmt's %v of a float32
// ("0.144", "12", "1500.25"): the grpc.time_ms format log queries know.
func timeMs(d time.Duration) string {
	ms := float32(d.Nanoseconds()/1000) / 1000
	var b [24]byte
	return string(strconv.AppendFloat(b[:0], float64(ms), 'g', -1, 32))
}

// secondStamp caches the RFC 3339 spelling of the current second: every call in that second
// shares it instead of formatting its own.
type secondStamp struct {
	unix int64
	text string
}

var lastSecond atomic.Pointer[secondStamp]

// formatSecond is t.Format(time.RFC3339), cached per second.
func formatSecond(t time.Time) string {
	sec := t.Unix()
	if s := lastSecond.Load(); s != nil && s.unix == sec {
		return s.text
	}
	s := &secondStamp{unix: sec, text: t.Format(time.RFC3339)}
	lastSecond.Store(s)
	return s.text
}
