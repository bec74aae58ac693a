package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type httpAnswer struct {
	status int
	header http.Header
	body   []byte
}

// post sends a raw body to the gateway's REST API with the client key (or key, when not nil).
func (g *gateway) post(t *testing.T, path string, body []byte, key *string) httpAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.restURL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	k := clientKey
	if key != nil {
		k = *key
	}
	req.Header["Authorization"] = []string{strings.TrimSpace("Bearer " + k)}
	if key != nil && *key == "" {
		req.Header["Authorization"] = []string{""} // Dify's embeddings call without a key
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return httpAnswer{resp.StatusCode, resp.Header, b}
}

// openAIError checks a body is exactly OpenAI's error shape and returns its fields.
func openAIError(t *testing.T, a httpAnswer, status int, typ string) map[string]any {
	t.Helper()
	if a.status != status {
		t.Errorf("status %d, want %d; body %s", a.status, status, a.body)
	}
	var body struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(a.body, &body); err != nil || body.Error == nil {
		t.Fatalf("body is not {\"error\":{...}}: %s", a.body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := body.Error[k]; !ok {
			t.Errorf("error lacks %q: %s", k, a.body)
		}
	}
	if body.Error["type"] != typ || body.Error["message"] == "" {
		t.Errorf("error = %v, want type %s", body.Error, typ)
	}
	return body.Error
}

func ptrTo(s string) *string { return &s }

// TestBadInput checks each kind of bad request gets a clear OpenAI-shaped error and never reaches
// the upstream.
func TestBadInput(t *testing.T) {
	g := startGateway(t, "")
	before := g.up.count()
	// Requests over the default shape limits (server.request_limits), well inside the body limit.
	chatWith := func(edit func(map[string]any)) string {
		body := map[string]any{"model": "chat", "messages": []map[string]any{{"role": "user", "content": "x"}}}
		edit(body)
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	manyMessages := chatWith(func(b map[string]any) {
		msgs := make([]map[string]any, 4097)
		for i := range msgs {
			msgs[i] = map[string]any{"role": "user", "content": "x"}
		}
		b["messages"] = msgs
	})
	manyTools := chatWith(func(b map[string]any) {
		tools := make([]map[string]any, 129)
		for i := range tools {
			tools[i] = map[string]any{"type": "function", "function": map[string]any{"name": fmt.Sprintf("f%d", i)}}
		}
		b["tools"] = tools
	})
	deepSchema := chatWith(func(b map[string]any) {
		var schema any = map[string]any{"type": "string"}
		for range 70 {
			schema = map[string]any{"type": "object", "properties": map[string]any{"a": schema}}
		}
		b["tools"] = []map[string]any{{"type": "function", "function": map[string]any{"name": "f", "parameters": schema}}}
	})
	manyStops := chatWith(func(b map[string]any) { b["stop"] = []string{"a", "b", "c", "d", "e"} })
	cases := []struct {
		name, path, body string
		key              *string
		status           int
		typ, param       string
	}{
		{"invalid JSON", "/v1/chat/completions", `{"model":"chat","messages":[`, nil, 400, "invalid_request_error", ""},
		{"not an object", "/v1/chat/completions", `[1,2]`, nil, 400, "invalid_request_error", ""},
		{"wrong type", "/v1/chat/completions", `{"model":"chat","messages":"hi"}`, nil, 400, "invalid_request_error", "messages"},
		{"wrong number type", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"x"}],"max_tokens":"many"}`, nil, 400, "invalid_request_error", "max_tokens"},
		{"no messages", "/v1/chat/completions", `{"model":"chat","messages":[]}`, nil, 400, "invalid_request_error", "messages"},
		{"bad role", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"robot","content":"x"}]}`, nil, 400, "invalid_request_error", "messages[0].role"},
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-9","messages":[{"role":"user","content":"x"}]}`, nil, 404, "invalid_request_error", "model"},
		{"unknown model, stream", "/v1/chat/completions", `{"model":"gpt-9","stream":true,"messages":[{"role":"user","content":"x"}]}`, nil, 404, "invalid_request_error", "model"},
		{"bad key", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"x"}]}`, ptrTo("sk-nope"), 401, "authentication_error", ""},
		{"bad key, stream", "/v1/chat/completions", `{"model":"chat","stream":true,"messages":[{"role":"user","content":"x"}]}`, ptrTo("sk-nope"), 401, "authentication_error", ""},
		{"empty Authorization", "/v1/embeddings", `{"model":"mock/embed","input":["x"]}`, ptrTo(""), 401, "authentication_error", ""},
		{"embeddings without input", "/v1/embeddings", `{"model":"mock/embed"}`, nil, 400, "invalid_request_error", "input"},
		{"body over the limit", "/v1/chat/completions", `{"model":"chat","messages":[{"role":"user","content":"` + strings.Repeat("x", 2<<20) + `"}]}`, nil, 413, "invalid_request_error", ""},
		{"body over the limit, stream", "/v1/chat/completions", `{"stream":true,"model":"chat","messages":[{"role":"user","content":"` + strings.Repeat("x", 2<<20) + `"}]}`, nil, 413, "invalid_request_error", ""},
		{"unknown path", "/v1/completions/legacy", `{}`, nil, 404, "invalid_request_error", ""},
		{"too many messages", "/v1/chat/completions", manyMessages, nil, 400, "invalid_request_error", "messages"},
		{"too many tools", "/v1/chat/completions", manyTools, nil, 400, "invalid_request_error", "tools"},
		{"tool schema too deep", "/v1/chat/completions", deepSchema, nil, 400, "invalid_request_error", "tools[0].function.parameters"},
		{"too many stop sequences", "/v1/chat/completions", manyStops, nil, 400, "invalid_request_error", "stop"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := openAIError(t, g.post(t, c.path, []byte(c.body), c.key), c.status, c.typ)
			if c.param != "" && e["param"] != c.param {
				t.Errorf("param = %v, want %s", e["param"], c.param)
			}
		})
	}
	// A shape limit's answer names the setting and its value.
	e := openAIError(t, g.post(t, "/v1/chat/completions", []byte(manyMessages), nil), 400, "invalid_request_error")
	if msg, _ := e["message"].(string); e["code"] != "limit_exceeded" || !strings.Contains(msg, "server.request_limits.max_messages") || !strings.Contains(msg, "4096") {
		t.Errorf("too many messages: %v; want code limit_exceeded and a message naming max_messages and 4096", e)
	}
	if n := g.up.count() - before; n != 0 {
		t.Errorf("bad requests reached the upstream %d times", n)
	}
	// A wrong method is a 405 in the same shape.
	resp, err := http.Get(g.restURL() + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	openAIError(t, httpAnswer{resp.StatusCode, resp.Header, b}, 405, "invalid_request_error")
}

// TestDifyWire replays what Dify's OpenAI-API-compatible plugin sends and checks what it parses.
func TestDifyWire(t *testing.T) {
	g := startGateway(t, "")
	t.Run("credential check", func(t *testing.T) {
		a := g.post(t, "/v1/chat/completions", []byte(`{"model":"chat","max_tokens":5,"messages":[{"role":"user","content":"ping"}]}`), nil)
		var body map[string]any
		if a.status != 200 || json.Unmarshal(a.body, &body) != nil || body["object"] != "chat.completion" {
			t.Errorf("status %d body %s", a.status, a.body)
		}
	})
	t.Run("stream frames", func(t *testing.T) {
		a := g.post(t, "/v1/chat/completions", []byte(`{"model":"chat","stream":true,"stream_options":{"include_usage":true},"user":"dify-user","messages":[{"role":"system","content":"Be nice."},{"role":"user","content":"hello dify"}]}`), nil)
		if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("status %d content-type %q", a.status, a.header.Get("Content-Type"))
		}
		if bytes.Contains(a.body, []byte("\r")) || !bytes.HasSuffix(a.body, []byte("data: [DONE]\n\n")) {
			t.Errorf("framing: %q", a.body)
		}
		events := strings.Split(strings.TrimSuffix(string(a.body), "\n\n"), "\n\n")
		var usage bool
		for _, ev := range events[:len(events)-1] {
			payload, ok := strings.CutPrefix(ev, "data: ")
			if !ok || strings.Contains(payload, "\n") {
				t.Fatalf("event is not one data line: %q", ev)
			}
			var chunk map[string]any
			if err := json.Unmarshal([]byte(payload), &chunk); err != nil {
				t.Fatalf("event is not JSON: %q", payload)
			}
			if _, ok := chunk["choices"]; !ok {
				t.Errorf("chunk without choices: %s", payload)
			}
			if chunk["usage"] != nil {
				usage = true
			}
		}
		if !usage {
			t.Error("no usage chunk although include_usage was set")
		}
	})
}

// TestUpstreamFaultsMidStream: a reset after the first chunk reaches the client as an SSE error
// event and the stream ends without [DONE]; the client has the partial text.
func TestUpstreamFaultsMidStream(t *testing.T) {
	g := startGateway(t, "")
	a := g.post(t, "/v1/chat/completions", []byte(`{"model":"up/reset-mid","stream":true,"messages":[{"role":"user","content":"x"}]}`), nil)
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	body := string(a.body)
	if !strings.Contains(body, `"partial "`) {
		t.Errorf("the partial text was lost: %s", body)
	}
	if strings.Contains(body, "[DONE]") {
		t.Errorf("a broken stream must not end with [DONE]: %s", body)
	}
	events := strings.Split(strings.TrimSpace(body), "\n\n")
	last := strings.TrimPrefix(events[len(events)-1], "data: ")
	var e struct {
		Error struct{ Message, Type string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(last), &e); err != nil || e.Error.Type != "api_error" || e.Error.Message == "" {
		t.Errorf("last event %q is not an OpenAI error event", last)
	}
}

// TestClientDisconnectCancelsUpstream: when the client goes away mid-stream, the upstream request
// is cancelled (no tokens keep being generated and billed for nobody).
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	g := startGateway(t, "")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.restURL()+"/v1/chat/completions",
		strings.NewReader(`{"model":"up/slow-stream","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel() // the client disconnects
	select {
	case <-g.up.canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled after the client disconnected")
	}
}
