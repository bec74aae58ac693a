package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

// openPost connects to base (an http:// URL) and sends the headers of a POST to path announcing
// n body bytes (n < 0: chunked, no Content-Length) with the extra header lines hdr, then sent.
func openPost(t *testing.T, base, path string, n int, sent string, hdr ...string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n", path)
	if n >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", n)
	} else {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	}
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + sent)
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	return c
}

// readAnswer reads the response on c, failing after within.
func readAnswer(t *testing.T, c net.Conn, within time.Duration) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %v: %v", within, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func wantCode(t *testing.T, body []byte, typ, code string) {
	t.Helper()
	if got := wantOpenAIError(t, body, typ)["code"]; got != code {
		t.Errorf("error.code = %v, want %q; body %s", got, code, body)
	}
}

// keyCheck admits "Bearer good" only.
func keyCheck(r *http.Request) error {
	if r.Header.Get("Authorization") != "Bearer good" {
		return &llm.Error{Kind: llm.KindUnauthenticated, Code: "invalid_api_key", Message: "Incorrect API key provided."}
	}
	return nil
}

const chatBody = `{"model":"mock/echo","messages":[{"role":"user","content":"hi"}]}`

func TestEdgeRefusesBeforeTheBody(t *testing.T) {
	h := newHarness(t, Options{Authenticate: keyCheck})
	for _, auth := range []string{"", "Authorization: Bearer bad", "Authorization: Basic Zm9vOmJhcg=="} {
		t.Run(auth, func(t *testing.T) {
			var hdr []string
			if auth != "" {
				hdr = append(hdr, auth)
			}
			c := openPost(t, h.url, "/v1/chat/completions", 30<<20, "", hdr...) // announces 30 MiB, sends none
			resp, body := readAnswer(t, c, 5*time.Second)
			wantStatus(t, resp, body, http.StatusUnauthorized)
			wantCode(t, body, "authentication_error", "invalid_api_key")
			if !resp.Close {
				t.Error("the connection stays open after a refusal with an unread body")
			}
		})
	}
	if req, _ := h.chat.lastRequest(); req != nil {
		t.Errorf("a refused request reached the service: %v", req)
	}
	resp, body := do(t, "POST", h.url+"/v1/chat/completions", chatBody, "Authorization", "Bearer good")
	wantStatus(t, resp, body, http.StatusOK)
	// Requests without a body are left to the chain.
	resp, body = do(t, "GET", h.url+"/v1/models", "")
	wantStatus(t, resp, body, http.StatusOK)
}

func TestEdgeBodyBudget(t *testing.T) {
	h := newHarness(t, Options{MaxBodyBytes: 4096, MaxInflightBodyBytes: 1000})
	// A body larger than the whole budget can never be read.
	c := openPost(t, h.url, "/v1/chat/completions", 2000, "")
	resp, body := readAnswer(t, c, 5*time.Second)
	wantStatus(t, resp, body, http.StatusServiceUnavailable)
	wantCode(t, body, "api_error", "server_busy")
	if got := resp.Header.Get("Retry-After"); got == "" {
		t.Error("no Retry-After on 503 server_busy")
	}

	// A slow body holds its share until its call ends; meanwhile a body that does not fit waits
	// briefly, then is answered 503.
	slow := openPost(t, h.url, "/v1/chat/completions", 990, `{"model":`)
	time.Sleep(100 * time.Millisecond) // let the server take slow's share
	c = openPost(t, h.url, "/v1/chat/completions", len(chatBody), chatBody)
	resp, body = readAnswer(t, c, 5*time.Second)
	wantStatus(t, resp, body, http.StatusServiceUnavailable)
	wantCode(t, body, "api_error", "server_busy")

	// Chunked bodies take their shares while they are read.
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(chatBody), chatBody)
	resp, body = readAnswer(t, openPost(t, h.url, "/v1/chat/completions", -1, chunked), 5*time.Second)
	wantStatus(t, resp, body, http.StatusServiceUnavailable)

	_ = slow.Close() // gives the share back once the server sees the body end early
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body = do(t, "POST", h.url+"/v1/chat/completions", chatBody)
		if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantStatus(t, resp, body, http.StatusOK)
	resp, body = readAnswer(t, openPost(t, h.url, "/v1/chat/completions", -1, chunked), 5*time.Second)
	wantStatus(t, resp, body, http.StatusOK)
}

func TestEdgeBodyReadTimeout(t *testing.T) {
	h := newHarness(t, Options{BodyReadTimeout: 300 * time.Millisecond})
	c := openPost(t, h.url, "/v1/chat/completions", 100, `{"mo`) // then nothing
	start := time.Now()
	resp, body := readAnswer(t, c, 10*time.Second)
	wantStatus(t, resp, body, http.StatusRequestTimeout)
	wantCode(t, body, "invalid_request_error", "request_timeout")
	if !resp.Close {
		t.Error("the connection stays open after a body timeout")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cut off after %v", d)
	}
	// The deadline covers the body only: a call that takes longer than it is answered.
	resp, body = do(t, "POST", h.url+"/v1/chat/completions", chatBody)
	wantStatus(t, resp, body, http.StatusOK)
}
