package bedrock_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/bedrock"
	"github.com/switchyard/switchyard/internal/provider/bedrock/bedrocktest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// send runs req through a capturing fake and returns the native Converse request as generic
// JSON, the warnings and the error. A refused request must not reach the fake.
func send(t *testing.T, req llm.ChatRequest) (map[string]any, []string, error) {
	t.Helper()
	raw, warnings, err := sendRaw(t, req)
	if err != nil {
		return nil, warnings, err
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	return got, warnings, nil
}

func sendRaw(t *testing.T, req llm.ChatRequest) ([]byte, []string, error) {
	t.Helper()
	if req.Messages == nil {
		req.Messages = []llm.Message{llm.TextMessage(llm.RoleUser, "x")}
	}
	req.Model = model
	bodies := make(chan []byte, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- b
		bedrocktest.Wire{}.WriteChat(w, &llm.ChatResponse{Choices: []llm.Choice{{Content: llm.Ptr("ok"), FinishReason: llm.FinishStop}}})
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig()
	cfg.BaseURL = srv.URL
	p, err := bedrock.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, warnings := llm.WithWarnings(context.Background())
	if _, err := p.Chat(ctx, &req); err != nil {
		select {
		case <-bodies:
			t.Error("the upstream was called for a refused request")
		default:
		}
		return nil, warnings.List(), err
	}
	return <-bodies, warnings.List(), nil
}

func field(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func wantWarning(t *testing.T, warnings []string, substr string) {
	t.Helper()
	for _, w := range warnings {
		if strings.Contains(w, substr) {
			return
		}
	}
	t.Errorf("warnings %q lack %q", warnings, substr)
}

func dropped(param string, set func(*llm.ChatRequest), absent string) providertest.ParamCheck {
	return func(t *testing.T, _ provider.ParamRule) {
		var req llm.ChatRequest
		set(&req)
		got, warnings, err := send(t, req)
		if err != nil {
			t.Fatal(err)
		}
		wantWarning(t, warnings, param)
		if absent != "" && strings.Contains(mustJSON(got), absent) {
			t.Errorf("request carries %q: %v", absent, got)
		}
	}
}

func rejected(set func(*llm.ChatRequest), param string) providertest.ParamCheck {
	return func(t *testing.T, _ provider.ParamRule) {
		var req llm.ChatRequest
		set(&req)
		_, _, err := send(t, req)
		e := providertest.WantError(t, err, llm.KindInvalidArgument, "")
		if e.Param != param {
			t.Errorf("Param = %q, want %q", e.Param, param)
		}
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestParamRules(t *testing.T) {
	weather := llm.Tool{Name: "get_weather", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"}}}`)}
	providertest.CheckParamRules(t, bedrock.ParamRules(), map[string]providertest.ParamCheck{
		"temperature": func(t *testing.T, _ provider.ParamRule) {
			got, w, _ := send(t, llm.ChatRequest{Temperature: llm.Ptr(1.7)})
			if field(got, "inferenceConfig.temperature") != 1.0 {
				t.Errorf("temperature = %v, want 1", field(got, "inferenceConfig.temperature"))
			}
			wantWarning(t, w, "temperature")
			got, w, _ = send(t, llm.ChatRequest{Temperature: llm.Ptr(0.5)})
			if field(got, "inferenceConfig.temperature") != 0.5 || len(w) != 0 {
				t.Errorf("temperature 0.5 = %v, warnings %q", field(got, "inferenceConfig.temperature"), w)
			}
		},
		"top_p": func(t *testing.T, _ provider.ParamRule) {
			got, _, _ := send(t, llm.ChatRequest{TopP: llm.Ptr(0.5)})
			if field(got, "inferenceConfig.topP") != 0.5 {
				t.Errorf("topP = %v", field(got, "inferenceConfig.topP"))
			}
		},
		"max_tokens": func(t *testing.T, _ provider.ParamRule) {
			got, _, _ := send(t, llm.ChatRequest{MaxTokens: llm.Ptr[int32](77)})
			if field(got, "inferenceConfig.maxTokens") != 77.0 {
				t.Errorf("maxTokens = %v", field(got, "inferenceConfig.maxTokens"))
			}
			got, _, _ = send(t, llm.ChatRequest{})
			if field(got, "inferenceConfig") != nil {
				t.Errorf("inferenceConfig without parameters = %v", field(got, "inferenceConfig"))
			}
		},
		"stop": func(t *testing.T, _ provider.ParamRule) {
			got, _, _ := send(t, llm.ChatRequest{Stop: []string{"END"}})
			if !reflect.DeepEqual(field(got, "inferenceConfig.stopSequences"), []any{"END"}) {
				t.Errorf("stopSequences = %v", field(got, "inferenceConfig.stopSequences"))
			}
		},
		"presence_penalty":  dropped("presence_penalty", func(r *llm.ChatRequest) { r.PresencePenalty = llm.Ptr(0.5) }, "penalty"),
		"frequency_penalty": dropped("frequency_penalty", func(r *llm.ChatRequest) { r.FrequencyPenalty = llm.Ptr(0.5) }, "penalty"),
		"seed":              dropped("seed", func(r *llm.ChatRequest) { r.Seed = llm.Ptr[int64](7) }, "seed"),
		"n":                 rejected(func(r *llm.ChatRequest) { r.N = llm.Ptr[int32](2) }, "n"),
		"response_format": dropped("response_format", func(r *llm.ChatRequest) {
			r.ResponseFormat = &llm.ResponseFormat{Type: "json_object"}
		}, "json"),
		"tools": func(t *testing.T, _ provider.ParamRule) {
			got, _, _ := send(t, llm.ChatRequest{Tools: []llm.Tool{weather}})
			spec := field(got, "toolConfig")
			if !strings.Contains(mustJSON(spec), `"toolSpec":{"inputSchema":{"json":{"properties":{"city":{"type":"string"}},"type":"object"}},"name":"get_weather"}`) {
				t.Errorf("toolConfig = %s", mustJSON(spec))
			}
			// A history with tool calls and no tools gets stand-ins.
			got, _, _ = send(t, llm.ChatRequest{Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "x"),
				{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "c1", Name: "lookup", Arguments: `{}`}}},
				{Role: llm.RoleTool, ToolCallID: "c1", Content: []llm.Part{{Type: llm.PartText, Text: "42"}}}}})
			if !strings.Contains(mustJSON(field(got, "toolConfig")), `"name":"lookup"`) {
				t.Errorf("stand-in toolConfig = %s", mustJSON(field(got, "toolConfig")))
			}
		},
		"tool_choice": func(t *testing.T, _ provider.ParamRule) {
			for mode, want := range map[string]string{"auto": `{"auto":{}}`, "required": `{"any":{}}`} {
				got, _, _ := send(t, llm.ChatRequest{Tools: []llm.Tool{weather}, ToolChoice: &llm.ToolChoice{Mode: mode}})
				if s := mustJSON(field(got, "toolConfig.toolChoice")); s != want {
					t.Errorf("%s → %s, want %s", mode, s, want)
				}
			}
			got, _, _ := send(t, llm.ChatRequest{Tools: []llm.Tool{weather}, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "get_weather"}})
			if s := mustJSON(field(got, "toolConfig.toolChoice")); s != `{"tool":{"name":"get_weather"}}` {
				t.Errorf("named → %s", s)
			}
			got, _, _ = send(t, llm.ChatRequest{Tools: []llm.Tool{weather}, ToolChoice: &llm.ToolChoice{Mode: "none"}})
			if field(got, "toolConfig") != nil {
				t.Errorf("none → toolConfig %v, want none", field(got, "toolConfig"))
			}
		},
		"parallel_tool_calls": dropped("parallel_tool_calls", func(r *llm.ChatRequest) { r.ParallelToolCalls = llm.Ptr(false) }, "parallel"),
		"user":                dropped("user", func(r *llm.ChatRequest) { r.User = "u-1" }, "u-1"),
		"reasoning_effort":    dropped("reasoning_effort", func(r *llm.ChatRequest) { r.ReasoningEffort = "high" }, "high"),
		"image_url": func(t *testing.T, _ provider.ParamRule) {
			img := func(u string) llm.ChatRequest {
				return llm.ChatRequest{Messages: []llm.Message{{Role: llm.RoleUser, ContentIsParts: true,
					Content: []llm.Part{{Type: llm.PartText, Text: "what?"}, {Type: llm.PartImageURL, ImageURL: u}}}}}
			}
			got, _, err := send(t, img("data:image/jpeg;base64,/9j/AA=="))
			if err != nil {
				t.Fatal(err)
			}
			if s := mustJSON(field(got, "messages")); !strings.Contains(s, `{"image":{"format":"jpeg","source":{"bytes":"/9j/AA=="}}}`) {
				t.Errorf("messages = %s", s)
			}
			_, _, err = send(t, img("https://example.com/cat.png"))
			if e := providertest.WantError(t, err, llm.KindInvalidArgument, ""); e.Param != "image_url" || !strings.Contains(e.Message, "data: URL") {
				t.Errorf("http image error = %+v", e)
			}
		},
		"input_audio": rejected(func(r *llm.ChatRequest) {
			r.Messages = []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartInputAudio, AudioData: "AAAA", AudioFormat: "wav"}}}}
		}, "input_audio"),
		"file": rejected(func(r *llm.ChatRequest) {
			r.Messages = []llm.Message{{Role: llm.RoleUser, Content: []llm.Part{{Type: llm.PartFile, FileData: "data:application/pdf;base64,AAAA"}}}}
		}, "file"),
		"embeddings.dimensions": func(t *testing.T, _ provider.ParamRule) {
			// TestEmbed sends dimensions to Titan and checks the refusal for Cohere.
			t.Run("embed", TestEmbed)
		},
	})
}

