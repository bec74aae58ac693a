package interceptor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/telemetry"
)

// The go-grpc-middleware logging interceptor with the options Switchyard used before the
// hand-written one (logging.go) replaced it: the reference for the line format and the baseline
// of BenchmarkAccessLog.
func legacyLoggingOptions() []logging.Option {
	return []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
			return logging.Fields{fieldRequestID, RequestIDFromContext(ctx)}
		}),
		logging.WithDisableLoggingFields(logging.SystemTag[0], logging.ComponentFieldKey),
	}
}

func legacyLogger(log *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		log.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

func legacyUnaryLogging(log *slog.Logger) grpc.UnaryServerInterceptor {
	return logging.UnaryServerInterceptor(legacyLogger(log), legacyLoggingOptions()...)
}

func legacyStreamLogging(log *slog.Logger) grpc.StreamServerInterceptor {
	return logging.StreamServerInterceptor(legacyLogger(log), legacyLoggingOptions()...)
}

var logTestSpan = trace.NewSpanContext(trace.SpanContextConfig{
	TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled,
})

// callCtx is a call's context as the logging interceptor sees it: a peer, the request id's
// record and a span (the stats handler's), optionally a deadline.
func callCtx(tb testing.TB, deadline bool) (context.Context, context.CancelFunc) {
	tb.Helper()
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 51234}})
	ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("x-request-id", "req-1"))
	ctx = trace.ContextWithSpanContext(ctx, logTestSpan)
	ctx, _ = withRequestID(ctx)
	if deadline {
		return context.WithDeadline(ctx, time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	}
	return ctx, func() {}
}

// admit does what the auth interceptor does for the access log, in both ways.
func admit(ctx context.Context) {
	p := &auth.Principal{Tenant: "acme", Subject: "dify"}
	logging.AddFields(ctx, logging.Fields{fieldTenant, p.Tenant, fieldSubject, p.Subject})
	noteLogPrincipal(ctx, p)
}

// varying masks the values that differ between two runs of the same call.
var varying = regexp.MustCompile(`"(time|grpc.time_ms|grpc.start_time)":"[^"]*"`)

func normalized(buf *bytes.Buffer) string {
	return varying.ReplaceAllString(buf.String(), `"$1":"-"`)
}

// TestAccessLogMatchesMiddleware: the hand-written interceptor writes the line go-grpc-middleware
// wrote, field for field and in the same order, at the same level, for unary and stream calls.
func TestAccessLogMatchesMiddleware(t *testing.T) {
	cases := []struct {
		name     string
		admitted bool
		err      error
		deadline bool
	}{
		{"ok", true, nil, true},
		{"ok without deadline", true, nil, false},
		{"refused before auth", false, status.Error(codes.Unauthenticated, "Incorrect API key provided."), false},
		{"rate limited", true, status.Error(codes.ResourceExhausted, "rate limit exceeded"), false},
		{"internal", true, status.Error(codes.Internal, "internal error"), true},
		{"not found", true, status.Error(codes.NotFound, "model not found"), false},
		{"unavailable", true, status.Error(codes.Unavailable, "upstream down"), false},
		{"plain error", true, io.ErrUnexpectedEOF, false},
		{"EOF is OK", true, io.EOF, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			handler := func(ctx context.Context, _ any) (any, error) {
				if c.admitted {
					admit(ctx)
				}
				return nil, c.err
			}
			streamHandler := func(_ any, ss grpc.ServerStream) error {
				if c.admitted {
					admit(ss.Context())
				}
				return c.err
			}
			var got, want bytes.Buffer
			for _, run := range []struct {
				buf    *bytes.Buffer
				unary  grpc.UnaryServerInterceptor
				stream grpc.StreamServerInterceptor
			}{
				{&want, legacyUnaryLogging(telemetry.NewLogger(&want, slog.LevelDebug, "json")), legacyStreamLogging(telemetry.NewLogger(&want, slog.LevelDebug, "json"))},
				{&got, unaryLogging(telemetry.NewLogger(&got, slog.LevelDebug, "json")), streamLogging(telemetry.NewLogger(&got, slog.LevelDebug, "json"))},
			} {
				ctx, cancel := callCtx(t, c.deadline)
				_, _ = run.unary(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/switchyard.v1.ChatService/CreateChatCompletion"}, handler)
				for _, info := range []*grpc.StreamServerInfo{
					{FullMethod: "/switchyard.v1.ChatService/StreamChatCompletion", IsServerStream: true},
					{FullMethod: "/x.v1.S/Upload", IsClientStream: true},
					{FullMethod: "/x.v1.S/Chat", IsClientStream: true, IsServerStream: true},
				} {
					_ = run.stream(nil, fakeStream{ctx: ctx}, info, streamHandler)
				}
				cancel()
			}
			if g, w := normalized(&got), normalized(&want); g != w {
				t.Errorf("access log lines differ\n got: %s\nwant: %s", g, w)
			}
			if strings.Count(got.String(), "\n") != 4 || !strings.Contains(got.String(), `"trace_id":"0102030`) {
				t.Errorf("want 4 lines with trace ids; got %s", got.String())
			}
		})
	}
}

