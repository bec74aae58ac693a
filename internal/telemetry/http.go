package telemetry

import (
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The HTTP instrumentation of the REST server (NewHTTPHandler) and the upstream transport
// (NewHTTPTransport). They replace otelhttp, whose per-request cost (semconv attribute slices and
// attribute sets rebuilt for every request, httpsnoop and body wrappers, a tracer looked up per
// request) was several percent of the gateway's CPU. They keep what otelhttp gave: the span
// names and kinds, W3C trace context extracted on the server and injected on the client with the
// global propagator, the semconv span attributes and span status, and the metrics
// http.server.request.duration, http.server.request.body.size, http.server.response.body.size,
// http.client.request.duration and http.client.request.body.size with otelhttp's attributes.
// What differs: metric attribute sets are built once per distinct key and cached (bounded), the
// instrumentation scope is this package's, and the server span also gets http.route at its end.

// httpScope names the tracer and meter of the HTTP instrumentation.
const httpScope = "github.com/switchyard/switchyard/internal/telemetry"

// HTTPOption adjusts NewHTTPHandler and NewHTTPTransport.
type HTTPOption func(*httpConfig)

type httpConfig struct {
	tp       trace.TracerProvider // nil: the global one, looked up per request (cheaply)
	mp       metric.MeterProvider
	prop     propagation.TextMapPropagator
	spanName func(*http.Request) string
}

// WithHTTPTracerProvider sets the tracer provider; by default the global one is used.
func WithHTTPTracerProvider(tp trace.TracerProvider) HTTPOption {
	return func(c *httpConfig) { c.tp = tp }
}

// WithHTTPMeterProvider sets the meter provider; by default the global one (at construction).
func WithHTTPMeterProvider(mp metric.MeterProvider) HTTPOption {
	return func(c *httpConfig) { c.mp = mp }
}

// WithHTTPPropagator sets the propagator; by default the global one (at construction).
func WithHTTPPropagator(p propagation.TextMapPropagator) HTTPOption {
	return func(c *httpConfig) { c.prop = p }
}

// WithHTTPSpanName names server spans; it is called when the request arrives and, if the handler
// set r.Pattern, again when it returns. The default is "METHOD route" or "METHOD".
func WithHTTPSpanName(f func(*http.Request) string) HTTPOption {
	return func(c *httpConfig) { c.spanName = f }
}

func newHTTPConfig(opts []HTTPOption) httpConfig {
	c := httpConfig{mp: otel.GetMeterProvider(), prop: otel.GetTextMapPropagator()}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// tracerCache returns a tracer of the provider, created once per provider: the global provider
// is loaded per request (otel.SetTracerProvider may replace it), its tracer is not.
type tracerCache struct {
	fixed trace.Tracer // from WithHTTPTracerProvider
	last  atomic.Pointer[tracerOf]
}

type tracerOf struct {
	tp     trace.TracerProvider
	tracer trace.Tracer
}

func newTracerCache(tp trace.TracerProvider) *tracerCache {
	c := &tracerCache{}
	if tp != nil {
		c.fixed = tp.Tracer(httpScope)
	}
	return c
}

func (c *tracerCache) get(tp trace.TracerProvider) trace.Tracer {
	if c.fixed != nil {
		return c.fixed
	}
	if l := c.last.Load(); l != nil && l.tp == tp {
		return l.tracer
	}
	t := &tracerOf{tp: tp, tracer: tp.Tracer(httpScope)}
	c.last.Store(t)
	return t.tracer
}

// headerCarrier is propagation.HeaderCarrier without the key canonicalization's allocation for
// the keys the W3C propagators use (their lower-case names would be canonicalized per call).
type headerCarrier http.Header

func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return http.CanonicalHeaderKey(key)
}

func (c headerCarrier) Get(key string) string {
	if v := c[canonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c headerCarrier) Set(key, value string) { c[canonicalKey(key)] = []string{value} }

func (c headerCarrier) Keys() []string { return propagation.HeaderCarrier(c).Keys() }

// Span start options without per-call allocation.
var (
	serverSpanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	clientSpanOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
)

// maxAttrSets bounds an attrSetCache: keys come partly from requests (the Host header), so past
// this many the sets are built per request rather than kept.
const maxAttrSets = 1024

// attrSetCache maps a metric key to its attribute set's record options, built once. Reads take no
// lock (a copy-on-write map); misses, rare after warm-up, copy the map.
type attrSetCache[K comparable] struct {
	m  atomic.Pointer[map[K][]metric.RecordOption]
	mu sync.Mutex
}

func (c *attrSetCache[K]) get(k K, build func(K) []attribute.KeyValue) []metric.RecordOption {
	if m := c.m.Load(); m != nil {
		if o, ok := (*m)[k]; ok {
			return o
		}
	}
	opts := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(build(k)...))}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	n := 0
	if old != nil {
		n = len(*old)
	}
	if n >= maxAttrSets {
		return opts
	}
	m := make(map[K][]metric.RecordOption, n+1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[k] = opts
	c.m.Store(&m)
	return opts
}

// methodAttr is the semconv method attribute and, for a method not in the standard set, the
// original spelling (otherwise the zero KeyValue).
func methodAttr(method string) (attribute.KeyValue, attribute.KeyValue) {
	switch method {
	case http.MethodGet:
		return semconv.HTTPRequestMethodGet, attribute.KeyValue{}
	case http.MethodPost:
		return semconv.HTTPRequestMethodPost, attribute.KeyValue{}
	case "":
		return semconv.HTTPRequestMethodOther, attribute.KeyValue{}
	}
	if m := standardMethod(method); m != methodOther {
		if m == method {
			return semconv.HTTPRequestMethodKey.String(m), attribute.KeyValue{}
		}
		return semconv.HTTPRequestMethodKey.String(m), semconv.HTTPRequestMethodOriginal(method)
	}
	return semconv.HTTPRequestMethodOther, semconv.HTTPRequestMethodOriginal(method)
}

const methodOther = "_OTHER"

// standardMethod is the method as metrics spell it: one of the standard methods (any case), or
// _OTHER.
func standardMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodConnect, http.MethodDelete, http.MethodHead,
		http.MethodOptions, http.MethodPatch, http.MethodPut, http.MethodTrace:
		return method
	}
	switch strings.ToUpper(method) {
	case http.MethodGet:
		return http.MethodGet
	case http.MethodPost:
		return http.MethodPost
	case http.MethodConnect:
		return http.MethodConnect
	case http.MethodDelete:
		return http.MethodDelete
	case http.MethodHead:
		return http.MethodHead
	case http.MethodOptions:
		return http.MethodOptions
	case http.MethodPatch:
		return http.MethodPatch
	case http.MethodPut:
		return http.MethodPut
	case http.MethodTrace:
		return http.MethodTrace
	}
	return methodOther
}

