package gateway

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

// do sends a request and returns the response with its whole body.
func do(t *testing.T, method, url, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// object decodes a JSON object keeping numbers as json.Number, so tests see their JSON type.
func object(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, b)
	}
	return m
}

// at walks a decoded JSON value by keys and indices.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not an object", path, v)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("at %v: key %q missing", path, k)
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at %v: no element %d in %v", path, k, v)
			}
			v = a[k]
		}
	}
	return v
}

func hasKey(v any, key string) bool {
	m, ok := v.(map[string]any)
	if !ok {
		return false
	}
	_, ok = m[key]
	return ok
}

func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, body)
	}
}

// wantOpenAIError checks the OpenAI error shape: all four keys present, message non-empty.
func wantOpenAIError(t *testing.T, body []byte, typ string) map[string]any {
	t.Helper()
	e, ok := object(t, body)["error"].(map[string]any)
	if !ok {
		t.Fatalf("no error object in %s", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if !hasKey(e, k) {
			t.Errorf("error.%s missing in %s", k, body)
		}
	}
	if m, _ := e["message"].(string); m == "" {
		t.Errorf("empty error.message in %s", body)
	}
	if e["type"] != typ {
		t.Errorf("error.type = %v, want %s", e["type"], typ)
	}
	return e
}

const difyBlocking = `{"model": "mock/echo", "stream": false, "temperature": 0.2, "max_tokens": 128,
 "messages": [{"role": "system", "content": "You are a concise assistant."},
              {"role": "user", "content": "Say hello in exactly five words."}],
 "user": "44494659-0000-0000-0000-000000000001"}`

func TestChatCompletion(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := do(t, "POST", h.url+"/v1/chat/completions", difyBlocking)
	wantStatus(t, resp, body, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	m := object(t, body)
	if m["object"] != "chat.completion" || m["id"] != "chatcmpl-1" || m["model"] != modelEcho {
		t.Errorf("object/id/model wrong: %s", body)
	}
	if _, ok := m["created"].(json.Number); !ok {
		t.Errorf("created is %T, want a JSON number", m["created"])
	}
	msg := at(t, m, "choices", 0, "message")
	if at(t, msg, "content") != "echo: Say hello in exactly five words." || at(t, msg, "role") != "assistant" {
		t.Errorf("message = %v", msg)
	}
	if at(t, msg, "refusal") != nil || hasKey(msg, "tool_calls") || hasKey(msg, "reasoning_content") {
		t.Errorf("message has wrong optional keys: %v", msg)
	}
	if at(t, m, "choices", 0, "finish_reason") != "stop" || at(t, m, "choices", 0, "logprobs") != nil {
		t.Errorf("choice = %v", at(t, m, "choices", 0))
	}
	if at(t, m, "choices", 0, "index") != json.Number("0") {
		t.Errorf("index = %v", at(t, m, "choices", 0, "index"))
	}
	for _, k := range []string{"prompt_tokens", "completion_tokens", "total_tokens"} {
		if _, ok := at(t, m, "usage", k).(json.Number); !ok {
			t.Errorf("usage.%s is not a number", k)
		}
	}
	if at(t, m, "usage", "prompt_tokens_details", "cached_tokens") != json.Number("0") ||
		at(t, m, "usage", "completion_tokens_details", "reasoning_tokens") != json.Number("0") {
		t.Errorf("usage details = %v", m["usage"])
	}
	if at(t, m, "system_fingerprint") != nil || hasKey(m, "service_tier") {
		t.Errorf("system_fingerprint/service_tier wrong: %s", body)
	}
	if resp.Header.Get("X-Request-Id") != "req-123" || resp.Header.Get("X-Ratelimit-Remaining-Requests") != "99" {
		t.Errorf("allowlisted headers missing: %v", resp.Header)
	}
	for k := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "grpc-") || strings.Contains(strings.ToLower(k), "internal-secret") {
			t.Errorf("internal header leaked: %s", k)
		}
	}
}

