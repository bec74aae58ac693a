package telemetry

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// benchProviders are the process's providers without export: every span sampled and ended into
// no processor, metrics aggregated for a manual reader.
func benchProviders() (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
	return sdktrace.NewTracerProvider(), sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
}

var benchBody = []byte(`{"model":"mock/echo","messages":[{"role":"user","content":"hello"}]}`)

// BenchmarkHTTPHandler compares otelhttp's handler with NewHTTPHandler around a handler that does
// what the gateway's router does to the request (route as r.Pattern, body read) and answers JSON,
// for a chat request carrying a traceparent.
func BenchmarkHTTPHandler(b *testing.B) {
	tp, mp := benchProviders()
	answer := bytes.Repeat([]byte("x"), 400)
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Pattern = "/v1/chat/completions"
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(answer)
	})
	name := func(r *http.Request) string { return r.Method + " " + r.Pattern }
	for _, impl := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", next},
		{"otelhttp", otelhttp.NewHandler(next, "switchyard.rest", otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp),
			otelhttp.WithPropagators(traceContext), otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return name(r) }))},
		{"lean", NewHTTPHandler(next, WithHTTPTracerProvider(tp), WithHTTPMeterProvider(mp), WithHTTPPropagator(traceContext), WithHTTPSpanName(name))},
	} {
		b.Run(impl.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "http://127.0.0.1:8080/v1/chat/completions", bytes.NewReader(benchBody))
				r.RemoteAddr = "127.0.0.1:50000"
				r.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				r.Header.Set("User-Agent", "OpenAI/Python 1.0")
				w.Body.Reset()
				impl.h.ServeHTTP(w, r)
			}
		})
	}
}

// BenchmarkHTTPTransport compares otelhttp's transport with NewHTTPTransport for an upstream chat
// call (POST with a body, JSON answer read and closed) to a local server, inside a caller's span.
func BenchmarkHTTPTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"id":"x","choices":[]}`)
	}))
	defer srv.Close()
	tp, mp := benchProviders()
	base := &http.Transport{MaxIdleConnsPerHost: 16}
	defer base.CloseIdleConnections()
	ctx, span := tp.Tracer("bench").Start(context.Background(), "caller")
	defer span.End()
	for _, impl := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", base},
		{"otelhttp", otelhttp.NewTransport(base, otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp), otelhttp.WithPropagators(traceContext))},
		{"lean", NewHTTPTransport(base, WithHTTPTracerProvider(tp), WithHTTPMeterProvider(mp), WithHTTPPropagator(traceContext))},
	} {
		b.Run(impl.name, func(b *testing.B) {
			c := &http.Client{Transport: impl.rt}
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(string(benchBody)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkHTTPTransportOnly is BenchmarkHTTPTransport without the network: the base transport
// answers from memory, so the figures are the instrumentation's own cost.
func BenchmarkHTTPTransportOnly(b *testing.B) {
	tp, mp := benchProviders()
	answer := `{"id":"x","choices":[]}`
	base := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		return &http.Response{StatusCode: 200, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(answer)), ContentLength: int64(len(answer)), Request: r}, nil
	})
	ctx, span := tp.Tracer("bench").Start(context.Background(), "caller")
	defer span.End()
	for _, impl := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", base},
		{"otelhttp", otelhttp.NewTransport(base, otelhttp.WithTracerProvider(tp), otelhttp.WithMeterProvider(mp), otelhttp.WithPropagators(traceContext))},
		{"lean", NewHTTPTransport(base, WithHTTPTracerProvider(tp), WithHTTPMeterProvider(mp), WithHTTPPropagator(traceContext))},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://127.0.0.1:9999/v1/chat/completions", bytes.NewReader(benchBody))
				req.Header.Set("Content-Type", "application/json")
				resp, err := impl.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
