package cohere

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
)

// maxStopSequences is stop_sequences' documented limit.
const maxStopSequences = 5

// thinkingBudgets maps reasoning_effort onto thinking.token_budget (none turns thinking off).
// The budgets are Anthropic's adapter's, so one effort costs about the same on both.
var thinkingBudgets = map[string]int32{
	"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768,
}

// ParamRules documents how each canonical parameter reaches Cohere's Chat v2 API (the
// parameter conversion matrix in docs/providers.md is generated from these).
func ParamRules() []provider.ParamRule {
	return []provider.ParamRule{
		{Param: "temperature", Native: "temperature", Range: "0–1", Action: provider.ParamClamp, Note: "temperature_mapping clamp (default): values outside 0–1 are clamped, with a warning; linear: t × 0.5 (0–2 → 0–1)"},
		{Param: "top_p", Native: "p", Range: "0.01–0.99", Action: provider.ParamClamp, Note: "renamed p and clamped into 0.01–0.99, with a warning"},
		{Param: "max_tokens", Native: "max_tokens", Action: provider.ParamPass, Note: "max_completion_tokens or max_tokens"},
		{Param: "stop", Native: "stop_sequences", Range: "≤5 sequences", Action: provider.ParamRename, Note: "more than 5 sequences are rejected"},
		{Param: "presence_penalty", Native: "presence_penalty", Range: "0–1", Action: provider.ParamClamp, Note: "clamped into 0–1 with a warning (OpenAI's range is −2–2); some models take only one of the two penalties"},
		{Param: "frequency_penalty", Native: "frequency_penalty", Range: "0–1", Action: provider.ParamClamp, Note: "clamped into 0–1 with a warning (OpenAI's range is −2–2)"},
		{Param: "seed", Native: "seed", Range: "≥0", Action: provider.ParamPass, Note: "negative seeds are rejected"},
		{Param: "n", Range: "1", Action: provider.ParamReject, Note: "n>1 refused (one answer per request); n=1 accepted"},
		{Param: "response_format", Native: "response_format", Range: "text, json_object", Action: provider.ParamRename, Note: "json_object → {type: json_object}; json_schema → {type: json_object, json_schema}; name and strict are not sent"},
		{Param: "tools", Native: "tools[].function", Action: provider.ParamRename, Note: "{type: function, function: {name, description, parameters}}; strict on any tool → strict_tools: true"},
		{Param: "tool_choice", Native: "tool_choice", Range: "REQUIRED, NONE", Action: provider.ParamRename, Note: "auto → omitted, required → REQUIRED, none → NONE, a named function → REQUIRED with only that tool sent"},
		{Param: "parallel_tool_calls", Action: provider.ParamDrop, Note: "no native switch; false is dropped with a warning"},
		{Param: "user", Action: provider.ParamDrop, Note: "no native field; dropped with a warning"},
		{Param: "reasoning_effort", Native: "thinking", Range: "none, minimal, low, medium, high, xhigh", Action: provider.ParamRename, Note: "none → {type: disabled}; others → {type: enabled, token_budget: 1024/2048/8192/16384/32768}; thinking content becomes reasoning_content"},
		{Param: "image_url", Native: "content[].image_url", Action: provider.ParamPass, Note: "{type: image_url, image_url: {url, detail}} on user messages (vision models)"},
		{Param: "input_audio", Action: provider.ParamReject, Note: "no audio input"},
		{Param: "file", Action: provider.ParamReject, Note: "no file input in chat (documents are not a canonical parameter)"},
		{Param: "embeddings.dimensions", Native: "output_dimension", Action: provider.ParamRename, Note: "embed-v4 and later; input_type from the input_type option (default search_document)"},
	}
}

// invalid returns a parameter-class error naming the offending canonical parameter.
func invalid(param, format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindInvalidArgument, format, args...)
	e.Param = param
	return e
}

func clamp(ctx context.Context, name string, v, lo, hi float64) *float64 {
	c := min(max(v, lo), hi)
	if c != v {
		llm.Warn(ctx, "cohere: %s %g clamped to %g", name, v, c)
	}
	return &c
}

// encodeChat converts req into a Chat v2 request. Dropped or clamped parameters are recorded
// with llm.Warn; parameters Cohere cannot take are KindInvalidArgument errors.
func encodeChat(ctx context.Context, req *llm.ChatRequest, tempMapping string, stream bool) (*chatRequest, error) {
	w := &chatRequest{Model: req.Model, Stream: stream, MaxTokens: req.MaxTokens}
	msgs, err := encodeMessages(req.Messages)
	if err != nil {
		return nil, err
	}
	w.Messages = msgs
	if req.N != nil && *req.N != 1 {
		return nil, invalid("n", "Cohere returns one answer per request; n=%d is not supported", *req.N)
	}
	if req.Temperature != nil {
		t, clamped := provider.MapTemperature(tempMapping, *req.Temperature, 1)
		if clamped {
			llm.Warn(ctx, "cohere: temperature %g clamped to %g", *req.Temperature, t)
		}
		w.Temperature = &t
	}
	if req.TopP != nil {
		w.P = clamp(ctx, "top_p", *req.TopP, 0.01, 0.99)
	}
	if req.PresencePenalty != nil {
		w.PresencePenalty = clamp(ctx, "presence_penalty", *req.PresencePenalty, 0, 1)
	}
	if req.FrequencyPenalty != nil {
		w.FrequencyPenalty = clamp(ctx, "frequency_penalty", *req.FrequencyPenalty, 0, 1)
	}
	if len(req.Stop) > maxStopSequences {
		return nil, invalid("stop", "Cohere accepts at most %d stop sequences, got %d", maxStopSequences, len(req.Stop))
	}
	if len(req.Stop) > 0 {
		w.StopSequences = req.Stop
	}
	if req.Seed != nil {
		if *req.Seed < 0 {
			return nil, invalid("seed", "Cohere takes a non-negative seed, got %d", *req.Seed)
		}
		w.Seed = req.Seed
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			w.ResponseFormat = &responseFormat{Type: "json_object"}
		case "json_schema":
			w.ResponseFormat = &responseFormat{Type: "json_object"}
			if len(rf.Schema) > 0 {
				w.ResponseFormat.JSONSchema = json.RawMessage(rf.Schema)
			}
		default:
			return nil, invalid("response_format", "response_format type %q is not supported by Cohere", rf.Type)
		}
	}
	switch e := req.ReasoningEffort; e {
	case "":
	case "none":
		w.Thinking = &thinking{Type: "disabled"}
	default:
		budget, ok := thinkingBudgets[e]
		if !ok {
			return nil, invalid("reasoning_effort", "reasoning_effort %q is not supported by Cohere", e)
		}
		w.Thinking = &thinking{Type: "enabled", TokenBudget: budget}
	}
	if err := encodeTools(ctx, req, w); err != nil {
		return nil, err
	}
	if req.User != "" {
		llm.Warn(ctx, "cohere: user is not supported and was dropped")
	}
	return w, nil
}

