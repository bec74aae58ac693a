package ollama_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/ollama"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

const pngURL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAAABJRU5ErkJggg=="

// sent sends req through the adapter and returns the native request, the warnings and the error.
func sent(t *testing.T, req llm.ChatRequest) (map[string]any, []string, error) {
	t.Helper()
	if req.Messages == nil {
		req.Messages = []llm.Message{llm.TextMessage(llm.RoleUser, "x")}
	}
	req.Model = "qwen3"
	up := newCapture(t, 200, "application/json", okAnswer)
	p := newProvider(t, provider.Config{BaseURL: up.srv.URL})
	ctx, warnings := llm.WithWarnings(context.Background())
	_, err := p.Chat(ctx, &req)
	var body map[string]any
	select {
	case b := <-up.body:
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
	default:
	}
	return body, warnings.List(), err
}

// at follows a dotted path ("options.temperature"; "messages[].images" reads the first message).
func at(body map[string]any, path string) (any, bool) {
	var v any = body
	for _, key := range strings.Split(path, ".") {
		key, first := strings.CutSuffix(key, "[]")
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[key]; !ok {
			return nil, false
		}
		if first {
			list, _ := v.([]any)
			if len(list) == 0 {
				return nil, false
			}
			v = list[0]
		}
	}
	return v, true
}

func TestParamRules(t *testing.T) {
	user := func(parts ...llm.Part) []llm.Message {
		return []llm.Message{{Role: llm.RoleUser, ContentIsParts: true, Content: parts}}
	}
	// native: the rule's native member carries want (JSON), and nothing is warned.
	native := func(req llm.ChatRequest, want string) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			body, warnings, err := sent(t, req)
			if err != nil {
				t.Fatal(err)
			}
			var w any
			json.Unmarshal([]byte(want), &w)
			if got, ok := at(body, rule.Native); !ok || !reflect.DeepEqual(got, w) {
				t.Errorf("%s = %v (present %v), want %s", rule.Native, got, ok, want)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings %q", warnings)
			}
		}
	}
	// dropped: the request goes through, absent members are not sent, and warn (if set) is warned.
	dropped := func(req llm.ChatRequest, warn string, absent ...string) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			body, warnings, err := sent(t, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range absent {
				if v, ok := at(body, a); ok {
					t.Errorf("%s = %v sent", a, v)
				}
			}
			if warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], warn)) {
				t.Errorf("warnings = %q, want one about %q", warnings, warn)
			}
			if warn == "" && len(warnings) != 0 {
				t.Errorf("warnings = %q, want none", warnings)
			}
		}
	}
	rejected := func(req llm.ChatRequest) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			body, _, err := sent(t, req)
			e := providertest.WantError(t, err, llm.KindInvalidArgument, "")
			if e.Param == "" || body != nil {
				t.Errorf("param %q, request sent: %v", e.Param, body != nil)
			}
		}
	}
	tools := []llm.Tool{{Name: "f", Parameters: []byte(`{"type":"object"}`)}}
	checks := map[string]providertest.ParamCheck{
		"temperature":       native(llm.ChatRequest{Temperature: llm.Ptr(0.7)}, `0.7`),
		"top_p":             native(llm.ChatRequest{TopP: llm.Ptr(0.9)}, `0.9`),
		"max_tokens":        native(llm.ChatRequest{MaxTokens: llm.Ptr[int32](128)}, `128`),
		"stop":              native(llm.ChatRequest{Stop: []string{"\n\n", "END"}}, `["\n\n","END"]`),
		"presence_penalty":  native(llm.ChatRequest{PresencePenalty: llm.Ptr(0.5)}, `0.5`),
		"frequency_penalty": native(llm.ChatRequest{FrequencyPenalty: llm.Ptr(-0.5)}, `-0.5`),
		"seed":              native(llm.ChatRequest{Seed: llm.Ptr[int64](42)}, `42`),
		"n": func(t *testing.T, rule provider.ParamRule) {
			dropped(llm.ChatRequest{N: llm.Ptr[int32](1)}, "", "n")(t, rule)
			dropped(llm.ChatRequest{N: llm.Ptr[int32](2)}, "n=2", "n")(t, rule)
		},
		"response_format": func(t *testing.T, rule provider.ParamRule) {
			native(llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_object"}}, `"json"`)(t, rule)
			native(llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_schema", Schema: []byte(`{"type":"object","properties":{"a":{"type":"string"}}}`)}},
				`{"type":"object","properties":{"a":{"type":"string"}}}`)(t, rule)
			dropped(llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "text"}}, "", "format")(t, rule)
			rejected(llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_schema", Schema: []byte(`[1]`)}})(t, rule)
		},
		"tools": native(llm.ChatRequest{Tools: tools}, `[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]`),
		"tool_choice": func(t *testing.T, rule provider.ParamRule) {
			dropped(llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "auto"}}, "", "tool_choice")(t, rule)
			dropped(llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "none"}}, "", "tools", "tool_choice")(t, rule)
			dropped(llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "required"}}, `tool_choice "required"`, "tool_choice")(t, rule)
			dropped(llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "f"}}, `tool_choice "f"`, "tool_choice")(t, rule)
		},
		"parallel_tool_calls": func(t *testing.T, rule provider.ParamRule) {
			dropped(llm.ChatRequest{Tools: tools, ParallelToolCalls: llm.Ptr(true)}, "", "parallel_tool_calls")(t, rule)
			dropped(llm.ChatRequest{Tools: tools, ParallelToolCalls: llm.Ptr(false)}, "parallel_tool_calls=false", "parallel_tool_calls")(t, rule)
		},
		"user": dropped(llm.ChatRequest{User: "u-1"}, "user dropped", "user"),
		"reasoning_effort": func(t *testing.T, rule provider.ParamRule) {
			for effort, want := range map[string]string{"none": `false`, "minimal": `"low"`, "low": `"low"`, "medium": `"medium"`, "high": `"high"`, "xhigh": `"max"`, "max": `"max"`} {
				native(llm.ChatRequest{ReasoningEffort: effort}, want)(t, rule)
			}
			rejected(llm.ChatRequest{ReasoningEffort: "extreme"})(t, rule)
		},
		"image_url": func(t *testing.T, rule provider.ParamRule) {
			native(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartText, Text: "what?"}, llm.Part{Type: llm.PartImageURL, ImageURL: pngURL})},
				`["`+strings.TrimPrefix(pngURL, "data:image/png;base64,")+`"]`)(t, rule)
			rejected(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartImageURL, ImageURL: "https://example.com/cat.png"})})(t, rule)
			rejected(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartImageURL, ImageURL: "data:image/png,rawbytes"})})(t, rule)
		},
		"input_audio": rejected(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartInputAudio, AudioData: "UklGRg==", AudioFormat: "wav"})}),
		"file":        rejected(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartFile, FileData: "data:application/pdf;base64,JVBERi0="})}),
		"embeddings.dimensions": func(t *testing.T, rule provider.ParamRule) {
			up := newCapture(t, 200, "application/json", `{"model":"e","embeddings":[[1]]}`)
			p := newProvider(t, provider.Config{BaseURL: up.srv.URL})
			if _, err := p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: []string{"a"}, Dimensions: llm.Ptr[int32](64)}); err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			json.Unmarshal(<-up.body, &body)
			if body[rule.Native] != 64.0 || !reflect.DeepEqual(body["input"], []any{"a"}) {
				t.Errorf("embed request = %v", body)
			}
		},
	}
	providertest.CheckParamRules(t, ollama.ParamRules(), checks)
}

