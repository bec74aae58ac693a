package inproc

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/rpcconv"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const instrumentationName = "github.com/switchyard/switchyard/internal/inproc"

// numCodes is the number of gRPC status codes (OK through UNAUTHENTICATED).
const numCodes = int(codes.Unauthenticated) + 1

// methodTelemetry is what one method's spans and metrics reuse: everything but the status is
// fixed per method, so attribute sets are built once.
type methodTelemetry struct {
	spanName   string
	startAttrs []attribute.KeyValue
	statusAttr [numCodes]attribute.KeyValue
	duration   metric.Float64Histogram // nil: no metrics
	metricSets [numCodes]attribute.Set
}

func newMethodTelemetry(m metric.Meter, fullMethod string) *methodTelemetry {
	name := fullMethod[1:]
	t := &methodTelemetry{
		spanName:   name,
		startAttrs: []attribute.KeyValue{semconv.RPCMethod(name), semconv.RPCSystemNameGRPC},
	}
	for c := range numCodes {
		code := codes.Code(c)
		t.statusAttr[c] = semconv.RPCResponseStatusCode(canonical(code))
		attrs := []attribute.KeyValue{semconv.RPCMethod(name), semconv.RPCSystemNameGRPC, t.statusAttr[c]}
		if serverError(code) {
			attrs = append(attrs, semconv.ErrorTypeKey.String(canonical(code)))
		}
		t.metricSets[c] = attribute.NewSet(attrs...)
	}
	if m != nil {
		if d, err := rpcconv.NewServerCallDuration(m); err == nil {
			t.duration = d.Inst()
		}
	}
	return t
}

// startTelemetry puts the caller's span (or a new server span, its child) and baggage into the
// handler's context sctx. The returned func ends the span and records the call's duration.
func (c *Channel) startTelemetry(cctx, sctx context.Context, m *method) (context.Context, func(*status.Status)) {
	t := m.tel
	var span trace.Span
	if c.tracer != nil {
		_, span = c.tracer.Start(cctx, t.spanName, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(t.startAttrs...))
		sctx = trace.ContextWithSpan(sctx, span)
	} else if s := trace.SpanFromContext(cctx); s.SpanContext().IsValid() {
		sctx = trace.ContextWithSpan(sctx, s)
	}
	if b := baggage.FromContext(cctx); b.Len() > 0 {
		sctx = baggage.ContextWithBaggage(sctx, b)
	}
	var start time.Time
	if t.duration != nil {
		start = time.Now()
	}
	return sctx, func(st *status.Status) {
		code := min(int(st.Code()), numCodes-1)
		if span != nil {
			if span.IsRecording() {
				span.SetAttributes(t.statusAttr[code])
				if serverError(st.Code()) {
					span.SetStatus(otelcodes.Error, st.Message())
				}
			}
			span.End()
		}
		if t.duration != nil && t.duration.Enabled(sctx) {
			t.duration.Record(sctx, time.Since(start).Seconds(), metric.WithAttributeSet(t.metricSets[code]))
		}
	}
}

// serverError reports the codes a server counts as its own failure (as otelgrpc does).
func serverError(c codes.Code) bool {
	switch c {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		return true
	}
	return false
}

// canonical is the status code's name as the OpenTelemetry conventions spell it.
func canonical(c codes.Code) string {
	if c == codes.Canceled {
		return "CANCELLED"
	}
	s := c.String()
	// codes.Code.String gives "OK", "Canceled", "InvalidArgument"...: convert to SCREAMING_SNAKE.
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch >= 'A' && ch <= 'Z' {
			if i > 0 && s[i-1] >= 'a' && s[i-1] <= 'z' {
				out = append(out, '_')
			}
			out = append(out, ch)
		} else {
			out = append(out, ch-'a'+'A')
		}
	}
	return string(out)
}
