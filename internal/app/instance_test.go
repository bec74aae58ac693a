package app

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
)

// gate is a provider whose answers wait until the test opens the gate (or the call is cancelled).
type gate struct {
	entered chan struct{} // receives once per call that started waiting
	release chan struct{} // closed by the test to let calls finish
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 16), release: make(chan struct{})} }

func (g *gate) factory(provider.Config) (llm.Provider, error) { return g, nil }

func (g *gate) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, llm.Wrap(llm.KindUnavailable, ctx.Err(), "gate: cancelled")
	}
	text := "released"
	return &llm.ChatResponse{
		ID: "chatcmpl-gate", Model: req.Model, Created: 1,
		Choices: []llm.Choice{{Content: &text, FinishReason: llm.FinishStop}},
	}, nil
}

// ChatStream sends "first" at once, then waits at the gate before sending "second" and ending.
func (g *gate) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	return &gateStream{g: g, ctx: ctx, model: req.Model}, nil
}

type gateStream struct {
	g     *gate
	ctx   context.Context
	model string
	n     int
}

func (s *gateStream) Recv() (*llm.Chunk, error) {
	s.n++
	var text string
	switch s.n {
	case 1:
		text = "first"
	case 2:
		s.g.entered <- struct{}{}
		select {
		case <-s.g.release:
		case <-s.ctx.Done():
			return nil, llm.Wrap(llm.KindUnavailable, s.ctx.Err(), "gate: cancelled")
		}
		text = "second"
	default:
		return nil, io.EOF
	}
	return &llm.Chunk{ID: "chatcmpl-gate", Model: s.model, Created: 1, Choices: []llm.ChunkChoice{{Content: &text}}}, nil
}

func (s *gateStream) Close() error { return nil }

// testConfig is the default config on ephemeral loopback ports plus the given providers.
func testConfig(extra ...provider.Config) *Config {
	cfg := DefaultConfig()
	cfg.Server.HTTPAddr, cfg.Server.GRPCAddr, cfg.Server.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Providers = append(cfg.Providers, extra...)
	return cfg
}

var quiet = WithLogger(slog.New(slog.DiscardHandler))

