package telemetry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"
)

// NewHTTPTransport wraps base (nil: http.DefaultTransport) so each request is a client span
// "HTTP METHOD", a child of the span in the request's context, whose trace context is injected
// into the request headers with the propagator; the span ends when the response body is read to
// its end or closed. It records http.client.request.duration (until the response headers) and
// http.client.request.body.size. Answers of 400 and above set the span status to Error, as
// otelhttp's transport did (see http.go).
func NewHTTPTransport(base http.RoundTripper, opts ...HTTPOption) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	c := newHTTPConfig(opts)
	t := &httpTransport{base: base, cfg: c, tracers: newTracerCache(c.tp)}
	m := c.mp.Meter(httpScope)
	if d, err := httpconv.NewClientRequestDuration(m); err == nil {
		t.duration = d.Inst()
	} else {
		otel.Handle(err)
	}
	if s, err := httpconv.NewClientRequestBodySize(m); err == nil {
		t.reqSize = s.Inst()
	} else {
		otel.Handle(err)
	}
	return t
}

type httpTransport struct {
	base     http.RoundTripper
	cfg      httpConfig
	tracers  *tracerCache
	duration metric.Float64Histogram // nil when the instrument could not be made
	reqSize  metric.Int64Histogram
	sets     attrSetCache[clientKey]
}

// clientKey is what the client metrics' attributes are made of.
type clientKey struct {
	method, host, scheme, protoName, protoVersion, errType string
	port, status                                           int
}

func (t *httpTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	ctx := r.Context()
	tp := t.cfg.tp
	if tp == nil {
		if s := trace.SpanFromContext(ctx); s.SpanContext().IsValid() {
			tp = s.TracerProvider()
		} else {
			tp = otel.GetTracerProvider()
		}
	}
	https := r.URL != nil && r.URL.Scheme == "https"
	var urlHost string
	if r.URL != nil {
		urlHost = r.URL.Host
	}
	host, port := splitHostPort(urlHost)
	if host == "" && port < 0 {
		host, port = splitHostPort(r.Header.Get("Host"))
	}
	port = requiredPort(https, port)

	// The span gets all its attributes in one call once the response (or error) is in, none
	// when it is not recorded.
	ctx, span := t.tracers.get(tp).Start(ctx, clientSpanName(r.Method), clientSpanOpts...)

	// The RoundTripper contract forbids changing r: send a shallow copy whose header map is new
	// (the values are shared; the propagator only sets whole keys).
	r2 := r.WithContext(ctx)
	h := make(http.Header, len(r.Header)+2)
	for k, v := range r.Header {
		h[k] = v
	}
	r2.Header = h
	t.cfg.prop.Inject(ctx, headerCarrier(h))

	var counted *countingBody
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength <= 0 {
		counted = &countingBody{ReadCloser: r.Body}
		r2.Body = counted
	}
	res, err := t.base.RoundTrip(r2)
	if err == nil && res == nil {
		err = fmt.Errorf("http: RoundTripper implementation (%T) returned a nil *Response with a nil error", t.base)
	}
	if err == nil && res.Body == nil {
		if res.ContentLength > 0 && r.Method != http.MethodHead {
			err = fmt.Errorf("http: RoundTripper implementation (%T) returned a *Response with content length %d but a nil Body", t.base, res.ContentLength)
			res = nil
		} else {
			res.Body = http.NoBody
		}
	}
	t.record(ctx, r, res, err, host, port, start, counted)

	recording := span.IsRecording()
	var buf [11]attribute.KeyValue
	var ea []attribute.KeyValue
	if recording {
		ea = clientStartAttrs(buf[:0], r, host, port)
	}
	if err != nil {
		if recording {
			span.SetAttributes(append(ea, semconv.ErrorType(err))...)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
		return res, err
	}
	if recording {
		ea = append(ea, semconv.HTTPResponseStatusCode(res.StatusCode))
		if res.StatusCode >= 400 || res.StatusCode < 100 {
			ea = append(ea, semconv.ErrorTypeKey.String(strconv.Itoa(res.StatusCode)))
		}
		pn, pv := netProtocol(res.Proto)
		if pn != "" && pn != "http" {
			ea = append(ea, semconv.NetworkProtocolName(pn))
		}
		if pv != "" {
			ea = append(ea, semconv.NetworkProtocolVersion(pv))
		}
		span.SetAttributes(ea...)
		if res.StatusCode < 100 || res.StatusCode >= 600 {
			span.SetStatus(codes.Error, fmt.Sprintf("Invalid HTTP status code %d", res.StatusCode))
		} else if res.StatusCode >= 400 {
			span.SetStatus(codes.Error, "")
		}
	}
	res.Body = newSpanBody(span, res.Body)
	return res, nil
}

// record records the call's metrics: its duration until the response (or error) and the request
// body's size (its Content-Length, or the bytes the transport had read of a body of unknown length).
func (t *httpTransport) record(ctx context.Context, r *http.Request, res *http.Response, err error, host string, port int, start time.Time, counted *countingBody) {
	if t.duration == nil || !t.duration.Enabled(ctx) {
		return
	}
	d := time.Since(start)
	k := clientKey{method: standardMethod(r.Method), host: host, scheme: "http", port: port}
	if r.URL != nil && r.URL.Scheme != "" {
		k.scheme = r.URL.Scheme
	} else if r.TLS != nil {
		k.scheme = "https"
	}
	proto := r.Proto
	if res != nil && res.Proto != "" {
		proto = res.Proto
	}
	k.protoName, k.protoVersion = netProtocol(proto)
	if err == nil {
		k.status = res.StatusCode
	} else {
		k.errType = errorType(err)
	}
	opts := t.sets.get(k, clientMetricAttrs)
	t.duration.Record(ctx, d.Seconds(), opts...)
	if t.reqSize != nil {
		var size int64
		switch {
		case counted != nil:
			size = counted.n
		case r.ContentLength > 0:
			size = r.ContentLength
		}
		t.reqSize.Record(ctx, size, opts...)
	}
}

func clientSpanName(method string) string {
	switch method {
	case http.MethodPost:
		return "HTTP POST"
	case http.MethodGet:
		return "HTTP GET"
	}
	return "HTTP " + method
}

// clientStartAttrs appends the client span's request attributes (otelhttp's RequestTraceAttrs).
func clientStartAttrs(a []attribute.KeyValue, r *http.Request, host string, port int) []attribute.KeyValue {
	method, original := methodAttr(r.Method)
	a = append(a, method)
	if original.Valid() {
		a = append(a, original)
	}
	var u string
	if r.URL != nil {
		if r.URL.User == nil {
			u = r.URL.String()
		} else {
			cp := *r.URL
			cp.User = nil
			u = cp.String()
		}
	}
	a = append(a, semconv.URLFull(u), semconv.ServerAddress(host))
	if port > 0 {
		a = append(a, semconv.ServerPort(port))
	}
	pn, pv := netProtocol(r.Proto)
	if pn != "" && pn != "http" {
		a = append(a, semconv.NetworkProtocolName(pn))
	}
	if pv != "" {
		a = append(a, semconv.NetworkProtocolVersion(pv))
	}
	return a
}

// clientMetricAttrs are otelhttp's client metric attributes for k.
func clientMetricAttrs(k clientKey) []attribute.KeyValue {
	a := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(k.method),
		semconv.ServerAddress(k.host),
		semconv.URLScheme(k.scheme),
	}
	a = appendOptionalAttrs(a, k.port, k.protoName, k.protoVersion, k.status)
	if k.errType != "" {
		a = append(a, semconv.ErrorTypeKey.String(k.errType))
	}
	return a
}