// TestAccessLogLevelFilter: a disabled level writes nothing (and does none of the formatting).
func TestAccessLogLevelFilter(t *testing.T) {
	var buf bytes.Buffer
	in := unaryLogging(telemetry.NewLogger(&buf, slog.LevelWarn, "json"))
	ctx, cancel := callCtx(t, false)
	defer cancel()
	info := &grpc.UnaryServerInfo{FullMethod: "/s.S/M"}
	_, _ = in(ctx, nil, info, func(context.Context, any) (any, error) { return nil, nil })
	if buf.Len() != 0 {
		t.Errorf("OK call logged at warn level: %s", buf.String())
	}
	_, _ = in(ctx, nil, info, func(context.Context, any) (any, error) { return nil, status.Error(codes.Unavailable, "x") })
	if !strings.Contains(buf.String(), `"level":"WARN"`) || !strings.Contains(buf.String(), `"grpc.code":"Unavailable"`) {
		t.Errorf("UNAVAILABLE call: %q; want a WARN line", buf.String())
	}
}

// TestTimeMs: grpc.time_ms is spelled as the middleware's fmt %v of a float32 millisecond count.
func TestTimeMs(t *testing.T) {
	for _, d := range []time.Duration{0, 999, time.Microsecond, 144 * time.Microsecond, 1234567, 12 * time.Millisecond,
		1500*time.Millisecond + 250*time.Microsecond, 17 * time.Minute, 3 * time.Hour, 400 * time.Hour, 123456789 * time.Microsecond} {
		want := fmt.Sprintf("%v", float32(d.Nanoseconds()/1000)/1000)
		if got := timeMs(d); got != want {
			t.Errorf("timeMs(%v) = %q; want %q", d, got, want)
		}
	}
}

// TestFormatSecond: the cached stamp is t.Format(time.RFC3339), also across seconds.
func TestFormatSecond(t *testing.T) {
	base := time.Now()
	for _, d := range []time.Duration{0, 10 * time.Millisecond, time.Second, 3 * time.Second, -time.Hour, 0} {
		tm := base.Add(d)
		if got, want := formatSecond(tm), tm.Format(time.RFC3339); got != want {
			t.Errorf("formatSecond(%v) = %q; want %q", tm, got, want)
		}
	}
}

type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s fakeStream) Context() context.Context { return s.ctx }

// BenchmarkAccessLog compares the go-grpc-middleware logging interceptor (with Switchyard's
// former options) with the hand-written one, for a unary call of an admitted caller, logged
// (info) as JSON with trace ids to io.Discard, and with the line filtered out (level warn).
func BenchmarkAccessLog(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/switchyard.v1.ChatService/CreateChatCompletion"}
	handler := func(ctx context.Context, _ any) (any, error) { admit(ctx); return nil, nil }
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		log := telemetry.NewLogger(io.Discard, level, "json")
		for _, impl := range []struct {
			name string
			in   grpc.UnaryServerInterceptor
		}{
			{"middleware", legacyUnaryLogging(log)},
			{"handwritten", unaryLogging(log)},
		} {
			b.Run(fmt.Sprintf("level=%s/%s", level, impl.name), func(b *testing.B) {
				ctx, cancel := callCtx(b, false)
				defer cancel()
				b.ReportAllocs()
				for b.Loop() {
					_, _ = impl.in(ctx, nil, info, handler)
				}
			})
		}
	}
}