func startT(t *testing.T, cfg *Config, opts ...Option) *Instance {
	t.Helper()
	cfg.SetDataDir(t.TempDir())
	inst, err := Start(context.Background(), cfg, append([]Option{quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := inst.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return inst
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func chat(client *http.Client, addr, model string, header http.Header) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestStartServes(t *testing.T) {
	inst := startT(t, testConfig())
	for _, a := range []string{inst.HTTPAddr(), inst.GRPCAddr(), inst.AdminAddr()} {
		if _, port, _ := net.SplitHostPort(a); port == "0" || port == "" {
			t.Fatalf("address %q has no bound port", a)
		}
	}

	hc := healthpb.NewHealthClient(dialGRPC(t, inst.GRPCAddr()))
	resp, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health Check = %v, %v; want SERVING", resp, err)
	}

	admin := "http://" + inst.AdminAddr()
	for _, path := range []string{"/healthz", "/readyz", "/debug/pprof/"} {
		if code, body := get(t, admin+path); code != http.StatusOK {
			t.Errorf("GET %s = %d %s, want 200", path, code, body)
		}
	}

	code, body, err := chat(http.DefaultClient, inst.HTTPAddr(), "mock/echo", nil)
	if err != nil || code != http.StatusOK || !strings.Contains(body, `"choices"`) {
		t.Fatalf("chat via REST = %d %s %v, want 200 with choices", code, body, err)
	}
	code, body, _ = chat(http.DefaultClient, inst.HTTPAddr(), "mock/nope", nil)
	if code != http.StatusNotFound || !strings.Contains(body, "model_not_found") {
		t.Errorf("chat with an unknown model = %d %s, want 404 model_not_found", code, body)
	}

	code, metrics := get(t, admin+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{"go_goroutines", "otelgrpc", "rpc_server"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestShutdownDrainsInFlightRequests(t *testing.T) {
	g := newGate()
	inst := startT(t, testConfig(provider.Config{Name: "gate", Type: "gate"}), WithProviderType("gate", g.factory))

	// Watch health before shutting down: the stream tells us when shutdown has begun.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	watch, err := healthpb.NewHealthClient(dialGRPC(t, inst.GRPCAddr())).Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first health status = %v, %v; want SERVING", st, err)
	}

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	client := &http.Client{Transport: &http.Transport{}}
	go func() {
		code, body, err := chat(client, inst.HTTPAddr(), "gate/x", nil)
		done <- result{code, body, err}
	}()
	<-g.entered // the request is in flight, inside the provider

	shutdown := make(chan error, 1)
	go func() { shutdown <- inst.Shutdown(context.Background()) }()

	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health status after Shutdown = %v, %v; want NOT_SERVING", st, err)
	}
	stopWatch()
	if code, _ := get(t, "http://"+inst.AdminAddr()+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d, want 503", code)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a request was in flight", err)
	default:
	}

	close(g.release)
	r := <-done
	if r.err != nil || r.code != http.StatusOK || !strings.Contains(r.body, "released") {
		t.Fatalf("in-flight request = %d %s %v, want 200 with the answer", r.code, r.body, r.err)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	<-inst.Done()
	if _, err := net.Dial("tcp", inst.HTTPAddr()); err == nil {
		t.Error("REST listener still accepts connections after shutdown")
	}
}

func TestShutdownDrainsStreams(t *testing.T) {
	g := newGate()
	inst := startT(t, testConfig(provider.Config{Name: "gate", Type: "gate"}), WithProviderType("gate", g.factory))
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	watch, err := healthpb.NewHealthClient(dialGRPC(t, inst.GRPCAddr())).Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest(http.MethodPost, "http://"+inst.HTTPAddr()+"/v1/chat/completions",
		strings.NewReader(`{"model":"gate/x","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream response = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	<-g.entered // "first" is on its way; the stream waits at the gate

	shutdown := make(chan error, 1)
	go func() { shutdown <- inst.Shutdown(context.Background()) }()
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health status after Shutdown = %v, %v; want NOT_SERVING", st, err)
	}
	stopWatch()

	close(g.release)
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the stream during shutdown: %v (got %q)", err, body)
	}
	for _, want := range []string{`"first"`, `"second"`, "data: [DONE]"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("stream lacks %s:\n%s", want, body)
		}
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
}

func TestShutdownDeadlineCancelsStuckRequests(t *testing.T) {
	g := newGate() // never released
	cfg := testConfig(provider.Config{Name: "gate", Type: "gate"})
	cfg.Server.ShutdownTimeout = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.SetDataDir(t.TempDir())
	inst, err := Start(ctx, cfg, quiet, WithProviderType("gate", g.factory))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := chat(&http.Client{Transport: &http.Transport{}}, inst.HTTPAddr(), "gate/x", nil)
		done <- err
	}()
	<-g.entered
	cancel() // stopping through the context works like Shutdown
	if err := inst.Wait(); err != nil {
		t.Fatalf("Wait = %v", err)
	}
	<-done // the stuck request ended (with an error or an error response) instead of hanging
}

func TestStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	cases := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"port in use", func(c *Config) { c.Server.AdminAddr = busy.Addr().String() }, "listen admin"},
		{"invalid config", func(c *Config) { c.Providers[0].Type = "nope" }, `unknown type "nope"`},
		{"not loopback without auth", func(c *Config) { c.Server.HTTPAddr = "0.0.0.0:0" }, "auth.mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.mutate(cfg)
			cfg.SetDataDir(t.TempDir())
			inst, err := Start(context.Background(), cfg, quiet)
			if err == nil {
				_ = inst.Shutdown(context.Background())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Start = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestOneTrace shows that a REST request carrying a traceparent yields one trace: the REST span,
// the gRPC server span (with loopback also the gateway's gRPC client span) and the upstream HTTP
// call, and that the upstream receives the same trace id.
func TestOneTrace(t *testing.T) {
	for _, tc := range []struct {
		transport              string
		wantServer, wantClient int
	}{
		// server: REST + gRPC; client: upstream HTTP (+ gateway → gRPC over loopback).
		{TransportInproc, 2, 1},
		{TransportLoopback, 2, 2},
	} {
		t.Run(tc.transport, func(t *testing.T) { testOneTrace(t, tc.transport, tc.wantServer, tc.wantClient) })
	}
}

func testOneTrace(t *testing.T, transport string, wantServer, wantClient int) {
	var mu sync.Mutex
	var upstreamTraceparent string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamTraceparent = r.Header.Get("Traceparent")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-x",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"traced"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	defer upstream.Close()

	spans := tracetest.NewInMemoryExporter()
	cfg := testConfig(provider.Config{
		Name: "up", Type: "openai", BaseURL: upstream.URL, APIKey: "k", Models: []string{"gpt-x"},
	})
	cfg.Server.GatewayTransport = transport
	inst := startT(t, cfg, WithSpanExporter(keepSpans{spans}))

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	code, body, err := chat(http.DefaultClient, inst.HTTPAddr(), "up/gpt-x",
		http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	if err != nil || code != http.StatusOK || !strings.Contains(body, "traced") {
		t.Fatalf("chat = %d %s %v", code, body, err)
	}
	mu.Lock()
	if !strings.Contains(upstreamTraceparent, traceID) {
		t.Errorf("upstream traceparent = %q, want trace %s", upstreamTraceparent, traceID)
	}
	mu.Unlock()

	// The REST server span may end just after the client has read the response; shutting down
	// waits for every handler, and the exporter is synchronous.
	if err := inst.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, s := range spans.GetSpans() {
		if s.SpanContext.TraceID().String() == traceID {
			kinds[s.SpanKind.String()]++
		}
	}
	if kinds["server"] < wantServer || kinds["client"] < wantClient {
		t.Errorf("spans in trace by kind = %v, want at least %d server and %d client spans", kinds, wantServer, wantClient)
	}
}

// keepSpans keeps the recorded spans when the instance shuts its exporters down.
type keepSpans struct{ *tracetest.InMemoryExporter }

func (keepSpans) Shutdown(context.Context) error { return nil }

func TestLoopbackTarget(t *testing.T) {
	cases := []struct {
		addr net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9090}, "127.0.0.1:9090"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 9090}, "127.0.0.1:9090"},
		{&net.TCPAddr{Port: 9090}, "127.0.0.1:9090"},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, "127.0.0.1:1"},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 2}, "[::1]:2"},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 3}, "10.0.0.5:3"},
	}
	for _, tc := range cases {
		if got := loopbackTarget(tc.addr); got != tc.want {
			t.Errorf("loopbackTarget(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