// TestMessageEncoding: developer becomes system, tool calls carry object arguments, and tool
// results name their tool (from the earlier call when the message does not).
func TestMessageEncoding(t *testing.T) {
	call := llm.ToolCall{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}
	body, _, err := sent(t, llm.ChatRequest{Messages: []llm.Message{
		llm.TextMessage(llm.RoleDeveloper, "be brief"),
		llm.TextMessage(llm.RoleUser, "weather?"),
		{Role: llm.RoleAssistant, ReasoningContent: "need the tool", ToolCalls: []llm.ToolCall{call, {ID: "call_2", Name: "now"}}},
		{Role: llm.RoleTool, ToolCallID: "call_1", Content: []llm.Part{{Type: llm.PartText, Text: `{"c":18}`}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"role":"system","content":"be brief"},{"role":"user","content":"weather?"},
		{"role":"assistant","content":"","thinking":"need the tool","tool_calls":[
			{"id":"call_1","function":{"index":0,"name":"get_weather","arguments":{"city":"Paris"}}},
			{"id":"call_2","function":{"index":1,"name":"now","arguments":{}}}]},
		{"role":"tool","content":"{\"c\":18}","tool_name":"get_weather","tool_call_id":"call_1"}]`
	var w any
	json.Unmarshal([]byte(want), &w)
	if !reflect.DeepEqual(body["messages"], w) {
		got, _ := json.Marshal(body["messages"])
		t.Errorf("messages =\n%s\nwant\n%s", got, want)
	}
	_, _, err = sent(t, llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c", Name: "f", Arguments: `"not an object"`}}}}})
	providertest.WantError(t, err, llm.KindInvalidArgument, "")
}
