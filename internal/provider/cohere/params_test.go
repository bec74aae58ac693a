package cohere_test

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/cohere"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// paramCase sends req (or embed) and checks the native request: want maps dotted JSON paths
// (numbers index lists) to values, nil meaning absent; wantWarn is a substring of the warning
// recorded; wantErr the Param of the KindInvalidArgument error.
type paramCase struct {
	name     string
	req      llm.ChatRequest
	embed    *llm.EmbeddingRequest
	want     map[string]any
	wantWarn string
	wantErr  string
}

func lookup(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func runParamCase(t *testing.T, c paramCase) {
	t.Helper()
	answer := okAnswer
	if c.embed != nil {
		answer = `{"id":"e","embeddings":{"float":[[1]]},"meta":{"billed_units":{"input_tokens":1}}}`
	}
	up := newCapture(t, 200, "application/json", answer)
	p := up.provider(t, provider.Config{})
	ctx, warnings := llm.WithWarnings(context.Background())
	var err error
	if c.embed != nil {
		_, err = p.Embed(ctx, c.embed)
	} else {
		req := c.req
		req.Model = "command-a-03-2025"
		if req.Messages == nil {
			req.Messages = []llm.Message{llm.TextMessage(llm.RoleUser, "x")}
		}
		_, err = p.Chat(ctx, &req)
	}
	if c.wantErr != "" {
		e := providertest.WantError(t, err, llm.KindInvalidArgument, "")
		if e.Param != c.wantErr {
			t.Errorf("Param = %q, want %q", e.Param, c.wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	body := up.sent(t)
	for path, want := range c.want {
		got, ok := lookup(body, path)
		if want == nil {
			if ok {
				t.Errorf("%s = %v, want absent", path, got)
			}
			continue
		}
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	w := strings.Join(warnings.List(), "; ")
	if (c.wantWarn == "") != (w == "") || !strings.Contains(w, c.wantWarn) {
		t.Errorf("warnings %q, want %q", w, c.wantWarn)
	}
}

func TestParamRules(t *testing.T) {
	img := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	user := func(parts ...llm.Part) []llm.Message {
		return []llm.Message{{Role: llm.RoleUser, ContentIsParts: true, Content: parts}}
	}
	schema := []byte(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)
	tools := []llm.Tool{{Name: "get_weather", Description: "Weather.", Parameters: schema}, {Name: "get_time"}}
	cases := map[string][]paramCase{
		"temperature": {
			{name: "in range", req: llm.ChatRequest{Temperature: llm.Ptr(0.7)}, want: map[string]any{"temperature": 0.7}},
			{name: "clamped", req: llm.ChatRequest{Temperature: llm.Ptr(1.5)}, want: map[string]any{"temperature": 1.0}, wantWarn: "temperature 1.5 clamped to 1"},
		},
		"top_p": {
			{name: "renamed", req: llm.ChatRequest{TopP: llm.Ptr(0.5)}, want: map[string]any{"p": 0.5, "top_p": nil}},
			{name: "clamped", req: llm.ChatRequest{TopP: llm.Ptr(1.0)}, want: map[string]any{"p": 0.99}, wantWarn: "top_p 1 clamped to 0.99"},
		},
		"max_tokens": {{req: llm.ChatRequest{MaxTokens: llm.Ptr[int32](256)}, want: map[string]any{"max_tokens": 256.0}}},
		"stop": {
			{req: llm.ChatRequest{Stop: []string{"END", "\n\n"}}, want: map[string]any{"stop_sequences": []any{"END", "\n\n"}}},
			{name: "too many", req: llm.ChatRequest{Stop: []string{"a", "b", "c", "d", "e", "f"}}, wantErr: "stop"},
		},
		"presence_penalty": {
			{req: llm.ChatRequest{PresencePenalty: llm.Ptr(0.5)}, want: map[string]any{"presence_penalty": 0.5}},
			{name: "clamped", req: llm.ChatRequest{PresencePenalty: llm.Ptr(-1.0)}, want: map[string]any{"presence_penalty": 0.0}, wantWarn: "presence_penalty -1 clamped to 0"},
		},
		"frequency_penalty": {
			{name: "clamped", req: llm.ChatRequest{FrequencyPenalty: llm.Ptr(2.0)}, want: map[string]any{"frequency_penalty": 1.0}, wantWarn: "frequency_penalty 2 clamped to 1"},
		},
		"seed": {
			{req: llm.ChatRequest{Seed: llm.Ptr[int64](42)}, want: map[string]any{"seed": 42.0}},
			{name: "negative", req: llm.ChatRequest{Seed: llm.Ptr[int64](-1)}, wantErr: "seed"},
		},
		"n": {
			{name: "one", req: llm.ChatRequest{N: llm.Ptr[int32](1)}, want: map[string]any{"n": nil}},
			{name: "two", req: llm.ChatRequest{N: llm.Ptr[int32](2)}, wantErr: "n"},
		},
		"response_format": {
			{name: "json_object", req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_object"}}, want: map[string]any{"response_format.type": "json_object", "response_format.json_schema": nil}},
			{name: "json_schema", req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_schema", SchemaName: "w", Schema: schema, Strict: llm.Ptr(true)}},
				want: map[string]any{"response_format.type": "json_object", "response_format.json_schema.required": []any{"city"}, "response_format.name": nil}},
			{name: "text", req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "text"}}, want: map[string]any{"response_format": nil}},
		},
		"tools": {
			{req: llm.ChatRequest{Tools: tools}, want: map[string]any{"tools.0.type": "function", "tools.0.function.name": "get_weather", "tools.0.function.parameters.required": []any{"city"},
				"tools.1.function.parameters.type": "object", "strict_tools": nil}},
			{name: "null parameters", req: llm.ChatRequest{Tools: []llm.Tool{{Name: "f", Parameters: []byte(" null")}}}, want: map[string]any{"tools.0.function.parameters.type": "object"}},
			{name: "strict", req: llm.ChatRequest{Tools: []llm.Tool{{Name: "f", Parameters: schema, Strict: llm.Ptr(true)}}}, want: map[string]any{"strict_tools": true}},
		},
		"tool_choice": {
			{name: "auto", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "auto"}}, want: map[string]any{"tool_choice": nil}},
			{name: "none", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "none"}}, want: map[string]any{"tool_choice": "NONE"}},
			{name: "required", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "required"}}, want: map[string]any{"tool_choice": "REQUIRED", "tools.1.function.name": "get_time"}},
			{name: "named", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "get_time"}}, want: map[string]any{"tool_choice": "REQUIRED", "tools.0.function.name": "get_time", "tools.1": nil}},
			{name: "named unknown", req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "nope"}}, wantErr: "tool_choice"},
		},
		"parallel_tool_calls": {{req: llm.ChatRequest{Tools: tools, ParallelToolCalls: llm.Ptr(false)}, want: map[string]any{"parallel_tool_calls": nil}, wantWarn: "parallel_tool_calls"}},
		"user":                {{req: llm.ChatRequest{User: "u-7"}, want: map[string]any{"user": nil}, wantWarn: "user is not supported"}},
		"reasoning_effort": {
			{name: "medium", req: llm.ChatRequest{ReasoningEffort: "medium"}, want: map[string]any{"thinking.type": "enabled", "thinking.token_budget": 8192.0}},
			{name: "none", req: llm.ChatRequest{ReasoningEffort: "none"}, want: map[string]any{"thinking.type": "disabled", "thinking.token_budget": nil}},
			{name: "unknown", req: llm.ChatRequest{ReasoningEffort: "max"}, wantErr: "reasoning_effort"},
		},
		"image_url": {{req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartText, Text: "what?"}, llm.Part{Type: llm.PartImageURL, ImageURL: img, ImageDetail: "high"})},
			want: map[string]any{"messages.0.content.1.type": "image_url", "messages.0.content.1.image_url.url": img, "messages.0.content.1.image_url.detail": "high"}}},
		"input_audio":           {{req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartInputAudio, AudioData: "AAAA", AudioFormat: "wav"})}, wantErr: "input_audio"}},
		"file":                  {{req: llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartFile, FileData: "data:application/pdf;base64,AAAA"})}, wantErr: "file"}},
		"embeddings.dimensions": {{embed: &llm.EmbeddingRequest{Model: "embed-v4.0", Texts: []string{"a"}, Dimensions: llm.Ptr[int32](512)}, want: map[string]any{"output_dimension": 512.0, "input_type": "search_document"}}},
	}
	checks := map[string]providertest.ParamCheck{}
	for param, cs := range cases {
		checks[param] = func(t *testing.T, rule provider.ParamRule) {
			for _, c := range cs {
				t.Run(c.name, func(t *testing.T) { runParamCase(t, c) })
			}
		}
	}
	providertest.CheckParamRules(t, cohere.ParamRules(), checks)
}
