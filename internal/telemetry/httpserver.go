package telemetry

import (
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
)

// NewHTTPHandler wraps next in a server span and records the HTTP server metrics, as otelhttp's
// handler did (see http.go for what is kept). The trace context of the request is extracted with
// the propagator; the span is named by WithHTTPSpanName (again after next returns, when next set
// r.Pattern, the route); 5xx answers set the span status to Error.
func NewHTTPHandler(next http.Handler, opts ...HTTPOption) http.Handler {
	c := newHTTPConfig(opts)
	h := &httpHandler{next: next, cfg: c, tracers: newTracerCache(c.tp)}
	if h.cfg.spanName == nil {
		h.cfg.spanName = defaultSpanName
	}
	m := c.mp.Meter(httpScope)
	if d, err := httpconv.NewServerRequestDuration(m); err == nil {
		h.duration = d.Inst()
	} else {
		otel.Handle(err)
	}
	if s, err := httpconv.NewServerRequestBodySize(m); err == nil {
		h.reqSize = s.Inst()
	} else {
		otel.Handle(err)
	}
	if s, err := httpconv.NewServerResponseBodySize(m); err == nil {
		h.respSize = s.Inst()
	} else {
		otel.Handle(err)
	}
	return h
}

func defaultSpanName(r *http.Request) string {
	m := standardMethod(r.Method)
	if m == methodOther {
		m = "HTTP"
	}
	if route := routeOf(r.Pattern); route != "" {
		return m + " " + route
	}
	return m
}

type httpHandler struct {
	next     http.Handler
	cfg      httpConfig
	tracers  *tracerCache
	duration metric.Float64Histogram // nil when the instrument could not be made
	reqSize  metric.Int64Histogram
	respSize metric.Int64Histogram
	sets     attrSetCache[serverKey]
}

// serverKey is what the server metrics' attributes are made of.
type serverKey struct {
	method, route, host, protoName, protoVersion string
	https                                        bool
	port, status                                 int
}

func (h *httpHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := h.cfg.prop.Extract(r.Context(), headerCarrier(r.Header))
	tp := h.cfg.tp
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	https := r.TLS != nil
	host, port := splitHostPort(r.Host)
	port = requiredPort(https, port)

	// The span gets all its attributes in one call when the handler has returned (none when it is
	// not recorded): one slice instead of a start option and a second slice.
	name := h.cfg.spanName(r)
	startPattern := r.Pattern
	ctx, span := h.tracers.get(tp).Start(ctx, name, serverSpanOpts...)

	// One allocation for the call's wrappers: the response writer and the body counter.
	sc := &serverCall{rw: respWriter{ResponseWriter: w, status: http.StatusOK}}
	r2 := r.WithContext(ctx)
	if r.Body != nil && r.Body != http.NoBody {
		sc.body.ReadCloser = r.Body
		r2.Body = &sc.body
	}
	h.next.ServeHTTP(&sc.rw, r2)

	status := sc.rw.status
	route := routeOf(r2.Pattern)
	if span.IsRecording() {
		if r2.Pattern != "" {
			if n := h.cfg.spanName(r2); n != name {
				span.SetName(n)
			}
		}
		if status < 100 || status >= 600 {
			span.SetStatus(codes.Error, fmt.Sprintf("Invalid HTTP status code %d", status))
		} else if status >= 500 {
			span.SetStatus(codes.Error, "")
		}
		var buf [16]attribute.KeyValue
		a := startAttrs(buf[:0], r, host, port, https, startPattern)
		if sc.body.n > 0 {
			a = append(a, semconv.HTTPRequestBodySize(int(sc.body.n)))
		}
		if sc.rw.written > 0 {
			a = append(a, semconv.HTTPResponseBodySize(int(sc.rw.written)))
		}
		if status > 0 {
			a = append(a, semconv.HTTPResponseStatusCode(status))
		}
		if route != "" && startPattern == "" {
			a = append(a, semconv.HTTPRoute(route))
		}
		span.SetAttributes(a...)
	}
	span.End()

	if h.duration == nil || !h.duration.Enabled(ctx) {
		return
	}
	pn, pv := netProtocol(r.Proto)
	opts := h.sets.get(serverKey{method: standardMethod(r.Method), route: route, host: host, protoName: pn,
		protoVersion: pv, https: https, port: port, status: status}, serverMetricAttrs)
	h.duration.Record(ctx, time.Since(start).Seconds(), opts...)
	if h.reqSize != nil {
		h.reqSize.Record(ctx, sc.body.n, opts...)
	}
	if h.respSize != nil {
		h.respSize.Record(ctx, sc.rw.written, opts...)
	}
}

// startAttrs appends the server span's request attributes (otelhttp's RequestTraceAttrs).
func startAttrs(a []attribute.KeyValue, r *http.Request, host string, port int, https bool, pattern string) []attribute.KeyValue {
	method, original := methodAttr(r.Method)
	scheme := semconv.URLScheme("http")
	if https {
		scheme = semconv.URLScheme("https")
	}
	a = append(a, semconv.ServerAddress(host), method, scheme)
	if port > 0 {
		a = append(a, semconv.ServerPort(port))
	}
	if original.Valid() {
		a = append(a, original)
	}
	peer, peerPort := splitHostPort(r.RemoteAddr)
	if peer != "" {
		a = append(a, semconv.NetworkPeerAddress(peer))
		if peerPort > 0 {
			a = append(a, semconv.NetworkPeerPort(peerPort))
		}
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		a = append(a, semconv.UserAgentOriginal(ua))
	}
	client := r.Header.Get("X-Forwarded-For")
	for i := 0; i < len(client); i++ {
		if client[i] == ',' {
			client = client[:i]
			break
		}
	}
	if client == "" {
		client = peer
	}
	if client != "" {
		a = append(a, semconv.ClientAddress(client))
	}
	if r.URL != nil && r.URL.Path != "" {
		a = append(a, semconv.URLPath(r.URL.Path))
	}
	pn, pv := netProtocol(r.Proto)
	if pn != "" && pn != "http" {
		a = append(a, semconv.NetworkProtocolName(pn))
	}
	if pv != "" {
		a = append(a, semconv.NetworkProtocolVersion(pv))
	}
	if route := routeOf(pattern); route != "" {
		a = append(a, semconv.HTTPRoute(route))
	}
	return a
}

// serverMetricAttrs are otelhttp's server metric attributes for k.
func serverMetricAttrs(k serverKey) []attribute.KeyValue {
	scheme := "http"
	if k.https {
		scheme = "https"
	}
	a := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(k.method),
		semconv.URLScheme(scheme),
		semconv.ServerAddress(k.host),
	}
	a = appendOptionalAttrs(a, k.port, k.protoName, k.protoVersion, k.status)
	if k.route != "" {
		a = append(a, semconv.HTTPRoute(k.route))
	}
	return a
}

type serverCall struct {
	rw   respWriter
	body countingBody
}

// countingBody counts the bytes read from a request body. The handler reads it on the request's
// goroutine; the count is read after the handler returned.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// respWriter records the status and the bytes written. It implements http.Flusher (server-sent
// events) and Unwrap, so http.ResponseController reaches the connection's writer (read deadlines,
// hijacking). Handlers write from the request's goroutine.
type respWriter struct {
	http.ResponseWriter
	status      int
	written     int64
	wroteHeader bool
}

func (w *respWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		// Informational answers (but 101) are not the final status.
		if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
			w.ResponseWriter.WriteHeader(code)
			return
		}
		w.wroteHeader = true
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}

func (w *respWriter) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
