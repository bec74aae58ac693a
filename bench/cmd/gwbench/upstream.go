package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// upstream is a zero-latency OpenAI-compatible server: every answer is precomputed, so what the
// benchmark sees on top of it is the gateway's own cost.
type upstream struct {
	chat   []byte
	chunks [][]byte
	srv    *http.Server
	addr   string
}

const chunkCount = 20

func newUpstream() *upstream {
	u := &upstream{
		chat: []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed answer from the benchmark upstream."},` +
			`"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":12,"completion_tokens":11,"total_tokens":23}}`),
	}
	u.chunks = append(u.chunks, []byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n"))
	for i := 0; i < chunkCount; i++ {
		u.chunks = append(u.chunks, fmt.Appendf(nil, `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{"content":"tok%02d "},"finish_reason":null}]}`+"\n\n", i))
	}
	u.chunks = append(u.chunks,
		[]byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"),
		[]byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}`+"\n\n"),
		[]byte("data: [DONE]\n\n"))
	return u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	if gjson.GetBytes(body, "stream").Bool() {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for _, c := range u.chunks {
			if _, err := w.Write(c); err != nil {
				return
			}
			_ = rc.Flush()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(u.chat)
}

func (u *upstream) start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("upstream listen: %w", err)
	}
	u.addr = ln.Addr().String()
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	return nil
}
