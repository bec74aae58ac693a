package coheretest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Validate checks one request against the constraints cohere-openapi.yaml (commit
// e814c8a1822f3b144b3708fdff14c3df0281e961) states for /v2/chat, /v2/embed and /v2/rerank:
// the bearer token, the JSON body, required fields, enums and numeric ranges, and the shape of
// messages, content parts, tools and tool calls. It returns the first violation.
func Validate(r *http.Request, body []byte) error {
	if r.Method != http.MethodPost {
		return fmt.Errorf("method %s, want POST", r.Method)
	}
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "Bearer ") || len(a) == len("Bearer ") {
		return fmt.Errorf("Authorization %q, want a bearer token", a)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("Content-Type %q, want application/json", ct)
	}
	var m obj
	if err := json.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("body is not a JSON object: %w", err)
	}
	switch r.URL.Path {
	case "/v2/chat":
		return validateChat(m)
	case "/v2/embed":
		return validateEmbed(m)
	case "/v2/rerank":
		return validateRerank(m)
	}
	return fmt.Errorf("unknown path %s", r.URL.Path)
}

var chatFields = []string{"stream", "model", "messages", "tools", "strict_tools", "documents", "citation_options",
	"response_format", "safety_mode", "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty",
	"presence_penalty", "k", "p", "logprobs", "tool_choice", "thinking", "priority"}

func validateChat(m obj) error {
	for k := range m {
		if !slices.Contains(chatFields, k) {
			return fmt.Errorf("unknown chat field %q", k)
		}
	}
	if s, ok := m["model"].(string); !ok || s == "" {
		return fmt.Errorf("model is required")
	}
	msgs, ok := m["messages"].([]any)
	if !ok {
		return fmt.Errorf("messages is required and a list")
	}
	for i, x := range msgs {
		if err := validateMessage(x); err != nil {
			return fmt.Errorf("messages[%d]: %w", i, err)
		}
	}
	ranges := []struct {
		k      string
		lo, hi float64
	}{{"temperature", 0, 1}, {"p", 0.01, 0.99}, {"k", 0, 500}, {"frequency_penalty", 0, 1}, {"presence_penalty", 0, 1}, {"priority", 0, 999}, {"seed", 0, 1.8446744073709552e19}, {"max_tokens", 1, 1e9}}
	for _, rg := range ranges {
		if v, ok := m[rg.k]; ok {
			f, isNum := v.(float64)
			if !isNum || f < rg.lo || f > rg.hi {
				return fmt.Errorf("%s %v outside %g–%g", rg.k, v, rg.lo, rg.hi)
			}
		}
	}
	if s, ok := m["stop_sequences"]; ok {
		l, isList := s.([]any)
		if !isList || len(l) > 5 {
			return fmt.Errorf("stop_sequences must be a list of at most 5 strings: %v", s)
		}
	}
	if tc, ok := m["tool_choice"]; ok && tc != "REQUIRED" && tc != "NONE" {
		return fmt.Errorf("tool_choice %v not REQUIRED or NONE", tc)
	}
	for i, x := range list(m["tools"]) {
		t, _ := x.(obj)
		fn, _ := t["function"].(obj)
		if t["type"] != "function" || fn == nil {
			return fmt.Errorf("tools[%d]: type function with a function is required", i)
		}
		if n, _ := fn["name"].(string); n == "" {
			return fmt.Errorf("tools[%d].function.name is required", i)
		}
		if _, ok := fn["parameters"].(obj); !ok {
			return fmt.Errorf("tools[%d].function.parameters is required and an object", i)
		}
	}
	if rf, ok := m["response_format"]; ok {
		o, _ := rf.(obj)
		if o == nil || (o["type"] != "text" && o["type"] != "json_object") {
			return fmt.Errorf("response_format %v", rf)
		}
		if _, has := o["json_schema"]; has && o["type"] != "json_object" {
			return fmt.Errorf("json_schema needs type json_object")
		}
	}
	if th, ok := m["thinking"]; ok {
		o, _ := th.(obj)
		if o == nil || (o["type"] != "enabled" && o["type"] != "disabled") {
			return fmt.Errorf("thinking %v", th)
		}
		if b, has := o["token_budget"]; has {
			if f, _ := b.(float64); f < 1 {
				return fmt.Errorf("thinking.token_budget %v < 1", b)
			}
		}
	}
	if s, ok := m["stream"]; ok {
		if _, isBool := s.(bool); !isBool {
			return fmt.Errorf("stream %v is not a boolean", s)
		}
	}
	return nil
}