func encodeTools(ctx context.Context, req *llm.ChatRequest, w *chatRequest) error {
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
		llm.Warn(ctx, "cohere: parallel_tool_calls is not supported and was dropped")
	}
	tools := req.Tools
	if tc := req.ToolChoice; tc != nil && len(tools) > 0 {
		switch tc.Mode {
		case "auto":
		case "none":
			w.ToolChoice = "NONE"
		case "required":
			w.ToolChoice = "REQUIRED"
		case "function":
			// Cohere cannot name the tool to call: REQUIRED with that tool alone has the same effect.
			i := -1
			for j := range tools {
				if tools[j].Name == tc.Name {
					i = j
					break
				}
			}
			if i < 0 {
				return invalid("tool_choice", "tool_choice names %q, which is not among the tools", tc.Name)
			}
			tools, w.ToolChoice = tools[i:i+1], "REQUIRED"
		default:
			return invalid("tool_choice", "tool_choice %q is not supported by Cohere", tc.Mode)
		}
	}
	for _, t := range tools {
		params := json.RawMessage(bytes.TrimSpace(t.Parameters))
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{"type":"object","properties":{}}`) // required upstream
		}
		w.Tools = append(w.Tools, tool{Type: "function", Function: functionDef{Name: t.Name, Description: t.Description, Parameters: params}})
		if t.Strict != nil && *t.Strict {
			w.StrictTools = llm.Ptr(true)
		}
	}
	return nil
}

// encodeMessages converts the conversation. Cohere keeps the four roles: developer messages
// become system messages; an assistant message's reasoning goes back as tool_plan when it made
// tool calls (Cohere's plan for them) and is otherwise left out.
func encodeMessages(msgs []llm.Message) ([]message, error) {
	out := make([]message, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case llm.RoleSystem, llm.RoleDeveloper:
			out = append(out, message{Role: "system", Content: m.Text()})
		case llm.RoleUser:
			c, err := userContent(m)
			if err != nil {
				return nil, err
			}
			out = append(out, message{Role: "user", Content: c})
		case llm.RoleAssistant:
			am := message{Role: "assistant"}
			if text := m.Text(); text != "" {
				am.Content = text
			}
			for _, tc := range m.ToolCalls {
				args := tc.Arguments
				if strings.TrimSpace(args) == "" {
					args = "{}"
				}
				am.ToolCalls = append(am.ToolCalls, toolCall{ID: tc.ID, Type: "function", Function: toolFunction{Name: tc.Name, Arguments: args}})
			}
			if len(am.ToolCalls) > 0 {
				am.ToolPlan = m.ReasoningContent
			}
			if am.Content == nil && len(am.ToolCalls) == 0 {
				continue // only reasoning: nothing Cohere takes
			}
			out = append(out, am)
		case llm.RoleTool:
			if m.ToolCallID == "" {
				return nil, invalid("messages", "a tool message needs the tool_call_id of the call it answers")
			}
			out = append(out, message{Role: "tool", ToolCallID: m.ToolCallID, Content: m.Text()})
		default:
			return nil, invalid("messages", "message role %q is not supported by Cohere", m.Role)
		}
	}
	if len(out) == 0 {
		return nil, invalid("messages", "the conversation needs at least one message")
	}
	return out, nil
}

// userContent is a string for plain text, else a list of text and image_url parts.
func userContent(m *llm.Message) (any, error) {
	plain := true
	for _, p := range m.Content {
		if p.Type != llm.PartText {
			plain = false
		}
	}
	if plain && !m.ContentIsParts {
		return m.Text(), nil
	}
	parts := make([]contentPart, 0, len(m.Content))
	for _, p := range m.Content {
		switch p.Type {
		case llm.PartText:
			parts = append(parts, contentPart{Type: "text", Text: llm.Ptr(p.Text)})
		case llm.PartImageURL:
			parts = append(parts, contentPart{Type: "image_url", ImageURL: &imageURL{URL: p.ImageURL, Detail: p.ImageDetail}})
		case llm.PartInputAudio:
			return nil, invalid("input_audio", "Cohere takes no audio input")
		case llm.PartFile:
			return nil, invalid("file", "Cohere takes no file input in chat")
		default:
			return nil, invalid("messages", "content part type %q is not supported by Cohere", p.Type)
		}
	}
	return parts, nil
}
