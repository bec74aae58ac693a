package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func gzipped(t testing.TB, s []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := zw.Write(s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// postRaw POSTs body as is with the header pairs hdr; chunked hides its length.
func postRaw(t *testing.T, url string, body []byte, chunked bool, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r)
	}
	req, err := http.NewRequest(http.MethodPost, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestGzipRequestBody(t *testing.T) {
	h := newHarness(t, Options{MaxBodyBytes: 4096, Authenticate: keyCheck})
	good := []string{"Authorization", "Bearer good", "Content-Encoding", "gzip"}
	for _, chunked := range []bool{false, true} {
		resp, body := postRaw(t, h.url+"/v1/chat/completions", gzipped(t, []byte(chatBody)), chunked, good...)
		wantStatus(t, resp, body, http.StatusOK)
		if got := at(t, object(t, body), "choices", 0, "message", "content"); got != "echo: hi" {
			t.Errorf("content = %v", got)
		}
		req, md := h.chat.lastRequest()
		if req.GetModel() != "mock/echo" {
			t.Errorf("service got %v", req)
		}
		if v := md.Get("grpcgateway-content-encoding"); len(v) != 0 {
			t.Errorf("the decoded request still says Content-Encoding %q", v)
		}
	}
	// Embeddings and a stream, with the coding spelled differently.
	resp, body := postRaw(t, h.url+"/v1/embeddings", gzipped(t, []byte(`{"model":"m","input":["a","b"]}`)), false,
		"Authorization", "Bearer good", "Content-Encoding", "GZIP")
	wantStatus(t, resp, body, http.StatusOK)
	if n := len(object(t, body)["data"].([]any)); n != 2 {
		t.Errorf("%d vectors, want 2", n)
	}
	resp, body = postRaw(t, h.url+"/v1/chat/completions",
		gzipped(t, []byte(`{"model":"mock/echo","stream":true,"messages":[{"role":"user","content":"hi"}]}`)), true, good...)
	wantStatus(t, resp, body, http.StatusOK)
	if !strings.Contains(string(body), "data: [DONE]") {
		t.Errorf("stream body %s", body)
	}
	// Credentials are still checked before any of the body is read.
	c := openPost(t, h.url, "/v1/chat/completions", 3000, "", "Content-Encoding: gzip")
	resp, body = readAnswer(t, c, 5*time.Second)
	wantStatus(t, resp, body, http.StatusUnauthorized)
	wantCode(t, body, "authentication_error", "invalid_api_key")
}

func TestGzipRequestBodyRefused(t *testing.T) {
	const limit = 4096
	h := newHarness(t, Options{MaxBodyBytes: limit, MaxInflightBodyBytes: 4 * limit})
	// A smaller budget than the limit (tests only; the config refuses it) shows it counts decoded bytes.
	small := newHarness(t, Options{MaxBodyBytes: limit, MaxInflightBodyBytes: 3000})
	bomb := gzipped(t, append([]byte(`{"model":"mock/echo","messages":[{"role":"user","content":"`), make([]byte, 2<<20)...))
	if len(bomb) > limit {
		t.Fatalf("the bomb is %d bytes compressed, not under the limit", len(bomb))
	}
	noise := make([]byte, 2*limit)
	_, _ = rand.Read(noise)
	incompressible := gzipped(t, noise)
	half := gzipped(t, []byte(chatBody))
	half = half[:len(half)/2]

	tests := []struct {
		name     string
		h        *harness
		body     []byte
		chunked  bool
		coding   string
		status   int
		typ      string
		code     any
		wantText string
	}{
		{"bomb", h, bomb, false, "gzip", http.StatusRequestEntityTooLarge, "invalid_request_error", nil, "larger than the limit"},
		{"bomb, chunked", h, bomb, true, "gzip", http.StatusRequestEntityTooLarge, "invalid_request_error", nil, "larger than the limit"},
		{"compressed bytes over the limit, chunked", h, incompressible, true, "gzip", http.StatusRequestEntityTooLarge, "invalid_request_error", nil, "larger than the limit"},
		// Decoded bytes are what the budget counts: 3,100 decoded bytes never fit in 3,000.
		{"decoded body over the budget", small, gzipped(t, []byte(chatBody+strings.Repeat(" ", 3100))), false, "gzip", http.StatusServiceUnavailable, "api_error", "server_busy", ""},
		{"not gzip", h, []byte(chatBody), false, "gzip", http.StatusBadRequest, "invalid_request_error", nil, "gzip"},
		{"truncated gzip", h, half, false, "gzip", http.StatusBadRequest, "invalid_request_error", nil, "gzip"},
		{"zstd", h, []byte(chatBody), false, "zstd", http.StatusUnsupportedMediaType, "invalid_request_error", "unsupported_content_encoding", "zstd"},
		{"br", h, []byte(chatBody), false, "br", http.StatusUnsupportedMediaType, "invalid_request_error", "unsupported_content_encoding", "br"},
		{"gzip twice", h, gzipped(t, gzipped(t, []byte(chatBody))), false, "gzip, gzip", http.StatusUnsupportedMediaType, "invalid_request_error", "unsupported_content_encoding", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := postRaw(t, tt.h.url+"/v1/chat/completions", tt.body, tt.chunked, "Content-Encoding", tt.coding)
			wantStatus(t, resp, body, tt.status)
			e := wantOpenAIError(t, body, tt.typ)
			if e["code"] != tt.code {
				t.Errorf("error.code = %v, want %v", e["code"], tt.code)
			}
			if msg, _ := e["message"].(string); !strings.Contains(msg, tt.wantText) {
				t.Errorf("error.message = %q, want it to mention %q", msg, tt.wantText)
			}
		})
	}
	// identity is no coding at all.
	resp, body := postRaw(t, h.url+"/v1/chat/completions", []byte(chatBody), false, "Content-Encoding", "identity")
	wantStatus(t, resp, body, http.StatusOK)
}

func TestGzipRequestBodyReadTimeout(t *testing.T) {
	h := newHarness(t, Options{BodyReadTimeout: 300 * time.Millisecond})
	z := gzipped(t, []byte(chatBody))
	c := openPost(t, h.url, "/v1/chat/completions", len(z), string(z[:len(z)/2]), "Content-Encoding: gzip") // then nothing
	resp, body := readAnswer(t, c, 10*time.Second)
	wantStatus(t, resp, body, http.StatusRequestTimeout)
	wantCode(t, body, "invalid_request_error", "request_timeout")
}

// TestCompressedStream: with CompressStreams, an event stream is compressed when asked, and each
// event arrives while the next is still being produced.
func TestCompressedStream(t *testing.T) {
	for _, compress := range []bool{false, true} {
		h := newHarness(t, Options{CompressStreams: compress})
		req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions",
			strings.NewReader(`{"model":"mock/gated","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		wantStatus(t, resp, nil, http.StatusOK)
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != compress {
			t.Fatalf("CompressStreams %v: Content-Encoding %q", compress, resp.Header.Get("Content-Encoding"))
		}
		var r io.Reader = resp.Body
		if compress {
			if r, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		br := bufio.NewReader(r)
		got := make(chan string, 1)
		go func() {
			line, _ := br.ReadString('\n')
			got <- line
		}()
		select {
		case line := <-got:
			if !strings.HasPrefix(line, "data: {") || !strings.Contains(line, `"role":"assistant"`) {
				t.Fatalf("first event %q", line)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("CompressStreams %v: the first event did not arrive before the stream went on", compress)
		}
		close(h.chat.gate)
		rest, err := io.ReadAll(br)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(rest), `"content":" there"`) || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
			t.Errorf("rest of the stream %q", rest)
		}
	}
}
