package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"

	gz "compress/gzip"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/grpczstd"
	"github.com/switchyard/switchyard/internal/provider"
)

func gzipWriter(w io.Writer) io.WriteCloser { return gz.NewWriter(w) }

const leverKey = "sk-lever-0123456789"

// h2cClient speaks HTTP/2 without TLS from the first byte (prior knowledge), never HTTP/1.1.
func h2cClient() *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{Protocols: &p}
}

// post sends a chat request with body r and returns the answer, its status and protocol.
func post(t *testing.T, tr http.RoundTripper, addr, key string, r io.Reader) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", r)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b), nil
}

const echoBody = `{"model":"mock/echo","messages":[{"role":"user","content":"hi"}]}`

func leverConfig() *Config {
	cfg := testConfig()
	cfg.Auth = auth.Config{Mode: auth.ModeAPIKey, APIKeys: []auth.APIKey{{Name: "k", Key: leverKey, Tenant: "t"}}}
	cfg.Server.BodyReadTimeout = 300 * time.Millisecond
	return cfg
}

// TestH2C: the REST listener answers HTTP/2 without TLS next to HTTP/1.1, and the edge's
// guarantees hold on it: credentials checked before the body (only the stream is reset, the
// connection stays usable), the body deadline, and the connection limit.
func TestH2C(t *testing.T) {
	inst := startT(t, leverConfig())
	h2c := h2cClient()
	defer h2c.CloseIdleConnections()

	resp, body, err := post(t, h2c, inst.HTTPAddr(), leverKey, strings.NewReader(echoBody))
	if err != nil || resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || !strings.Contains(body, `"content":"hi"`) {
		t.Fatalf("h2c prior knowledge: %v %v; body %s", resp, err, body)
	}
	resp, body, err = post(t, http.DefaultTransport, inst.HTTPAddr(), leverKey, strings.NewReader(echoBody))
	if err != nil || resp.StatusCode != http.StatusOK || resp.ProtoMajor != 1 {
		t.Fatalf("HTTP/1.1 beside it: %v %v; body %s", resp, err, body)
	}

	// A bad key with a body that never comes: 401 at once, the body unread.
	pr, pw := io.Pipe()
	defer pw.Close()
	resp, body, err = post(t, h2c, inst.HTTPAddr(), "sk-wrong", pr)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || resp.ProtoMajor != 2 || !strings.Contains(body, "invalid_api_key") {
		t.Fatalf("bad key over h2c: %v %v; body %s", resp, err, body)
	}
	// The same connection serves the next call.
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+inst.HTTPAddr()+"/v1/chat/completions", strings.NewReader(echoBody))
	req.Header.Set("Authorization", "Bearer "+leverKey)
	resp, err = h2c.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after a refusal: %v %v", resp, err)
	}
	resp.Body.Close()
	if !reused {
		t.Error("the refusal closed the HTTP/2 connection; only its stream should end")
	}

	// A body that stalls: 408 after body_read_timeout.
	pr, pw = io.Pipe()
	defer pw.Close()
	go func() { _, _ = io.WriteString(pw, `{"model":`) }()
	start := time.Now()
	resp, body, err = post(t, h2c, inst.HTTPAddr(), leverKey, pr)
	if err != nil || resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "request_timeout") {
		t.Fatalf("stalled body over h2c: %v %v; body %s", resp, err, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %v", d)
	}
}

func TestH2COff(t *testing.T) {
	cfg := leverConfig()
	cfg.Server.H2C = false
	inst := startT(t, cfg)
	if resp, _, err := post(t, h2cClient(), inst.HTTPAddr(), leverKey, strings.NewReader(echoBody)); err == nil {
		t.Fatalf("h2c with server.h2c false: %v, want a failure", resp)
	}
	if resp, body, err := post(t, http.DefaultTransport, inst.HTTPAddr(), leverKey, strings.NewReader(echoBody)); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP/1.1: %v %v %s", resp, err, body)
	}
}