// splitHostPort splits "host:port", "[v6]:port", "host" or "[v6]"; port is -1 when absent or bad.
func splitHostPort(hostport string) (host string, port int) {
	port = -1
	if strings.HasPrefix(hostport, "[") {
		end := strings.LastIndexByte(hostport, ']')
		if end < 0 {
			return "", port
		}
		if strings.LastIndexByte(hostport[end:], ':') < 0 {
			return hostport[1:end], port
		}
	} else if !strings.Contains(hostport, ":") {
		return hostport, port
	}
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return host, port
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return host, port
	}
	return host, int(n)
}

// requiredPort is port unless it is the scheme's default (or absent): then -1.
func requiredPort(https bool, port int) int {
	if port <= 0 || (https && port == 443) || (!https && port == 80) {
		return -1
	}
	return port
}

// netProtocol splits "HTTP/1.1" into "http" and "1.1".
func netProtocol(proto string) (name, version string) {
	name, version, _ = strings.Cut(proto, "/")
	switch name {
	case "HTTP":
		name = "http"
	case "QUIC":
		name = "quic"
	case "SPDY":
		name = "spdy"
	default:
		name = strings.ToLower(name)
	}
	return name, version
}

// routeOf is the route of a ServeMux-style pattern ("GET /x/{id}" → "/x/{id}").
func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, '/'); i >= 0 {
		return pattern[i:]
	}
	return ""
}

// errorType is error.type for err: its type's package-qualified name.
func errorType(err error) string {
	t := reflect.TypeOf(err)
	if t == nil {
		return "_OTHER"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" || t.Name() == "" {
		if s := t.String(); s != "" {
			return s
		}
		return "_OTHER"
	}
	return t.PkgPath() + "." + t.Name()
}
