package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeOpenAI is a real HTTP server speaking OpenAI's wire format. The model name picks the
// behaviour, so one upstream serves every scenario:
//
//	gpt-ok       text answer "pong: <last user text>" (JSON or SSE, usage when asked)
//	gpt-tools    a call to the first tool offered
//	err-401, err-429, err-500   OpenAI error bodies with that status (429 has Retry-After: 7)
//	reset-mid    two SSE chunks, then the TCP connection is dropped
//	slow-stream  one SSE chunk, then waits until the gateway cancels the request
//	any model on /embeddings: deterministic 4-dim vectors, returned in reverse index order
type fakeOpenAI struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	requests []upstreamRequest

	canceled chan struct{} // closed when a slow-stream request's context ends
	once     sync.Once
}

type upstreamRequest struct {
	Path, Authorization string
	Body                map[string]any
}

func newFakeOpenAI(t *testing.T) *fakeOpenAI {
	f := &fakeOpenAI{t: t, canceled: make(chan struct{})}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeOpenAI) last() upstreamRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return upstreamRequest{}
	}
	return f.requests[len(f.requests)-1]
}

func (f *fakeOpenAI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_request_error", "bad json from gateway: "+err.Error())
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, upstreamRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: body})
	f.mu.Unlock()

	model, _ := body["model"].(string)
	switch {
	case strings.HasSuffix(r.URL.Path, "/embeddings"):
		f.embeddings(w, body)
		return
	case !strings.HasSuffix(r.URL.Path, "/chat/completions"):
		writeErr(w, http.StatusNotFound, "invalid_request_error", "unknown path "+r.URL.Path)
		return
	}
	switch model {
	case "err-401":
		writeErr(w, http.StatusUnauthorized, "invalid_request_error", "Incorrect API key provided: sk-up***.")
		return
	case "err-429":
		w.Header().Set("Retry-After", "7")
		writeErr(w, http.StatusTooManyRequests, "requests", "Rate limit reached for requests")
		return
	case "err-500":
		writeErr(w, http.StatusInternalServerError, "server_error", "The server had an error while processing your request.")
		return
	}
	stream, _ := body["stream"].(bool)
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		if model == "gpt-tools" {
			fmt.Fprintf(w, `{"id":"chatcmpl-up1","object":"chat.completion","created":1700000000,"model":"gpt-tools","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_up1","type":"function","function":{"name":%q,"arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":20,"completion_tokens":8,"total_tokens":28}}`, firstTool(body))
			return
		}
		fmt.Fprintf(w, `{"id":"chatcmpl-up1","object":"chat.completion","created":1700000000,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":3,"total_tokens":13,"completion_tokens_details":{"reasoning_tokens":0}}}`, model, "pong: "+lastUser(body))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	send := func(s string) {
		fmt.Fprintf(w, "data: %s\n\n", s)
		_ = rc.Flush()
	}
	chunk := func(delta string, finish string) string {
		fin := "null"
		if finish != "" {
			fin = `"` + finish + `"`
		}
		return fmt.Sprintf(`{"id":"chatcmpl-up2","object":"chat.completion.chunk","created":1700000000,"model":%q,"choices":[{"index":0,"delta":%s,"finish_reason":%s}]}`, model, delta, fin)
	}
	send(chunk(`{"role":"assistant","content":""}`, ""))
	switch model {
	case "reset-mid":
		send(chunk(`{"content":"partial "}`, ""))
		hj, ok := w.(http.Hijacker)
		if !ok {
			f.t.Error("upstream: cannot hijack")
			return
		}
		conn, _, _ := hj.Hijack()
		_ = conn.Close()
		return
	case "slow-stream":
		send(chunk(`{"content":"thinking"}`, ""))
		select {
		case <-r.Context().Done():
			f.once.Do(func() { close(f.canceled) })
		case <-time.After(30 * time.Second):
			f.t.Error("upstream: slow-stream was never cancelled")
		}
		return
	case "gpt-tools":
		send(chunk(fmt.Sprintf(`{"tool_calls":[{"index":0,"id":"call_up2","type":"function","function":{"name":%q,"arguments":""}}]}`, firstTool(body)), ""))
		send(chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}`, ""))
		send(chunk(`{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}`, ""))
		send(chunk(`{}`, "tool_calls"))
	default:
		for _, w := range strings.SplitAfter("pong: "+lastUser(body), " ") {
			b, _ := json.Marshal(w)
			send(chunk(`{"content":`+string(b)+`}`, ""))
		}
		send(chunk(`{}`, "stop"))
	}
	if so, _ := body["stream_options"].(map[string]any); so["include_usage"] == true {
		send(`{"id":"chatcmpl-up2","object":"chat.completion.chunk","created":1700000000,"model":"` + model + `","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":4,"total_tokens":14}}`)
	}
	send("[DONE]")
}

func (f *fakeOpenAI) embeddings(w http.ResponseWriter, body map[string]any) {
	inputs, _ := body["input"].([]any)
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float64 `json:"embedding"`
	}
	data := make([]item, 0, len(inputs))
	for i := len(inputs) - 1; i >= 0; i-- { // reverse order on purpose: clients must get input order
		s, _ := inputs[i].(string)
		data = append(data, item{"embedding", i, vectorFor(s)})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"object": "list", "model": body["model"], "data": data,
		"usage": map[string]int{"prompt_tokens": len(inputs) * 3, "total_tokens": len(inputs) * 3}})
}

// vectorFor is the fake upstream's embedding: a function of the text's length and first byte.
func vectorFor(s string) []float64 {
	first := 0.0
	if s != "" {
		first = float64(s[0])
	}
	return []float64{float64(len(s)), first, 0.5, -0.25}
}

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}

func lastUser(body map[string]any) string {
	msgs, _ := body["messages"].([]any)
	for i := len(msgs) - 1; i >= 0; i-- {
		m, _ := msgs[i].(map[string]any)
		if m["role"] == "user" {
			if s, ok := m["content"].(string); ok {
				return s
			}
			parts, _ := m["content"].([]any)
			var b strings.Builder
			for _, p := range parts {
				pm, _ := p.(map[string]any)
				if t, ok := pm["text"].(string); ok {
					b.WriteString(t)
				}
			}
			return b.String()
		}
	}
	return ""
}

func firstTool(body map[string]any) string {
	tools, _ := body["tools"].([]any)
	if len(tools) == 0 {
		return "none"
	}
	t, _ := tools[0].(map[string]any)
	fn, _ := t["function"].(map[string]any)
	name, _ := fn["name"].(string)
	return name
}