func validateMessage(x any) error {
	msg, ok := x.(obj)
	if !ok {
		return fmt.Errorf("not an object")
	}
	content, hasContent := msg["content"]
	switch msg["role"] {
	case "system":
		if !hasContent {
			return fmt.Errorf("system content is required")
		}
		return validateContent(content, "text")
	case "user":
		if !hasContent {
			return fmt.Errorf("user content is required")
		}
		return validateContent(content, "text", "image_url")
	case "assistant":
		if hasContent {
			if err := validateContent(content, "text", "thinking"); err != nil {
				return err
			}
		}
		for i, y := range list(msg["tool_calls"]) {
			tc, _ := y.(obj)
			if id, _ := tc["id"].(string); id == "" || tc["type"] != "function" {
				return fmt.Errorf("tool_calls[%d]: id and type function are required", i)
			}
			fn, _ := tc["function"].(obj)
			if _, ok := fn["arguments"].(string); !ok {
				return fmt.Errorf("tool_calls[%d].function.arguments must be a string", i)
			}
		}
		if !hasContent && len(list(msg["tool_calls"])) == 0 {
			return fmt.Errorf("assistant message without content or tool calls")
		}
		return nil
	case "tool":
		if id, _ := msg["tool_call_id"].(string); id == "" {
			return fmt.Errorf("tool_call_id is required")
		}
		if !hasContent {
			return fmt.Errorf("tool content is required")
		}
		return validateContent(content, "text", "document")
	}
	return fmt.Errorf("role %v", msg["role"])
}

func validateContent(c any, types ...string) error {
	switch v := c.(type) {
	case string:
		return nil
	case []any:
		for i, y := range v {
			p, _ := y.(obj)
			t, _ := p["type"].(string)
			if !slices.Contains(types, t) {
				return fmt.Errorf("content[%d] type %q not in %v", i, t, types)
			}
			switch t {
			case "text":
				if _, ok := p["text"].(string); !ok {
					return fmt.Errorf("content[%d].text is required", i)
				}
			case "image_url":
				iu, _ := p["image_url"].(obj)
				if u, _ := iu["url"].(string); u == "" {
					return fmt.Errorf("content[%d].image_url.url is required", i)
				}
				if d, has := iu["detail"]; has && d != "auto" && d != "low" && d != "high" {
					return fmt.Errorf("content[%d].image_url.detail %v", i, d)
				}
			}
		}
		return nil
	}
	return fmt.Errorf("content %T is neither a string nor a list", c)
}

func validateEmbed(m obj) error {
	if s, _ := m["model"].(string); s == "" {
		return fmt.Errorf("model is required")
	}
	it, _ := m["input_type"].(string)
	if !slices.Contains([]string{"search_document", "search_query", "classification", "clustering", "image"}, it) {
		return fmt.Errorf("input_type %q is required and an EmbedInputType", it)
	}
	texts, ok := m["texts"].([]any)
	if !ok || len(texts) < 1 || len(texts) > 96 {
		return fmt.Errorf("texts must hold 1–96 strings, got %v", m["texts"])
	}
	for _, t := range list(m["embedding_types"]) {
		if !slices.Contains([]any{"float", "int8", "uint8", "binary", "ubinary", "base64"}, t) {
			return fmt.Errorf("embedding_types has %v", t)
		}
	}
	return nil
}

func validateRerank(m obj) error {
	if s, _ := m["model"].(string); s == "" {
		return fmt.Errorf("model is required")
	}
	if _, ok := m["query"].(string); !ok {
		return fmt.Errorf("query is required")
	}
	docs, ok := m["documents"].([]any)
	if !ok {
		return fmt.Errorf("documents is required")
	}
	for i, d := range docs {
		if _, ok := d.(string); !ok {
			return fmt.Errorf("documents[%d] is not a string", i)
		}
	}
	if n, ok := m["top_n"]; ok {
		if f, _ := n.(float64); f < 1 {
			return fmt.Errorf("top_n %v < 1", n)
		}
	}
	return nil
}
