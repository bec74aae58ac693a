package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startEdge starts Switchyard with API-key auth, the mock provider and the server settings
// server (YAML flow mapping entries, e.g. "body_read_timeout: 1s").
func startEdge(t *testing.T, server string) string {
	t.Helper()
	inst := startYAML(t, fmt.Sprintf(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0, shutdown_timeout: 5s, %s}
auth: {mode: api_key, api_keys: [{name: e2e, key: %q, tenant: e2e}]}
providers: [{name: mock, type: mock, models: [echo]}]
`, server, clientKey))
	return inst.HTTPAddr()
}

const edgeChatBody = `{"model":"mock/echo","messages":[{"role":"user","content":"hi"}]}`

// rawHead is the head of a chat completions POST announcing length body bytes with key.
func rawHead(key string, length int) string {
	return fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", key, length)
}

// dial connects to addr and writes data.
func dial(t *testing.T, addr, data string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, data); err != nil {
		t.Fatal(err)
	}
	return c
}

// edgeAnswer reads one response from c within d; closes reports Connection: close.
func edgeAnswer(t *testing.T, c net.Conn, d time.Duration) (a httpAnswer, closes bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		defer resp.Body.Close()
		a.body, err = io.ReadAll(resp.Body)
	}
	if err != nil {
		t.Fatalf("no response within %v: %v", d, err)
	}
	a.status, a.header = resp.StatusCode, resp.Header
	return a, resp.Close
}

// edgeError checks a is OpenAI's error shape with status, type and code.
func edgeError(t *testing.T, a httpAnswer, status int, typ, code string) {
	t.Helper()
	if e := openAIError(t, a, status, typ); e["code"] != code {
		t.Errorf("error.code = %v, want %q", e["code"], code)
	}
}

// edgeChat sends a chat completion with the client key and returns the answer and how long it
// took.
func edgeChat(addr string) (a httpAnswer, took time.Duration, err error) {
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(edgeChatBody))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return a, 0, err
	}
	defer resp.Body.Close()
	a.body, err = io.ReadAll(resp.Body)
	a.status, a.header = resp.StatusCode, resp.Header
	return a, time.Since(start), err
}

// chatOK is edgeChat failing on anything but 200.
func chatOK(addr string) (time.Duration, error) {
	a, took, err := edgeChat(addr)
	if err == nil && a.status != http.StatusOK {
		err = fmt.Errorf("status %d: %s", a.status, a.body)
	}
	return took, err
}

// TestEdgeRefusesBeforeBody: a client with a bad key announcing 30 MiB gets 401 at once, without
// sending the body; 16 such clients uploading 30 MiB each neither hold the server's memory nor
// stall real traffic.
func TestEdgeRefusesBeforeBody(t *testing.T) {
	addr := startEdge(t, "body_read_timeout: 20s")
	const announced = 30 << 20

	c := dial(t, addr, rawHead("sk-wrong", announced))
	start := time.Now()
	a, closes := edgeAnswer(t, c, 5*time.Second)
	edgeError(t, a, http.StatusUnauthorized, "authentication_error", "invalid_api_key")
	if d := time.Since(start); d > time.Second {
		t.Errorf("401 after %v, want it at once (the body deadline is 20s)", d)
	}
	if !closes {
		t.Error("the connection is kept after refusing an unread body")
	}

	// 16 clients upload 30 MiB bodies with a bad key, over and over, while real traffic runs.
	stop := make(chan struct{})
	var attackers sync.WaitGroup
	var refused atomic.Int64
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 16 {
		attackers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					continue
				}
				_, _ = io.WriteString(c, rawHead("sk-wrong", announced))
				go func() { // upload until the server hangs up
					for range announced / len(chunk) {
						if _, err := c.Write(chunk); err != nil {
							return
						}
					}
				}()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode == http.StatusUnauthorized {
					refused.Add(1)
				}
				_ = c.Close()
			}
		})
	}
	var peak atomic.Uint64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	var slowest time.Duration
	for range 20 {
		d, err := chatOK(addr)
		if err != nil {
			t.Errorf("real traffic under attack: %v", err)
			continue
		}
		slowest = max(slowest, d)
		time.Sleep(25 * time.Millisecond)
	}
	close(stop)
	attackers.Wait()
	<-sampled
	t.Logf("%d refusals; slowest real request %v; peak heap in use %d MiB (this process: server and attackers)",
		refused.Load(), slowest, peak.Load()>>20)
	if refused.Load() < 16 {
		t.Errorf("only %d refusals", refused.Load())
	}
	if slowest > 2*time.Second {
		t.Errorf("a real request took %v under attack", slowest)
	}
	// Reading the 16 bodies would take 480 MiB; the attackers' own buffers are 1 MiB.
	if p := peak.Load(); p > 256<<20 {
		t.Errorf("heap in use peaked at %d MiB under attack", p>>20)
	}
}

// TestEdgeCutsOffSlowClients: headers or a body dribbled byte by byte are cut off by the
// timeouts.
func TestEdgeCutsOffSlowClients(t *testing.T) {
	addr := startEdge(t, "read_header_timeout: 500ms, body_read_timeout: 500ms")
	dribble := func(c net.Conn, s string) (cutAfter time.Duration) {
		start := time.Now()
		for i := range len(s) {
			if _, err := c.Write([]byte{s[i]}); err != nil {
				return time.Since(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		return -1
	}

	t.Run("headers", func(t *testing.T) {
		c := dial(t, addr, "POST /v1/chat/completions HTTP/1.1\r\n")
		done := make(chan time.Duration, 1)
		go func() { done <- dribble(c, strings.Repeat("X-Slow: a\r\n", 100)) }()
		// The server hangs up without an answer: the read ends within a few seconds.
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		_, err := io.Copy(io.Discard, c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the connection still open after %v of dribbled headers", time.Since(start))
		}
		_ = c.Close()
		<-done
	})

	t.Run("body", func(t *testing.T) {
		c := dial(t, addr, rawHead(clientKey, len(edgeChatBody)))
		go dribble(c, edgeChatBody)
		a, closes := edgeAnswer(t, c, 10*time.Second)
		edgeError(t, a, http.StatusRequestTimeout, "invalid_request_error", "request_timeout")
		if !closes {
			t.Error("the connection is kept after a body timeout")
		}
	})

	if _, err := chatOK(addr); err != nil {
		t.Fatalf("a normal request after the slow clients: %v", err)
	}
}

// TestEdgeBodyBudget: with the body budget taken by a client that sends its body slowly, another
// request is answered 503 server_busy with Retry-After, not queued without bound.
func TestEdgeBodyBudget(t *testing.T) {
	addr := startEdge(t, "max_body_bytes: 65536, max_inflight_body_bytes: 65536, body_read_timeout: 20s")
	dial(t, addr, rawHead(clientKey, 65500)+`{"model":`) // holds 65500 bytes of the budget
	time.Sleep(200 * time.Millisecond)                   // for the server to take its share

	a, _, err := edgeChat(addr)
	if err != nil {
		t.Fatal(err)
	}
	edgeError(t, a, http.StatusServiceUnavailable, "api_error", "server_busy")
	if a.header.Get("Retry-After") == "" {
		t.Error("503 server_busy without Retry-After")
	}
}
