package telemetry

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// otelEnv is a tracer provider recording ended spans and a meter provider with a manual reader.
type otelEnv struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newOtelEnv() otelEnv {
	e := otelEnv{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	e.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader))
	return e
}

var traceContext = propagation.TraceContext{}

// metrics returns "name unit" → the sorted encoded attribute sets of its data points, with the
// count of each point.
func (e otelEnv) metrics(t *testing.T) map[string][]string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			key := m.Name + " " + m.Unit
			switch d := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out[key] = append(out[key], fmt.Sprintf("%s n=%d", p.Attributes.Encoded(attribute.DefaultEncoder()), p.Count))
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					out[key] = append(out[key], fmt.Sprintf("%s n=%d sum=%d", p.Attributes.Encoded(attribute.DefaultEncoder()), p.Count, p.Sum))
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
			}
			slices.Sort(out[key])
		}
	}
	return out
}

type spanView struct {
	name   string
	kind   trace.SpanKind
	status codes.Code
	attrs  map[string]string
	parent trace.SpanContext
	sc     trace.SpanContext
}

func (e otelEnv) ended() []spanView {
	var out []spanView
	for _, s := range e.spans.Ended() {
		v := spanView{name: s.Name(), kind: s.SpanKind(), status: s.Status().Code, attrs: map[string]string{}, parent: s.Parent(), sc: s.SpanContext()}
		for _, a := range s.Attributes() {
			v.attrs[string(a.Key)] = a.Value.Emit()
		}
		out = append(out, v)
	}
	return out
}

// inner is a handler like the gateway's: it sets the route as r.Pattern, reads the body, and
// answers with the status the path asks for.
func inner(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/v1/models/") {
		r.Pattern = "/v1/models/{id}"
	} else if r.URL.Path == "/v1/chat/completions" {
		r.Pattern = "/v1/chat/completions"
	}
	body, _ := io.ReadAll(r.Body)
	switch {
	case strings.HasSuffix(r.URL.Path, "/boom"):
		w.WriteHeader(http.StatusBadGateway)
	case strings.HasSuffix(r.URL.Path, "/missing"):
		http.NotFound(w, r)
		return
	case strings.HasSuffix(r.URL.Path, "/silent"):
		return // no write at all: 200
	}
	_, _ = fmt.Fprintf(w, `{"got":%d}`, len(body))
}

func spanNameOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Method + " " + r.Pattern
	}
	return r.Method
}

type serverReq struct {
	method, target, body string
	header               http.Header
}