// spanBody ends the client span when the response body is read to its end or closed; a read
// error marks the span failed.
type spanBody struct {
	body  io.ReadCloser
	span  trace.Span
	ended atomic.Bool
}

// spanBodyWriter is a spanBody over a writable body (101 Switching Protocols).
type spanBodyWriter struct{ *spanBody }

func newSpanBody(span trace.Span, body io.ReadCloser) io.ReadCloser {
	b := &spanBody{body: body, span: span}
	if _, ok := body.(io.ReadWriteCloser); ok {
		return spanBodyWriter{b}
	}
	return b
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch err {
	case nil:
	case io.EOF:
		b.end()
	default:
		b.span.SetAttributes(semconv.ErrorType(err))
		b.span.SetStatus(codes.Error, err.Error())
	}
	return n, err
}

func (b *spanBody) Close() error {
	b.end()
	return b.body.Close()
}

func (b *spanBody) end() {
	if b.ended.CompareAndSwap(false, true) {
		b.span.End()
	}
}

func (b spanBodyWriter) Write(p []byte) (int, error) {
	n, err := b.body.(io.Writer).Write(p)
	if err != nil {
		b.span.SetAttributes(semconv.ErrorType(err))
		b.span.SetStatus(codes.Error, err.Error())
	}
	return n, err
}

// appendOptionalAttrs appends the metric attributes both sides set only when known: the server
// port, the network protocol's name and version, and the response status.
func appendOptionalAttrs(a []attribute.KeyValue, port int, protoName, protoVersion string, status int) []attribute.KeyValue {
	if port > 0 {
		a = append(a, semconv.ServerPort(port))
	}
	if protoName != "" {
		a = append(a, semconv.NetworkProtocolName(protoName))
	}
	if protoVersion != "" {
		a = append(a, semconv.NetworkProtocolVersion(protoVersion))
	}
	if status > 0 {
		a = append(a, semconv.HTTPResponseStatusCode(status))
	}
	return a
}