// TestMessages checks the turn layout: system prompts, merged user turns with tool results,
// assistant tool uses with their input as a JSON document.
func TestMessages(t *testing.T) {
	got, _, err := send(t, llm.ChatRequest{Messages: []llm.Message{
		llm.TextMessage(llm.RoleSystem, "Be terse."), llm.TextMessage(llm.RoleDeveloper, "Use metric."),
		llm.TextMessage(llm.RoleUser, "Weather in Paris and Oslo?"),
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "a", Name: "w", Arguments: `{"city":"Paris","n":12345678901234567}`}, {ID: "b", Name: "w", Arguments: `{"city":"Oslo"}`}}},
		{Role: llm.RoleTool, ToolCallID: "a", Content: []llm.Part{{Type: llm.PartText, Text: "18C"}}},
		{Role: llm.RoleTool, ToolCallID: "b", Content: []llm.Part{{Type: llm.PartText, Text: "9C"}}},
		llm.TextMessage(llm.RoleUser, "Thanks."),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if s := mustJSON(got["system"]); s != `[{"text":"Be terse."},{"text":"Use metric."}]` {
		t.Errorf("system = %s", s)
	}
	msgs, _ := got["messages"].([]any)
	if len(msgs) != 3 {
		t.Fatalf("messages = %s, want user, assistant, user", mustJSON(msgs))
	}
	if s := mustJSON(msgs[2]); s != `{"content":[{"toolResult":{"content":[{"text":"18C"}],"toolUseId":"a"}},{"toolResult":{"content":[{"text":"9C"}],"toolUseId":"b"}},{"text":"Thanks."}],"role":"user"}` {
		t.Errorf("last user turn = %s", s)
	}
	raw, _, _ := sendRaw(t, llm.ChatRequest{Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "x"),
		{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{ID: "a", Name: "w", Arguments: `{"n":12345678901234567,"f":0.1}`}}}}})
	if !strings.Contains(string(raw), `"n":12345678901234567`) || !strings.Contains(string(raw), `"f":0.1`) {
		t.Errorf("request = %s (tool input numbers must keep their digits)", raw)
	}
}