var serverReqs = []serverReq{
	{"POST", "/v1/chat/completions", `{"model":"m"}`, http.Header{"User-Agent": {"sdk/1"}, "Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}},
	{"POST", "/v1/chat/completions", `{"model":"m","x":1}`, http.Header{"X-Forwarded-For": {"203.0.113.9, 10.0.0.1"}}},
	{"GET", "/v1/models/mock/echo", "", nil},
	{"GET", "/v1/models/mock/boom", "", nil},
	{"GET", "/v1/unknown/missing", "", nil},
	{"GET", "/v1/silent", "", nil},
	{"get", "/v1/silent", "", nil},
	{"BREW", "/v1/silent", "", nil},
}

func serve(h http.Handler, rq serverReq) *httptest.ResponseRecorder {
	var body io.Reader
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	r := httptest.NewRequest(rq.method, "http://gw.example:8080"+rq.target, body)
	r.RemoteAddr = "192.0.2.1:43210"
	for k, v := range rq.header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestHTTPHandlerMatchesOtelhttp runs the same requests through otelhttp's handler and
// NewHTTPHandler: the spans (names, kinds, status, attributes; ours adds http.route at the end)
// and the metrics (names, units, attribute sets, counts and body sizes) are the same.
func TestHTTPHandlerMatchesOtelhttp(t *testing.T) {
	ref, got := newOtelEnv(), newOtelEnv()
	refH := otelhttp.NewHandler(http.HandlerFunc(inner), "switchyard.rest",
		otelhttp.WithTracerProvider(ref.tp), otelhttp.WithMeterProvider(ref.mp), otelhttp.WithPropagators(traceContext),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return spanNameOf(r) }))
	gotH := NewHTTPHandler(http.HandlerFunc(inner), WithHTTPTracerProvider(got.tp), WithHTTPMeterProvider(got.mp),
		WithHTTPPropagator(traceContext), WithHTTPSpanName(spanNameOf))
	for _, rq := range serverReqs {
		rw, gw := serve(refH, rq), serve(gotH, rq)
		if rw.Code != gw.Code || rw.Body.String() != gw.Body.String() {
			t.Errorf("%s %s: answer %d %q, otelhttp's %d %q", rq.method, rq.target, gw.Code, gw.Body, rw.Code, rw.Body)
		}
	}
	refSpans, gotSpans := ref.ended(), got.ended()
	if len(gotSpans) != len(serverReqs) || len(refSpans) != len(serverReqs) {
		t.Fatalf("spans: %d, otelhttp %d; want %d", len(gotSpans), len(refSpans), len(serverReqs))
	}
	for i, g := range gotSpans {
		r := refSpans[i]
		if route, ok := g.attrs["http.route"]; ok {
			if _, refHas := r.attrs["http.route"]; !refHas {
				r.attrs["http.route"] = route // ours adds the route the handler found
			}
		}
		if g.name != r.name || g.kind != r.kind || g.status != r.status || !maps.Equal(g.attrs, r.attrs) {
			t.Errorf("span %d:\n got %s %v %v %v\nwant %s %v %v %v", i, g.name, g.kind, g.status, g.attrs, r.name, r.kind, r.status, r.attrs)
		}
	}
	if p := gotSpans[0].parent; p.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !p.IsRemote() {
		t.Errorf("first span's parent = %v; want the traceparent's, remote", p)
	}
	if gotSpans[0].name != "POST /v1/chat/completions" || gotSpans[3].status != codes.Error || gotSpans[4].status != codes.Unset {
		t.Errorf("spans = %+v; want the route in the name, 502 an error, 404 not", gotSpans)
	}
	gm, rm := got.metrics(t), ref.metrics(t)
	for _, name := range []string{"http.server.request.duration s", "http.server.request.body.size By", "http.server.response.body.size By"} {
		if len(gm[name]) == 0 {
			t.Errorf("metric %q missing; got %v", name, slices.Collect(maps.Keys(gm)))
		}
	}
	if !maps.EqualFunc(gm, rm, slices.Equal) {
		t.Errorf("metrics differ\n got %v\nwant %v", gm, rm)
	}
}

// TestHTTPHandlerWriterInterfaces: handlers behind the wrapper can flush (server-sent events) and
// reach the connection's writer through http.ResponseController (the gateway sets read deadlines).
func TestHTTPHandlerWriterInterfaces(t *testing.T) {
	e := newOtelEnv()
	h := NewHTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("writer is not a Flusher")
		}
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			t.Errorf("ResponseController.SetReadDeadline: %v", err)
		}
		_, _ = io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
	}), WithHTTPTracerProvider(e.tp), WithHTTPMeterProvider(e.mp))
	w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(w, httptest.NewRequest("GET", "/stream", nil))
	if !w.Flushed || w.Body.String() != "data: 1\n\n" || !w.deadline {
		t.Errorf("flushed %v, body %q, deadline set %v; want a flushed event and the deadline set", w.Flushed, w.Body, w.deadline)
	}
}

type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadline bool
}

func (d *deadlineRecorder) SetReadDeadline(time.Time) error { d.deadline = true; return nil }

// TestHTTPHandlerGlobalTracer: without a tracer provider option the global one is used, also when
// it is replaced after the handler was built.
func TestHTTPHandlerGlobalTracer(t *testing.T) {
	e1, e2 := newOtelEnv(), newOtelEnv()
	h := NewHTTPHandler(http.HandlerFunc(inner), WithHTTPMeterProvider(e1.mp))
	for _, e := range []otelEnv{e1, e2} {
		withGlobalTracer(t, e.tp)
		serve(h, serverReqs[2])
		if n := len(e.ended()); n != 1 {
			t.Errorf("global provider recorded %d spans; want 1", n)
		}
	}
}

func withGlobalTracer(t *testing.T, tp trace.TracerProvider) {
	t.Helper()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
}

