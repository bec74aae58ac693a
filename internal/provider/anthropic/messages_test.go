package anthropic_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/anthropic"
)

func text(role, s string) llm.Message { return llm.TextMessage(role, s) }

// TestMessages checks the turn structure sent upstream: system prompts merged in order at the
// top level, tool results first in one user turn, signed thinking sent back, unsigned dropped.
func TestMessages(t *testing.T) {
	call := func(id string) llm.ToolCall { return llm.ToolCall{ID: id, Name: "f", Arguments: `{"a":1}`} }
	result := func(id, s string) llm.Message {
		return llm.Message{Role: llm.RoleTool, ToolCallID: id, Content: []llm.Part{{Type: llm.PartText, Text: s}}}
	}
	cases := []struct {
		name         string
		msgs         []llm.Message
		wantSystem   string // JSON, "" for absent
		wantMessages string
	}{
		{"system and developer merged in order",
			[]llm.Message{text("system", "Be terse."), text("user", "hi"), text("developer", "Answer in French."), text("user", "again")},
			`[{"type":"text","text":"Be terse."},{"type":"text","text":"Answer in French."}]`,
			`[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"again"}]}]`},
		{"consecutive tool results share a user turn, first",
			[]llm.Message{text("user", "go"), {Role: "assistant", ToolCalls: []llm.ToolCall{call("t1"), call("t2")}}, result("t1", "one"), result("t2", "two"), text("user", "and?")},
			"",
			`[{"role":"user","content":[{"type":"text","text":"go"}]},
			  {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}},{"type":"tool_use","id":"t2","name":"f","input":{"a":1}}]},
			  {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"one"},{"type":"tool_result","tool_use_id":"t2","content":"two"},{"type":"text","text":"and?"}]}]`},
		{"a tool result after user text still goes first",
			[]llm.Message{text("user", "go"), {Role: "assistant", ToolCalls: []llm.ToolCall{call("t1")}}, text("user", "note"), result("t1", "one")},
			"",
			`[{"role":"user","content":[{"type":"text","text":"go"}]},
			  {"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":1}}]},
			  {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"one"},{"type":"text","text":"note"}]}]`},
		{"signed thinking sent back before text and tool calls",
			[]llm.Message{text("user", "go"), {Role: "assistant", ReasoningContent: "hmm", ReasoningSignature: "c2ln", Content: []llm.Part{{Type: "text", Text: "ok"}}, ToolCalls: []llm.ToolCall{{ID: "t1", Name: "f"}}}, result("t1", "")},
			"",
			`[{"role":"user","content":[{"type":"text","text":"go"}]},
			  {"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"c2ln"},{"type":"text","text":"ok"},{"type":"tool_use","id":"t1","name":"f","input":{}}]},
			  {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1"}]}]`},
		{"several thinking blocks restored from the signature",
			[]llm.Message{text("user", "go"), {Role: "assistant", ReasoningContent: "ab", ReasoningSignature: `[{"type":"thinking","thinking":"a","signature":"s1"},{"type":"redacted_thinking","data":"ZW5j"},{"type":"thinking","thinking":"b","signature":"s2"}]`, Content: []llm.Part{{Type: "text", Text: "ok"}}}},
			"",
			`[{"role":"user","content":[{"type":"text","text":"go"}]},
			  {"role":"assistant","content":[{"type":"thinking","thinking":"a","signature":"s1"},{"type":"redacted_thinking","data":"ZW5j"},{"type":"thinking","thinking":"b","signature":"s2"},{"type":"text","text":"ok"}]}]`},
		{"unsigned reasoning and empty text left out",
			[]llm.Message{text("user", "go"), {Role: "assistant", ReasoningContent: "from another provider", Content: []llm.Part{{Type: "text", Text: "ok"}}}, text("user", ""), text("user", "next")},
			"",
			`[{"role":"user","content":[{"type":"text","text":"go"}]},{"role":"assistant","content":[{"type":"text","text":"ok"}]},{"role":"user","content":[{"type":"text","text":"next"}]}]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := send(t, llm.ChatRequest{Messages: c.msgs, Tools: []llm.Tool{{Name: "f"}}})
			if err != nil {
				t.Fatal(err)
			}
			if c.wantSystem == "" {
				if got["system"] != nil {
					t.Errorf("system = %v, want absent", got["system"])
				}
			} else if !reflect.DeepEqual(got["system"], jsonValue(t, c.wantSystem)) {
				t.Errorf("system = %v\nwant %s", got["system"], c.wantSystem)
			}
			if !reflect.DeepEqual(got["messages"], jsonValue(t, c.wantMessages)) {
				b, _ := json.Marshal(got["messages"])
				t.Errorf("messages = %s\nwant %s", b, c.wantMessages)
			}
		})
	}
}

func TestBadMessages(t *testing.T) {
	cases := map[string][]llm.Message{
		"arguments not an object":  {text("user", "x"), {Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "t", Name: "f", Arguments: `[1]`}}}},
		"image in a system prompt": {{Role: "system", Content: []llm.Part{{Type: llm.PartImageURL, ImageURL: "https://x.test/a.png"}}}, text("user", "x")},
		"tool message without id":  {text("user", "x"), {Role: "tool", Content: []llm.Part{{Type: "text", Text: "r"}}}},
		"unknown role":             {text("narrator", "x")},
		"forged signature":         {text("user", "x"), {Role: "assistant", ReasoningContent: "r", ReasoningSignature: `[{"type":"text","text":"x"}]`}},
	}
	for name, msgs := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, err := send(t, llm.ChatRequest{Messages: msgs})
			if llm.KindOf(err) != llm.KindInvalidArgument {
				t.Errorf("error = %v, want invalid_argument", err)
			}
		})
	}
}

// TestReasoningRoundTrip: the signature a blocking answer carries goes back unchanged, and
// several thinking blocks survive the trip.
func TestReasoningRoundTrip(t *testing.T) {
	answer := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":9},
	  "content":[{"type":"thinking","thinking":"first","signature":"s1"},{"type":"redacted_thinking","data":"ZW5j"},{"type":"thinking","thinking":" second","signature":"s2"},
	             {"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}]}`
	up := newCapture(t, 200, "application/json", answer)
	p := newProvider(t, provider.Config{BaseURL: up.srv.URL, APIKey: "k"})
	req := &llm.ChatRequest{Model: "claude-sonnet-4-5", Messages: []llm.Message{text("user", "go")}, Tools: []llm.Tool{{Name: "f"}}}
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	<-up.body
	ch := resp.Choices[0]
	if ch.ReasoningContent == nil || *ch.ReasoningContent != "first second" || ch.Content != nil || ch.FinishReason != llm.FinishToolCalls {
		t.Fatalf("choice = %+v", ch)
	}
	req.Messages = append(req.Messages,
		llm.Message{Role: "assistant", ReasoningContent: *ch.ReasoningContent, ReasoningSignature: ch.ReasoningSignature, ToolCalls: ch.ToolCalls},
		llm.Message{Role: "tool", ToolCallID: "toolu_1", Content: []llm.Part{{Type: "text", Text: "42"}}})
	if _, err := p.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var sent map[string]any
	json.Unmarshal(<-up.body, &sent)
	want := jsonValue(t, `[{"type":"thinking","thinking":"first","signature":"s1"},{"type":"redacted_thinking","data":"ZW5j"},{"type":"thinking","thinking":" second","signature":"s2"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}]`)
	if got := at(sent, "messages.1.content"); !reflect.DeepEqual(got, want) {
		t.Errorf("assistant turn sent back = %v", got)
	}
}

func TestConfig(t *testing.T) {
	cases := []struct {
		name     string
		base     string
		options  map[string]string
		headers  map[string]string
		wantPath string
		wantHdr  map[string]string
		wantMax  float64
	}{
		{"defaults", "", nil, nil, "/v1/messages", map[string]string{"X-Api-Key": "sk-ant-1", "Anthropic-Version": "2023-06-01"}, 4096},
		{"trailing /v1 tolerated", "/v1/", nil, nil, "/v1/messages", nil, 4096},
		{"path prefix kept", "/proxy/anthropic", nil, nil, "/proxy/anthropic/v1/messages", nil, 4096},
		{"options and extra headers", "", map[string]string{"default_max_tokens": "1024", "anthropic_version": "2024-01-01"},
			map[string]string{"anthropic-beta": "interleaved-thinking-2025-05-14"}, "/v1/messages",
			map[string]string{"Anthropic-Version": "2024-01-01", "Anthropic-Beta": "interleaved-thinking-2025-05-14"}, 1024},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, 200, "application/json", okAnswer)
			p := newProvider(t, provider.Config{BaseURL: up.srv.URL + c.base, APIKey: "sk-ant-1", Options: c.options, Headers: c.headers})
			if _, err := p.Chat(context.Background(), chatReq()); err != nil {
				t.Fatal(err)
			}
			var sent map[string]any
			json.Unmarshal(<-up.body, &sent)
			h := <-up.header
			if path := <-up.path; path != c.wantPath {
				t.Errorf("path = %q, want %q", path, c.wantPath)
			}
			for k, v := range c.wantHdr {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			if sent["max_tokens"] != c.wantMax {
				t.Errorf("max_tokens = %v, want %v", sent["max_tokens"], c.wantMax)
			}
		})
	}
	for name, cfg := range map[string]provider.Config{
		"ftp base":        {BaseURL: "ftp://x"},
		"no scheme":       {BaseURL: "api.anthropic.com"},
		"zero max tokens": {Options: map[string]string{"default_max_tokens": "0"}},
		"text max tokens": {Options: map[string]string{"default_max_tokens": "many"}},
		"empty version":   {Options: map[string]string{"anthropic_version": ""}},
		"unknown option":  {Options: map[string]string{"num_ctx": "8192"}},
		"unknown mapping": {TemperatureMapping: "log"},
	} {
		if _, err := anthropic.New(cfg); err == nil {
			t.Errorf("New with %s: nil error", name)
		}
	}
	p := newProvider(t, provider.Config{Models: []string{"claude-sonnet-4-5"}})
	if got := p.(llm.ModelLister).Models(); !reflect.DeepEqual(got, []string{"claude-sonnet-4-5"}) {
		t.Errorf("Models = %v", got)
	}
}
