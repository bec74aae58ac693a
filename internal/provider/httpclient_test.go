package provider

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestNewTransport(t *testing.T) {
	cases := []struct {
		name     string
		cfg      Config
		wantIdle int
	}{
		{"default pool", Config{}, 256},
		{"configured pool", Config{MaxIdleConns: 32}, 32},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTransport(c.cfg)
			if tr.MaxIdleConnsPerHost != c.wantIdle {
				t.Errorf("MaxIdleConnsPerHost = %d, want %d", tr.MaxIdleConnsPerHost, c.wantIdle)
			}
			if !tr.ForceAttemptHTTP2 {
				t.Error("ForceAttemptHTTP2 is off")
			}
			if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
				t.Error("TLS minimum is not 1.2")
			}
			if tr.IdleConnTimeout <= 0 || tr.TLSHandshakeTimeout <= 0 || tr.ResponseHeaderTimeout <= 0 {
				t.Errorf("missing timeouts: %+v", tr)
			}
		})
	}
}

func TestNewHTTPClientNoOverallTimeout(t *testing.T) {
	if c := NewHTTPClient(Config{Timeout: 5}); c.Timeout != 0 {
		t.Errorf("Client.Timeout = %v, want 0 (it would cut streams)", c.Timeout)
	}
}

func TestNewHTTPClientReusesConnections(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c := NewHTTPClient(Config{})
	var reused []bool
	for range 3 {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if len(reused) != 3 || reused[0] || !reused[1] || !reused[2] {
		t.Errorf("connection reuse = %v, want [false true true]", reused)
	}
}

func TestNewHTTPClientChildSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	gotParent := make(chan trace.SpanContext, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		gotParent <- trace.SpanContextFromContext(ctx)
	}))
	defer srv.Close()

	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL, nil)
	resp, err := NewHTTPClient(Config{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	span.End()

	remote := <-gotParent
	if remote.TraceID() != span.SpanContext().TraceID() {
		t.Errorf("upstream saw trace %s, want %s", remote.TraceID(), span.SpanContext().TraceID())
	}
	var client *tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.SpanKind == trace.SpanKindClient {
			client = &s
		}
	}
	if client == nil {
		t.Fatal("no client span recorded")
	}
	if client.Parent.SpanID() != span.SpanContext().SpanID() {
		t.Errorf("client span parent = %s, want %s", client.Parent.SpanID(), span.SpanContext().SpanID())
	}
	if remote.SpanID() != client.SpanContext.SpanID() {
		t.Errorf("upstream's parent span = %s, want the client span %s", remote.SpanID(), client.SpanContext.SpanID())
	}
}
