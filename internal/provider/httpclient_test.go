package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

func TestNewTransportPoolAndProtocols(t *testing.T) {
	tr := newTransport(Config{MaxConnsPerHost: 8, IdleConnTimeout: 5 * time.Second})
	if tr.MaxConnsPerHost != 8 || tr.IdleConnTimeout != 5*time.Second {
		t.Errorf("MaxConnsPerHost %d, IdleConnTimeout %v; want 8, 5s", tr.MaxConnsPerHost, tr.IdleConnTimeout)
	}
	if tr := newTransport(Config{}); tr.MaxConnsPerHost != 0 || tr.IdleConnTimeout != 90*time.Second {
		t.Errorf("defaults: MaxConnsPerHost %d, IdleConnTimeout %v; want 0 (no bound), 90s", tr.MaxConnsPerHost, tr.IdleConnTimeout)
	}
	for _, c := range []struct {
		mode               string
		h1, h2, h2c, force bool
	}{
		{"", true, true, false, true},
		{HTTP2Auto, true, true, false, true},
		{HTTP2Off, true, false, false, false},
		{HTTP2H2C, false, true, true, true},
	} {
		p := newTransport(Config{HTTP2: c.mode}).Protocols
		if p.HTTP1() != c.h1 || p.HTTP2() != c.h2 || p.UnencryptedHTTP2() != c.h2c {
			t.Errorf("http2 %q: protocols %v", c.mode, p)
		}
	}
}

func TestValidateTransport(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string // "" for valid
	}{
		{Config{}, ""},
		{Config{MaxIdleConns: 64, MaxConnsPerHost: 128, IdleConnTimeout: time.Minute, HTTP2: "h2c"}, ""},
		{Config{HTTP2: "off"}, ""},
		{Config{MaxIdleConns: -1}, "max_idle_conns"},
		{Config{MaxConnsPerHost: -1}, "max_conns_per_host"},
		{Config{IdleConnTimeout: -time.Second}, "idle_conn_timeout"},
		{Config{HTTP2: "h3"}, `http2: "h3"`},
	} {
		err := ValidateTransport(c.cfg)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateTransport(%+v) = %v, want an error mentioning %q", c.cfg, err, c.want)
		}
	}
}

// get calls url with tr and returns the protocol version the answer came in.
func get(t *testing.T, tr http.RoundTripper, url string) int {
	t.Helper()
	proto, err := fetch(tr, url)
	if err != nil {
		t.Fatal(err)
	}
	return proto
}

func fetch(tr http.RoundTripper, url string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
		return 0, fmt.Errorf("body %q", b)
	}
	return resp.ProtoMajor, nil
}

func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

// TestUpstreamHTTP2: a TLS upstream offering h2 is spoken to in HTTP/2 unless http2 is off; a
// plaintext one speaking HTTP/2 only with http2: h2c.
func TestUpstreamHTTP2(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())

	var h2cProtocols http.Protocols
	h2cProtocols.SetHTTP1(true)
	h2cProtocols.SetUnencryptedHTTP2(true)
	h2cSrv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	h2cSrv.Config.Protocols = &h2cProtocols
	h2cSrv.Start()
	defer h2cSrv.Close()

	for _, c := range []struct {
		mode          string
		tlsProto, h2c int
	}{
		{"", 2, 1},
		{HTTP2Off, 1, 1},
		{HTTP2H2C, 2, 2},
	} {
		tr := newTransport(Config{HTTP2: c.mode})
		tr.TLSClientConfig.RootCAs = roots
		if got := get(t, tr, tlsSrv.URL); got != c.tlsProto {
			t.Errorf("http2 %q, TLS upstream: HTTP/%d, want HTTP/%d", c.mode, got, c.tlsProto)
		}
		if got := get(t, tr, h2cSrv.URL); got != c.h2c {
			t.Errorf("http2 %q, plaintext upstream: HTTP/%d, want HTTP/%d", c.mode, got, c.h2c)
		}
		tr.CloseIdleConnections()
	}
}

// TestMaxConnsPerHost: concurrent calls beyond the bound wait for a connection instead of dialing.
func TestMaxConnsPerHost(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		okHandler(w, r)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	tr := newTransport(Config{MaxConnsPerHost: 2})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := fetch(tr, srv.URL); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections for 8 concurrent calls, want 2", n)
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
