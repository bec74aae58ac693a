package gemini_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/gemini"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

func TestParamRulesCoverCanonicalParams(t *testing.T) {
	var got []string
	for _, r := range gemini.ParamRules() {
		got = append(got, r.Param)
		if r.Action == "" || (r.Native == "" && r.Action != provider.ParamDrop && r.Action != provider.ParamReject) {
			t.Errorf("rule %s: action %q native %q", r.Param, r.Action, r.Native)
		}
	}
	if !reflect.DeepEqual(got, provider.CanonicalParams) {
		t.Errorf("rules for %v, want %v in matrix order", got, provider.CanonicalParams)
	}
}

// TestParamRules sends each canonical parameter and checks the native request: want holds
// JSON paths (dot-separated, numbers index lists) and their expected values; wantWarn a
// substring of the warning recorded; wantErr the Param of the KindInvalidArgument error.
// Every rule of ParamRules has at least one case (checked at the end).
func TestParamRules(t *testing.T) {
	img := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	user := func(parts ...llm.Part) []llm.Message {
		return []llm.Message{{Role: llm.RoleUser, ContentIsParts: true, Content: parts}}
	}
	tools := []llm.Tool{{Name: "get_weather", Description: "Weather.", Parameters: []byte(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}`)}}
	cases := []struct {
		param    string
		name     string
		req      llm.ChatRequest
		embed    *llm.EmbeddingRequest
		want     map[string]any
		wantWarn string
		wantErr  string
	}{
		{param: "temperature", name: "in range", req: llm.ChatRequest{Temperature: llm.Ptr(1.5)}, want: map[string]any{"generationConfig.temperature": 1.5}},
		{param: "temperature", name: "clamped", req: llm.ChatRequest{Temperature: llm.Ptr(2.5)}, want: map[string]any{"generationConfig.temperature": 2.0}, wantWarn: "temperature 2.5 clamped to 2"},
		{param: "top_p", name: "clamped", req: llm.ChatRequest{TopP: llm.Ptr(1.2)}, want: map[string]any{"generationConfig.topP": 1.0}, wantWarn: "top_p 1.2 clamped to 1"},
		{param: "max_tokens", req: llm.ChatRequest{MaxTokens: llm.Ptr[int32](256)}, want: map[string]any{"generationConfig.maxOutputTokens": 256.0}},
		{param: "stop", req: llm.ChatRequest{Stop: []string{"END", "\n\n"}}, want: map[string]any{"generationConfig.stopSequences": []any{"END", "\n\n"}}},
		{param: "stop", name: "too many", req: llm.ChatRequest{Stop: []string{"a", "b", "c", "d", "e", "f"}}, wantErr: "stop"},
		{param: "presence_penalty", req: llm.ChatRequest{PresencePenalty: llm.Ptr(0.5)}, want: map[string]any{"generationConfig.presencePenalty": 0.5}},
		{param: "frequency_penalty", req: llm.ChatRequest{FrequencyPenalty: llm.Ptr(-0.5)}, want: map[string]any{"generationConfig.frequencyPenalty": -0.5}},
		{param: "seed", req: llm.ChatRequest{Seed: llm.Ptr[int64](42)}, want: map[string]any{"generationConfig.seed": 42.0}},
		{param: "seed", name: "beyond int32", req: llm.ChatRequest{Seed: llm.Ptr[int64](1 << 40)}, wantErr: "seed"},
		{param: "n", req: llm.ChatRequest{N: llm.Ptr[int32](2)}, want: map[string]any{"generationConfig.candidateCount": 2.0}},
		{param: "response_format", name: "json_object", req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_object"}},
			want: map[string]any{"generationConfig.responseMimeType": "application/json", "generationConfig.responseJsonSchema": nil}},
		{param: "response_format", name: "json_schema", req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_schema", SchemaName: "w", Schema: []byte(`{"type":"object","properties":{"a":{"$ref":"#/$defs/s"}},"$defs":{"s":{"type":"string"}}}`), Strict: llm.Ptr(true)}},
			want: map[string]any{"generationConfig.responseMimeType": "application/json", "generationConfig.responseJsonSchema.$defs.s.type": "string"}},
		{param: "response_format", name: "text", req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "text"}}, want: map[string]any{"generationConfig": nil}},
		{param: "tools", req: llm.ChatRequest{Tools: tools},
			want: map[string]any{"tools.0.functionDeclarations.0.name": "get_weather", "tools.0.functionDeclarations.0.parametersJsonSchema.additionalProperties": false, "tools.0.functionDeclarations.0.parameters": nil}},
		{param: "tools", name: "strict dropped", req: llm.ChatRequest{Tools: []llm.Tool{{Name: "f", Strict: llm.Ptr(true)}}},
			want: map[string]any{"tools.0.functionDeclarations.0.name": "f"}, wantWarn: "strict"},
		{param: "tool_choice", name: "auto", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "auto"}}, want: map[string]any{"toolConfig.functionCallingConfig.mode": "AUTO"}},
		{param: "tool_choice", name: "none", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "none"}}, want: map[string]any{"toolConfig.functionCallingConfig.mode": "NONE"}},
		{param: "tool_choice", name: "required", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "required"}}, want: map[string]any{"toolConfig.functionCallingConfig.mode": "ANY", "toolConfig.functionCallingConfig.allowedFunctionNames": nil}},
		{param: "tool_choice", name: "named", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "get_weather"}},
			want: map[string]any{"toolConfig.functionCallingConfig.mode": "ANY", "toolConfig.functionCallingConfig.allowedFunctionNames": []any{"get_weather"}}},
		{param: "parallel_tool_calls", req: llm.ChatRequest{Tools: tools, ParallelToolCalls: llm.Ptr(false)}, want: map[string]any{"parallelToolCalls": nil}, wantWarn: "parallel_tool_calls"},
		{param: "user", req: llm.ChatRequest{User: "user-7"}, want: map[string]any{"user": nil}, wantWarn: "user is not supported"},
		{param: "reasoning_effort", name: "medium", req: llm.ChatRequest{ReasoningEffort: "medium"},
			want: map[string]any{"generationConfig.thinkingConfig.thinkingBudget": 8192.0, "generationConfig.thinkingConfig.includeThoughts": true}},
		{param: "reasoning_effort", name: "none", req: llm.ChatRequest{ReasoningEffort: "none"},
			want: map[string]any{"generationConfig.thinkingConfig.thinkingBudget": 0.0, "generationConfig.thinkingConfig.includeThoughts": nil}},
		{param: "reasoning_effort", name: "unknown", req: llm.ChatRequest{ReasoningEffort: "max"}, wantErr: "reasoning_effort"},
		{param: "image_url", name: "data URL", req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartImageURL, ImageURL: "data:image/png;base64," + img})},
			want: map[string]any{"contents.0.parts.0.inlineData.mimeType": "image/png", "contents.0.parts.0.inlineData.data": img}},
		{param: "image_url", name: "http URL", req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartImageURL, ImageURL: "https://example.com/cat.JPG?size=l", ImageDetail: "high"})},
			want: map[string]any{"contents.0.parts.0.fileData.fileUri": "https://example.com/cat.JPG?size=l", "contents.0.parts.0.fileData.mimeType": "image/jpeg"}, wantWarn: "detail"},
		{param: "image_url", name: "other scheme", req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartImageURL, ImageURL: "ftp://example.com/cat.png"})}, wantErr: "image_url"},
		{param: "input_audio", req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartInputAudio, AudioData: "UklGRg==", AudioFormat: "wav"})},
			want: map[string]any{"contents.0.parts.0.inlineData.mimeType": "audio/wav", "contents.0.parts.0.inlineData.data": "UklGRg=="}},
		{param: "file", name: "file_data", req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartFile, FileData: "data:application/pdf;base64,JVBERi0=", FileName: "a.pdf"})},
			want: map[string]any{"contents.0.parts.0.inlineData.mimeType": "application/pdf", "contents.0.parts.0.inlineData.data": "JVBERi0="}},
		{param: "file", name: "Files API URI", req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartFile, FileID: "https://generativelanguage.googleapis.com/v1beta/files/abc123"})},
			want: map[string]any{"contents.0.parts.0.fileData.fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc123"}},
		{param: "file", name: "OpenAI file id", req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartFile, FileID: "file-abc123"})}, wantErr: "file"},
		{param: "embeddings.dimensions", embed: &llm.EmbeddingRequest{Texts: []string{"a"}, Dimensions: llm.Ptr[int32](768)}, want: map[string]any{"outputDimensionality": 768.0}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.param] = true
		t.Run(c.param+"/"+c.name, func(t *testing.T) {
			answer := okAnswer
			if c.embed != nil {
				answer = `{"embedding":{"values":[0.1]}}`
			}
			up := newCapture(t, 200, "application/json", answer)
			p := up.provider(t, provider.Config{})
			ctx, warnings := llm.WithWarnings(context.Background())
			var err error
			if c.embed != nil {
				c.embed.Model = "gemini-embedding-001"
				_, err = p.(llm.Embedder).Embed(ctx, c.embed)
			} else {
				c.req.Model = "gemini-2.5-flash"
				if c.req.Messages == nil {
					c.req.Messages = userMsg("hi")
				}
				_, err = p.Chat(ctx, &c.req)
			}
			if c.wantErr != "" {
				if e := providertest.WantError(t, err, llm.KindInvalidArgument, ""); e.Param != c.wantErr {
					t.Errorf("Param = %q, want %q", e.Param, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sent := up.sent(t)
			for path, want := range c.want {
				if got := lookup(sent, path); !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", path, got, want)
				}
			}
			ws := warnings.List()
			if c.wantWarn == "" && len(ws) > 0 {
				t.Errorf("unexpected warnings %q", ws)
			}
			if c.wantWarn != "" && !slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, c.wantWarn) }) {
				t.Errorf("warnings %q lack %q", ws, c.wantWarn)
			}
		})
	}
	for _, r := range gemini.ParamRules() {
		if !covered[r.Param] {
			t.Errorf("rule %s has no case", r.Param)
		}
	}
}

// lookup follows a dot-separated path through decoded JSON; nil when absent.
func lookup(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if err := json.Unmarshal([]byte(k), &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}