// TestH2CMaxConnections: server.max_connections counts h2c connections like any other, while
// one h2c connection carries many calls at once.
func TestH2CMaxConnections(t *testing.T) {
	g := newGate()
	cfg := leverConfig()
	cfg.Server.MaxConnections = 1
	cfg.Providers = append(cfg.Providers, provider.Config{Name: "gate", Type: "gate"})
	inst := startT(t, cfg, WithProviderType("gate", g.factory))

	first := h2cClient()
	defer first.CloseIdleConnections()
	answers := make(chan int, 3)
	for range 3 { // three calls at once on the one connection
		go func() {
			resp, _, err := post(t, first, inst.HTTPAddr(), leverKey, strings.NewReader(`{"model":"gate/m","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				answers <- 0
				return
			}
			answers <- resp.StatusCode
		}()
	}
	for range 3 {
		select {
		case <-g.entered:
		case <-time.After(5 * time.Second):
			t.Fatal("the three calls did not all reach the provider over one connection")
		}
	}
	// A second connection waits to be accepted.
	second := h2cClient()
	defer second.CloseIdleConnections()
	done := make(chan error, 1)
	go func() {
		_, _, err := post(t, second, inst.HTTPAddr(), leverKey, strings.NewReader(echoBody))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a second connection was served beside the first (max_connections 1): %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(g.release)
	for range 3 {
		if code := <-answers; code != http.StatusOK {
			t.Errorf("gated call answered %d", code)
		}
	}
	first.CloseIdleConnections() // frees the one connection
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second connection was never served")
	}
}

// TestH2CBodyBudget: over h2c, a body held by a running call keeps its share of the body budget,
// so another call's body on the same connection that does not fit is answered 503.
func TestH2CBodyBudget(t *testing.T) {
	g := newGate()
	cfg := leverConfig()
	cfg.Server.MaxBodyBytes, cfg.Server.MaxInflightBodyBytes = 4096, 4096
	cfg.Providers = append(cfg.Providers, provider.Config{Name: "gate", Type: "gate"})
	inst := startT(t, cfg, WithProviderType("gate", g.factory))
	h2c := h2cClient()
	defer h2c.CloseIdleConnections()

	held := fmt.Sprintf(`{"model":"gate/m","messages":[{"role":"user","content":%q}]}`, strings.Repeat("x", 4000)) // about 4,060 of the 4,096 bytes
	answered := make(chan int, 1)
	go func() {
		resp, _, err := post(t, h2c, inst.HTTPAddr(), leverKey, strings.NewReader(held))
		if err != nil {
			answered <- 0
			return
		}
		answered <- resp.StatusCode
	}()
	select {
	case <-g.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the gated call never reached the provider")
	}
	resp, body, err := post(t, h2c, inst.HTTPAddr(), leverKey, strings.NewReader(echoBody))
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.ProtoMajor != 2 || !strings.Contains(body, "server_busy") {
		t.Fatalf("second body while the first holds the budget: %v %v; body %s", resp, err, body)
	}
	close(g.release)
	if code := <-answered; code != http.StatusOK {
		t.Fatalf("the gated call answered %d", code)
	}
	resp, body, err = post(t, h2c, inst.HTTPAddr(), leverKey, strings.NewReader(echoBody))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after the budget is back: %v %v; body %s", resp, err, body)
	}
}

// TestGRPCCompression: the gRPC listener accepts gzip and zstd calls.
func TestGRPCCompression(t *testing.T) {
	inst := startT(t, testConfig())
	client := pb.NewChatServiceClient(dialGRPC(t, inst.GRPCAddr()))
	long := strings.Repeat("compressible ", 1000)
	for _, c := range []string{"", gzip.Name, grpczstd.Name} {
		var opts []grpc.CallOption
		if c != "" {
			opts = append(opts, grpc.UseCompressor(c))
		}
		resp, err := client.CreateChatCompletion(context.Background(), &pb.CreateChatCompletionRequest{Model: "mock/echo",
			Messages: []*pb.ChatMessage{{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: long}}}}}, opts...)
		if err != nil {
			t.Fatalf("%q: %v", c, err)
		}
		if got := resp.GetChoices()[0].GetMessage().GetContent(); got != strings.TrimSpace(long) { // the mock echoes
			t.Errorf("%q: answer of %d bytes", c, len(got))
		}
	}
}

// TestRESTGzipThroughTheChain: a gzip body and a gzip answer through the whole instance.
func TestRESTGzipThroughTheChain(t *testing.T) {
	inst := startT(t, leverConfig())
	var zb bytes.Buffer
	zw := gzipWriter(&zb)
	long := strings.Repeat("compressible ", 200)
	fmt.Fprintf(zw, `{"model":"mock/echo","messages":[{"role":"user","content":%q}]}`, long)
	_ = zw.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://"+inst.HTTPAddr()+"/v1/chat/completions", &zb)
	req.Header.Set("Authorization", "Bearer "+leverKey)
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req) // asks for gzip and decodes it
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !resp.Uncompressed || !strings.Contains(string(body), strings.TrimSpace(long)) {
		t.Fatalf("status %d, answer compressed %v, body %.200s", resp.StatusCode, resp.Uncompressed, body)
	}
}