func TestChatCompletionToolCall(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := do(t, "POST", h.url+"/v1/chat/completions",
		`{"model":"mock/tool","messages":[{"role":"user","content":"weather?"}],"tool_choice":"auto",
		  "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]}`)
	wantStatus(t, resp, body, http.StatusOK)
	msg := at(t, object(t, body), "choices", 0, "message")
	if !hasKey(msg, "content") || at(t, msg, "content") != nil {
		t.Errorf("content must be present and null: %v", msg)
	}
	tc := at(t, msg, "tool_calls", 0)
	if at(t, tc, "id") != "call_abc123" || at(t, tc, "type") != "function" || at(t, tc, "function", "name") != "get_weather" {
		t.Errorf("tool call = %v", tc)
	}
	if args, ok := at(t, tc, "function", "arguments").(string); !ok || args != `{"city":"Paris"}` {
		t.Errorf("arguments must be the JSON string, got %#v", at(t, tc, "function", "arguments"))
	}
	if at(t, object(t, body), "choices", 0, "finish_reason") != "tool_calls" {
		t.Errorf("finish_reason wrong: %s", body)
	}
}

// TestRequestNormalization checks the polymorphic and nullable OpenAI fields reach the server typed.
func TestRequestNormalization(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		name  string
		body  string
		check func(*testing.T, *pb.CreateChatCompletionRequest)
	}{
		{"credential check", `{"model":"mock/echo","max_tokens":5,"messages":[{"role":"user","content":"ping"}]}`,
			func(t *testing.T, r *pb.CreateChatCompletionRequest) {
				if r.GetMaxTokens() != 5 || r.GetMessages()[0].GetContent().GetText() != "ping" {
					t.Errorf("got %v", r)
				}
			}},
		{"content parts", `{"model":"mock/echo","messages":[{"role":"user","content":[{"type":"text","text":"What colour?"},
			{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"high"}}]}]}`,
			func(t *testing.T, r *pb.CreateChatCompletionRequest) {
				parts := r.GetMessages()[0].GetContent().GetParts().GetParts()
				if len(parts) != 2 || parts[0].GetText() != "What colour?" || parts[1].GetImageUrl().GetDetail() != "high" {
					t.Errorf("parts = %v", parts)
				}
			}},
		{"null content on tool-call turn, nulls, legacy and unknown fields",
			`{"model":"mock/echo","stream":null,"max_tokens":null,"user":"u1","functions":[{"name":"f"}],"parallel_tool_calls":true,
			  "chat_template_kwargs":{"x":1},"thinking":{"type":"disabled"},
			  "messages":[{"role":"user","content":"weather?"},
			    {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
			    {"role":"tool","content":"{\"t\":18}","tool_call_id":"call_1"}]}`,
			func(t *testing.T, r *pb.CreateChatCompletionRequest) {
				m := r.GetMessages()
				if len(m) != 3 || m[1].GetContent() != nil || m[1].GetToolCalls()[0].GetFunction().GetArguments() != `{"city": "Paris"}` ||
					m[2].GetToolCallId() != "call_1" || r.MaxTokens != nil || r.GetUser() != "u1" {
					t.Errorf("got %v", r)
				}
			}},
		{"stop string, tool_choice string", `{"model":"mock/echo","messages":[{"role":"user","content":"x"}],"stop":"END","tool_choice":"required"}`,
			func(t *testing.T, r *pb.CreateChatCompletionRequest) {
				if len(r.GetStop()) != 1 || r.GetStop()[0] != "END" || r.GetToolChoice().GetMode() != "required" {
					t.Errorf("got %v", r)
				}
			}},
		{"stop list, tool_choice object", `{"model":"mock/echo","messages":[{"role":"user","content":"x"}],"stop":["a","b"],
			"tool_choice":{"type":"function","function":{"name":"get_weather"}}}`,
			func(t *testing.T, r *pb.CreateChatCompletionRequest) {
				if len(r.GetStop()) != 2 || r.GetToolChoice().GetNamed().GetFunction().GetName() != "get_weather" {
					t.Errorf("got %v", r)
				}
			}},
		{"escaped strings and unicode", `{"model":"mock/echo","messages":[{"role":"user","content":"caf\u00e9 \"q\" \n 日本"}]}`,
			func(t *testing.T, r *pb.CreateChatCompletionRequest) {
				if got := r.GetMessages()[0].GetContent().GetText(); got != "café \"q\" \n 日本" {
					t.Errorf("text = %q", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", h.url+"/v1/chat/completions", tt.body)
			wantStatus(t, resp, body, http.StatusOK)
			if object(t, body)["object"] != "chat.completion" {
				t.Errorf("not a chat.completion: %s", body)
			}
			req, _ := h.chat.lastRequest()
			tt.check(t, req)
		})
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		name, path, body string
		param            any    // want error.param
		msgHas           string // want in error.message
	}{
		{"not JSON", "/v1/chat/completions", `{"model": "mock/echo", `, nil, "not valid JSON"},
		{"not an object", "/v1/chat/completions", `["model"]`, nil, "JSON object"},
		{"not JSON, stream path", "/v1/chat/completions", `{"stream": true, "model": }`, nil, "not valid JSON"},
		{"model is a number", "/v1/chat/completions", `{"model": 5, "messages": []}`, "model", "expected a string"},
		{"max_tokens is a string", "/v1/chat/completions", `{"model":"m","max_tokens":"abc"}`, "max_tokens", "expected an integer"},
		{"content is a number", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":5}]}`, "messages[0].content", "content parts"},
		{"part text is a number", "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":3}]}]}`, "messages[0].content[0].text", "expected a string"},
		{"stream is a string", "/v1/chat/completions", `{"model":"m","stream":"yes"}`, "stream", "true or false"},
		{"temperature is a string, stream", "/v1/chat/completions", `{"model":"m","stream":true,"temperature":"hot"}`, "temperature", "expected a number"},
		{"duplicate key", "/v1/chat/completions", `{"model":"a","model":"b"}`, "model", "more than once"},
		{"embedding input is an object", "/v1/embeddings", `{"model":"m","input":{"x":1}}`, "input", ""},
		{"embedding input mixes types", "/v1/embeddings", `{"model":"m","input":["a",1]}`, "input[1]", "expected a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", h.url+tt.path, tt.body)
			wantStatus(t, resp, body, http.StatusBadRequest)
			e := wantOpenAIError(t, body, "invalid_request_error")
			if e["param"] != tt.param {
				t.Errorf("param = %v, want %v", e["param"], tt.param)
			}
			if msg := e["message"].(string); !strings.Contains(msg, tt.msgHas) || strings.Contains(msg, "proto:") {
				t.Errorf("message %q should contain %q and no protojson internals", msg, tt.msgHas)
			}
		})
	}
}

// sseEvents reads a whole event stream, checking Dify's framing: events separated by exactly
// "\n\n", each a single "data: " line. It returns the data payloads.
func sseEvents(t *testing.T, body []byte) []string {
	t.Helper()
	if bytes.ContainsRune(body, '\r') {
		t.Errorf("stream contains CR: %q", body)
	}
	if !bytes.HasSuffix(body, []byte("\n\n")) {
		t.Fatalf("stream does not end with a blank line: %q", body)
	}
	var out []string
	for _, ev := range strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("bad event %q", ev)
		}
		out = append(out, data)
	}
	return out
}

const difyStreaming = `{"model": "mock/echo", "stream": true, "temperature": 0.2, "max_tokens": 128,
 "stream_options": {"include_usage": true},
 "messages": [{"role": "user", "content": "Say hello"}]}`

func TestStream(t *testing.T) {
	h := newHarness(t, Options{})
	for _, path := range []string{"/v1/chat/completions", "/chat/completions"} {
		t.Run(path, func(t *testing.T) {
			resp, body := do(t, "POST", h.url+path, difyStreaming)
			wantStatus(t, resp, body, http.StatusOK)
			for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("stream must not be compressed")
			}
			events := sseEvents(t, body)
			if len(events) != 6 || events[5] != "[DONE]" {
				t.Fatalf("events = %q", events)
			}
			var text strings.Builder
			for i, ev := range events[:5] {
				m := object(t, []byte(ev))
				if m["object"] != "chat.completion.chunk" {
					t.Errorf("event %d object = %v", i, m["object"])
				}
				choices, ok := m["choices"].([]any)
				if !ok {
					t.Fatalf("event %d has no choices list: %s", i, ev)
				}
				if len(choices) == 1 {
					if c, ok := at(t, choices[0], "delta").(map[string]any)["content"].(string); ok {
						text.WriteString(c)
					}
				}
			}
			first := object(t, []byte(events[0]))
			if d := at(t, first, "choices", 0, "delta"); at(t, d, "role") != "assistant" || at(t, d, "content") != "" || hasKey(d, "tool_calls") {
				t.Errorf("first delta = %v", d)
			}
			if at(t, first, "choices", 0, "finish_reason") != nil || hasKey(first, "usage") {
				t.Errorf("first chunk = %s", events[0])
			}
			if text.String() != "Hello there" {
				t.Errorf("text = %q", text.String())
			}
			if fin := object(t, []byte(events[3])); at(t, fin, "choices", 0, "finish_reason") != "stop" || len(at(t, fin, "choices", 0, "delta").(map[string]any)) != 0 {
				t.Errorf("finish chunk = %s", events[3])
			}
			usage := object(t, []byte(events[4]))
			if len(usage["choices"].([]any)) != 0 || at(t, usage, "usage", "total_tokens") != json.Number("27") {
				t.Errorf("usage chunk = %s", events[4])
			}
		})
	}
}

func TestStreamToolCalls(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := do(t, "POST", h.url+"/v1/chat/completions",
		`{"model":"mock/tool","stream":true,"messages":[{"role":"user","content":"weather?"}],"tool_choice":"auto"}`)
	wantStatus(t, resp, body, http.StatusOK)
	events := sseEvents(t, body)
	if len(events) != 6 || events[5] != "[DONE]" {
		t.Fatalf("events = %q", events)
	}
	firstCall := at(t, object(t, []byte(events[1])), "choices", 0, "delta", "tool_calls", 0)
	if at(t, firstCall, "id") != "call_abc123" || at(t, firstCall, "type") != "function" ||
		at(t, firstCall, "function", "name") != "get_weather" || at(t, firstCall, "function", "arguments") != "" ||
		at(t, firstCall, "index") != json.Number("0") {
		t.Errorf("first tool delta = %v", firstCall)
	}
	var args string
	for _, ev := range events[2:4] {
		tc := at(t, object(t, []byte(ev)), "choices", 0, "delta", "tool_calls", 0).(map[string]any)
		if len(tc) != 2 || tc["index"] != json.Number("0") || hasKey(tc["function"], "name") {
			t.Errorf("continuation must carry only index and function.arguments: %v", tc)
		}
		a, ok := at(t, tc, "function", "arguments").(string)
		if !ok {
			t.Fatalf("arguments is not a string: %v", tc)
		}
		args += a
	}
	if args != `{"city": "Paris"}` {
		t.Errorf("arguments = %q", args)
	}
	if at(t, object(t, []byte(events[4])), "choices", 0, "finish_reason") != "tool_calls" {
		t.Errorf("finish chunk = %s", events[4])
	}
}

func TestStreamEmpty(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := do(t, "POST", h.url+"/v1/chat/completions", `{"model":"mock/empty","stream":true,"messages":[]}`)
	wantStatus(t, resp, body, http.StatusOK)
	if events := sseEvents(t, body); len(events) != 1 || events[0] != "[DONE]" {
		t.Errorf("events = %q", events)
	}
}

// TestStreamFlushesEachChunk reads the first event while the server is still holding the rest:
// a gateway that buffered the stream would block here.
func TestStreamFlushesEachChunk(t *testing.T) {
	h := newHarness(t, Options{})
	resp, err := http.Post(h.url+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"mock/gated","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: {") {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(h.chat.gate)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if events := sseEvents(t, append([]byte(line), rest...)); events[len(events)-1] != "[DONE]" {
		t.Errorf("events = %q", events)
	}
}

func TestStreamErrorBeforeFirstChunk(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		model      string
		status     int
		typ        string
		code       any
		retryAfter string
	}{
		{modelNotFound, http.StatusNotFound, "invalid_request_error", "model_not_found", ""},
		{modelLimited, http.StatusTooManyRequests, "rate_limit_error", nil, "7"},
	}
	for _, tt := range tests {
		for _, stream := range []bool{false, true} {
			t.Run(tt.model, func(t *testing.T) {
				body := `{"model":"` + tt.model + `","messages":[{"role":"user","content":"x"}],"stream":` + map[bool]string{true: "true", false: "false"}[stream] + `}`
				resp, b := do(t, "POST", h.url+"/v1/chat/completions", body)
				wantStatus(t, resp, b, tt.status)
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				e := wantOpenAIError(t, b, tt.typ)
				if e["code"] != tt.code {
					t.Errorf("code = %v, want %v", e["code"], tt.code)
				}
				if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
				}
				if got := resp.Header.Get("X-Switchyard-Attempts"); got != "3" {
					t.Errorf("X-Switchyard-Attempts = %q, want the server's 3 (stream=%v)", got, stream)
				}
			})
		}
	}
}

func TestStreamErrorAfterFirstChunk(t *testing.T) {
	h := newHarness(t, Options{})
	resp, body := do(t, "POST", h.url+"/v1/chat/completions", `{"model":"mock/midfail","stream":true,"messages":[]}`)
	wantStatus(t, resp, body, http.StatusOK)
	events := sseEvents(t, body)
	if len(events) != 2 {
		t.Fatalf("events = %q", events)
	}
	last := object(t, []byte(events[1]))
	if hasKey(last, "choices") {
		t.Errorf("error event must not have choices: %s", events[1])
	}
	e := wantOpenAIError(t, []byte(events[1]), "api_error")
	if e["message"] != "service unavailable" {
		t.Errorf("message = %v", e["message"])
	}
}

func TestStreamClientDisconnectCancelsRPC(t *testing.T) {
	h := newHarness(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"mock/hang","stream":true,"messages":[]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-h.chat.canceled:
	case <-t.Context().Done():
		t.Fatal("the server's stream was not cancelled")
	}
}

func TestEmbeddings(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		name   string
		body   string
		texts  []string
		tokens [][]int32
		b64    bool
	}{
		{"dify: one text in a list, no encoding_format", `{"model": "gw-embed", "input": ["Dify is an LLM app platform."]}`, []string{"Dify is an LLM app platform."}, nil, false},
		{"string", `{"model":"gw-embed","input":"hello"}`, []string{"hello"}, nil, false},
		{"three texts keep their order", `{"model":"gw-embed","input":["a","b","c"],"encoding_format":"float","user":"u"}`, []string{"a", "b", "c"}, nil, false},
		{"tokens", `{"model":"gw-embed","input":[1,2,3]}`, nil, [][]int32{{1, 2, 3}}, false},
		{"token lists", `{"model":"gw-embed","input":[[1,2],[3]]}`, nil, [][]int32{{1, 2}, {3}}, false},
		{"base64", `{"model":"gw-embed","input":["a","b"],"encoding_format":"base64"}`, []string{"a", "b"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", h.url+"/v1/embeddings", tt.body, "Authorization", "")
			wantStatus(t, resp, body, http.StatusOK)
			req, md := h.embed.lastRequest()
			if len(md.Get("authorization")) != 0 {
				t.Errorf("empty Authorization forwarded as %q", md.Get("authorization"))
			}
			if got := req.GetInput().GetTexts(); strings.Join(got, "|") != strings.Join(tt.texts, "|") {
				t.Errorf("texts = %q, want %q", got, tt.texts)
			}
			if got := req.GetInput().GetTokens(); len(got) != len(tt.tokens) {
				t.Errorf("tokens = %v, want %v", got, tt.tokens)
			} else {
				for i := range got {
					if !equalInts(got[i].GetIds(), tt.tokens[i]) {
						t.Errorf("tokens[%d] = %v, want %v", i, got[i].GetIds(), tt.tokens[i])
					}
				}
			}
			m := object(t, body)
			if m["object"] != "list" || m["model"] != "gw-embed" || at(t, m, "usage", "total_tokens") == nil || at(t, m, "usage", "prompt_tokens") == nil {
				t.Errorf("envelope = %s", body)
			}
			data := m["data"].([]any)
			if len(data) != len(tt.texts)+len(tt.tokens) {
				t.Fatalf("%d vectors for %d inputs", len(data), len(tt.texts)+len(tt.tokens))
			}
			for i, d := range data {
				if at(t, d, "object") != "embedding" || at(t, d, "index") != json.Number(itoa(i)) {
					t.Errorf("data[%d] = %v", i, d)
				}
				got := decodeVector(t, at(t, d, "embedding"), tt.b64)
				if want := embedVector(i); !equalFloats(got, want) {
					t.Errorf("data[%d] = %v, want %v", i, got, want)
				}
			}
		})
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

func equalInts(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// decodeVector reads an embedding written as floats or, with b64, as base64 little-endian float32s.
func decodeVector(t *testing.T, v any, b64 bool) []float32 {
	t.Helper()
	var out []float32
	if b64 {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("embedding is %T, want a base64 string", v)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+4 <= len(raw); i += 4 {
			out = append(out, math.Float32frombits(binary.LittleEndian.Uint32(raw[i:])))
		}
		return out
	}
	a, ok := v.([]any)
	if !ok {
		t.Fatalf("embedding is %T, want a list of floats", v)
	}
	for _, x := range a {
		f, err := x.(json.Number).Float64()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, float32(f))
	}
	return out
}

func TestModels(t *testing.T) {
	h := newHarness(t, Options{})
	for _, prefix := range []string{"/v1", ""} {
		resp, body := do(t, "GET", h.url+prefix+"/models", "")
		wantStatus(t, resp, body, http.StatusOK)
		m := object(t, body)
		if m["object"] != "list" || len(m["data"].([]any)) != 3 || at(t, m, "data", 0, "created") != json.Number("1700000000") {
			t.Errorf("list = %s", body)
		}
		if at(t, m, "data", 1, "target") != "mock/echo" || hasKey(at(t, m, "data", 0), "target") {
			t.Errorf("target only on aliases: %s", body)
		}
		if at(t, m, "data", 2, "type") != "rerank" || hasKey(at(t, m, "data", 0), "type") || hasKey(at(t, m, "data", 1), "type") {
			t.Errorf("type only on rerank models: %s", body)
		}
		for _, id := range []string{"mock/echo", "mock%2Fecho"} {
			resp, body = do(t, "GET", h.url+prefix+"/models/"+id, "")
			wantStatus(t, resp, body, http.StatusOK)
			got := object(t, body)
			if got["id"] != "mock/echo" || got["object"] != "model" || got["owned_by"] != "mock" || got["created"] != json.Number("1700000000") {
				t.Errorf("GET %s = %s", id, body)
			}
		}
	}
	resp, body := do(t, "GET", h.url+"/v1/models/nope/x", "")
	wantStatus(t, resp, body, http.StatusNotFound)
	wantOpenAIError(t, body, "invalid_request_error")
}

func TestRoutingErrors(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/v1/nope", http.StatusNotFound, ""},
		{"POST", "/v1/completions", http.StatusNotFound, ""},
		{"POST", "/v1/chat/completions:stream", http.StatusNotFound, ""},
		{"POST", "/chat/completions:stream", http.StatusNotFound, ""},
		{"POST", "/v1/chat/completions%3Astream", http.StatusNotFound, ""},
		{"GET", "/v1/chat/completions", http.StatusMethodNotAllowed, "POST"},
		{"GET", "/chat/completions", http.StatusMethodNotAllowed, "POST"},
		{"PUT", "/v1/embeddings", http.StatusMethodNotAllowed, "POST"},
		{"GET", "/v1/rerank", http.StatusMethodNotAllowed, "POST"},
		{"GET", "/rerank", http.StatusMethodNotAllowed, "POST"},
		{"POST", "/v1/models", http.StatusMethodNotAllowed, "GET"},
		{"DELETE", "/v1/models/mock/echo", http.StatusMethodNotAllowed, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := do(t, tt.method, h.url+tt.path, `{"model":"mock/echo","stream":true}`)
			wantStatus(t, resp, body, tt.status)
			wantOpenAIError(t, body, "invalid_request_error")
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	h := newHarness(t, Options{MaxBodyBytes: 1024})
	big := `{"model":"mock/echo","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]`
	tests := []struct {
		name, path, body string
		chunked          bool
	}{
		{"unary", "/v1/chat/completions", big + `}`, false},
		{"stream", "/v1/chat/completions", big + `,"stream":true}`, false},
		{"stream, no Content-Length", "/v1/chat/completions", big + `,"stream":true}`, true},
		{"embeddings, no Content-Length", "/v1/embeddings", `{"model":"m","input":"` + strings.Repeat("y", 2000) + `"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				r = io.MultiReader(r) // hides the length, so the client sends it chunked
			}
			resp, err := http.Post(h.url+tt.path, "application/json", r)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			wantStatus(t, resp, body, http.StatusRequestEntityTooLarge)
			wantOpenAIError(t, body, "invalid_request_error")
		})
	}
	// Just under the limit still works.
	resp, body := do(t, "POST", h.url+"/v1/chat/completions", `{"model":"mock/echo","messages":[{"role":"user","content":"`+strings.Repeat("x", 900)+`"}]}`)
	wantStatus(t, resp, body, http.StatusOK)
}

// TestLargeBody sends a body above gRPC's default 4 MiB message limit (a base64 image, say).
func TestLargeBody(t *testing.T) {
	h := newHarness(t, Options{})
	text := strings.Repeat("a", 6<<20)
	resp, body := do(t, "POST", h.url+"/v1/chat/completions", `{"model":"mock/echo","messages":[{"role":"user","content":"`+text+`"}]}`)
	wantStatus(t, resp, body, http.StatusOK)
	if got := at(t, object(t, body), "choices", 0, "message", "content"); got != "echo: "+text {
		t.Errorf("content has %d bytes", len(got.(string)))
	}
}

func TestRequestHeaders(t *testing.T) {
	h := newHarness(t, Options{})
	tests := []struct {
		name     string
		hdr      []string
		wantAuth []string
	}{
		{"bearer", []string{"Authorization", "Bearer sk-test", "X-Request-Id", "abc"}, []string{"Bearer sk-test"}},
		{"empty Authorization", []string{"Authorization", "", "X-Request-Id", "abc"}, nil},
		{"none", []string{"X-Request-Id", "abc"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, stream := range []string{"false", "true"} {
				resp, body := do(t, "POST", h.url+"/v1/chat/completions",
					`{"model":"mock/echo","stream":`+stream+`,"messages":[{"role":"user","content":"x"}]}`, tt.hdr...)
				wantStatus(t, resp, body, http.StatusOK)
				_, md := h.chat.lastRequest()
				if got := md.Get("authorization"); strings.Join(got, ",") != strings.Join(tt.wantAuth, ",") {
					t.Errorf("authorization = %q, want %q", got, tt.wantAuth)
				}
				if got := md.Get("x-request-id"); len(got) != 1 || got[0] != "abc" {
					t.Errorf("x-request-id = %q", got)
				}
			}
		})
	}
}

func TestGzip(t *testing.T) {
	h := newHarness(t, Options{})
	inputs := strings.Repeat(`"some text to embed",`, 200)
	tests := []struct {
		name, path, body string
		wantGzip         bool
	}{
		{"large JSON is compressed", "/v1/embeddings", `{"model":"m","input":[` + strings.TrimSuffix(inputs, ",") + `]}`, true},
		{"small JSON is not", "/v1/chat/completions", `{"model":"mock/echo","messages":[{"role":"user","content":"x"}]}`, false},
		{"SSE is not compressed by default", "/v1/chat/completions", `{"model":"mock/many","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("x", 4000) + `"}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, "POST", h.url+tt.path, tt.body, "Accept-Encoding", "gzip")
			wantStatus(t, resp, body, http.StatusOK)
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tt.wantGzip {
				t.Fatalf("gzip = %v, want %v", got, tt.wantGzip)
			}
			if tt.wantGzip {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if n := len(object(t, body)["data"].([]any)); n != 200 {
					t.Errorf("%d vectors", n)
				}
			}
		})
	}
}