// TestHTTPTransportMatchesOtelhttp sends the same calls through otelhttp's transport and
// NewHTTPTransport: same spans, same injected trace context, same metrics.
func TestHTTPTransportMatchesOtelhttp(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Traceparent"))
		_, _ = io.Copy(io.Discard, r.Body)
		if strings.HasSuffix(r.URL.Path, "/limited") {
			w.WriteHeader(http.StatusTooManyRequests)
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	type call struct {
		method, url string
		body        io.Reader
	}
	calls := func() []call {
		return []call{
			{"POST", srv.URL + "/v1/chat/completions", strings.NewReader(`{"model":"m"}`)},
			{"POST", srv.URL + "/v1/chat/completions", io.NopCloser(strings.NewReader(`{"unknown":"length"}`))},
			{"GET", srv.URL + "/v1/models", nil},
			{"POST", srv.URL + "/limited", strings.NewReader(`{}`)},
			{"GET", closedURL + "/down", nil},
		}
	}
	ref, got := newOtelEnv(), newOtelEnv()
	refT := otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(ref.tp),
		otelhttp.WithMeterProvider(ref.mp), otelhttp.WithPropagators(traceContext))
	gotT := NewHTTPTransport(http.DefaultTransport, WithHTTPTracerProvider(got.tp), WithHTTPMeterProvider(got.mp),
		WithHTTPPropagator(traceContext))
	for _, run := range []struct {
		e  otelEnv
		rt http.RoundTripper
	}{{ref, refT}, {got, gotT}} {
		ctx, parent := run.e.tp.Tracer("test").Start(context.Background(), "caller")
		for _, c := range calls() {
			req, _ := http.NewRequestWithContext(ctx, c.method, c.url, c.body)
			req.Header.Set("X-Keep", "1")
			resp, err := (&http.Client{Transport: run.rt}).Do(req)
			if req.Header.Get("Traceparent") != "" || req.Header.Get("X-Keep") != "1" {
				t.Errorf("the caller's request headers changed: %v", req.Header)
			}
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			} else if !strings.Contains(c.url, closedURL) {
				t.Fatalf("%s %s: %v", c.method, c.url, err)
			}
		}
		parent.End()
	}
	if len(seen) != 8 {
		t.Fatalf("upstream saw %d requests; want 8", len(seen))
	}
	refSpans, gotSpans := ref.ended(), got.ended()
	if len(gotSpans) != len(refSpans) || len(gotSpans) != 6 {
		t.Fatalf("spans: %d, otelhttp %d; want 6 (5 calls and the caller)", len(gotSpans), len(refSpans))
	}
	for i, g := range gotSpans {
		r := refSpans[i]
		if g.name != r.name || g.kind != r.kind || g.status != r.status || !maps.Equal(g.attrs, r.attrs) {
			t.Errorf("span %d:\n got %s %v %v %v\nwant %s %v %v %v", i, g.name, g.kind, g.status, g.attrs, r.name, r.kind, r.status, r.attrs)
		}
	}
	for i, g := range gotSpans[:4] {
		if g.kind != trace.SpanKindClient || g.parent.SpanID() != gotSpans[5].sc.SpanID() {
			t.Errorf("span %d: kind %v parent %v; want a client child of the caller", i, g.kind, g.parent)
		}
		if !strings.Contains(seen[4+i], g.sc.SpanID().String()) || !strings.Contains(seen[4+i], g.sc.TraceID().String()) {
			t.Errorf("call %d: upstream traceparent %q; want span %s", i, seen[4+i], g.sc.SpanID())
		}
	}
	if gotSpans[3].status != codes.Error || gotSpans[4].attrs["error.type"] == "" {
		t.Errorf("429 status %v, refused connection attrs %v; want an error status and error.type", gotSpans[3].status, gotSpans[4].attrs)
	}
	gm, rm := got.metrics(t), ref.metrics(t)
	for _, name := range []string{"http.client.request.duration s", "http.client.request.body.size By"} {
		if len(gm[name]) == 0 {
			t.Errorf("metric %q missing; got %v", name, slices.Collect(maps.Keys(gm)))
		}
	}
	if !maps.EqualFunc(gm, rm, slices.Equal) {
		t.Errorf("metrics differ\n got %v\nwant %v", gm, rm)
	}
}

// TestHTTPTransportSpanEndsWithBody: the client span covers the streamed body: it ends when the
// body is read to its end or closed, not when the headers arrive.
func TestHTTPTransportSpanEndsWithBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "data: 1\n\n")
	}))
	defer srv.Close()
	e := newOtelEnv()
	c := &http.Client{Transport: NewHTTPTransport(nil, WithHTTPTracerProvider(e.tp), WithHTTPMeterProvider(e.mp))}
	for _, readAll := range []bool{true, false} {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		before := len(e.ended())
		if readAll {
			_, _ = io.ReadAll(resp.Body)
		}
		after := len(e.ended())
		resp.Body.Close()
		final := len(e.ended())
		if wantAfter := before + btoi(readAll); before != final-1 || after != wantAfter {
			t.Errorf("readAll %v: spans ended before/after read/after close = %d/%d/%d", readAll, before, after, final)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestAttrSetCacheBound: past maxAttrSets keys the cache stops growing and still answers.
func TestAttrSetCacheBound(t *testing.T) {
	var c attrSetCache[int]
	build := func(k int) []attribute.KeyValue { return []attribute.KeyValue{attribute.Int("k", k)} }
	for k := range maxAttrSets + 10 {
		if o := c.get(k, build); len(o) != 1 {
			t.Fatalf("key %d: %d options", k, len(o))
		}
	}
	if n := len(*c.m.Load()); n != maxAttrSets {
		t.Errorf("cache holds %d sets; want %d", n, maxAttrSets)
	}
	if a, b := c.get(3, build), c.get(3, build); &a[0] != &b[0] {
		t.Error("a cached key built its set again")
	}
}
