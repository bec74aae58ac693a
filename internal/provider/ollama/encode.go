package ollama

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
)

// encodeChat converts a canonical request to /api/chat. Parameters Ollama lacks are dropped with
// a warning on ctx (see ParamRules); content it cannot take (image URLs, audio, files, tool
// arguments that are not a JSON object) is refused with a KindInvalidArgument error.
func (p *Provider) encodeChat(ctx context.Context, req *llm.ChatRequest, stream bool) (*chatRequest, error) {
	w := &chatRequest{Model: req.Model, Stream: stream, KeepAlive: p.keepAlive, Messages: make([]message, 0, len(req.Messages))}
	o := options{
		NumCtx: p.numCtx, NumPredict: req.MaxTokens, Temperature: req.Temperature, TopP: req.TopP, Stop: req.Stop,
		Seed: req.Seed, PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty,
	}
	if o.NumCtx != nil || o.NumPredict != nil || o.Temperature != nil || o.TopP != nil || len(o.Stop) > 0 ||
		o.Seed != nil || o.PresencePenalty != nil || o.FrequencyPenalty != nil {
		w.Options = &o
	}
	if req.N != nil && *req.N > 1 {
		llm.Warn(ctx, "ollama: n=%d dropped: Ollama returns one choice", *req.N)
	}
	if req.User != "" {
		llm.Warn(ctx, "ollama: user dropped: Ollama has no end-user field")
	}
	if err := encodeFormat(w, req.ResponseFormat); err != nil {
		return nil, err
	}
	if err := encodeThink(w, req.ReasoningEffort); err != nil {
		return nil, err
	}
	encodeTools(ctx, w, req)
	names := map[string]string{} // tool call id → function name, for tool messages
	for i := range req.Messages {
		m, err := encodeMessage(&req.Messages[i], names)
		if err != nil {
			return nil, err
		}
		w.Messages = append(w.Messages, m)
	}
	return w, nil
}

func encodeFormat(w *chatRequest, rf *llm.ResponseFormat) error {
	if rf == nil {
		return nil
	}
	switch rf.Type {
	case "", "text":
	case "json_object":
		w.Format = json.RawMessage(`"json"`)
	case "json_schema":
		if !json.Valid(rf.Schema) || !strings.HasPrefix(strings.TrimSpace(string(rf.Schema)), "{") {
			return invalidParam("response_format", "response_format.json_schema.schema must be a JSON object")
		}
		w.Format = json.RawMessage(rf.Schema)
	default:
		return invalidParam("response_format", "response_format.type %q is not supported", rf.Type)
	}
	return nil
}

// thinkLevels maps reasoning_effort to Ollama's think values.
var thinkLevels = map[string]any{
	"none": false, "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "max", "max": "max",
}

func encodeThink(w *chatRequest, effort string) error {
	if effort == "" {
		return nil
	}
	v, ok := thinkLevels[effort]
	if !ok {
		return invalidParam("reasoning_effort", "reasoning_effort %q is not supported", effort)
	}
	w.Think = v
	return nil
}

// encodeTools sends the tools unless tool_choice is "none". Ollama cannot force a call, so
// "required" and a named function are dropped with a warning, as is parallel_tool_calls=false.
func encodeTools(ctx context.Context, w *chatRequest, req *llm.ChatRequest) {
	if tc := req.ToolChoice; tc != nil {
		switch {
		case tc.Mode == "none":
			return
		case tc.Mode == "auto" || (tc.Mode == "" && tc.Name == ""):
		default:
			llm.Warn(ctx, "ollama: tool_choice %q dropped: Ollama cannot force a tool call", toolChoiceName(tc))
		}
	}
	if pc := req.ParallelToolCalls; pc != nil && !*pc {
		llm.Warn(ctx, "ollama: parallel_tool_calls=false dropped: Ollama may return several calls")
	}
	for _, t := range req.Tools {
		params := json.RawMessage(t.Parameters)
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		w.Tools = append(w.Tools, tool{Type: "function", Function: functionDef{Name: t.Name, Description: t.Description, Parameters: params}})
	}
}

func toolChoiceName(tc *llm.ToolChoice) string {
	if tc.Name != "" {
		return tc.Name
	}
	return tc.Mode
}

func encodeMessage(m *llm.Message, names map[string]string) (message, error) {
	w := message{Role: m.Role, Thinking: m.ReasoningContent, ToolCallID: m.ToolCallID}
	if m.Role == llm.RoleDeveloper {
		w.Role = llm.RoleSystem
	}
	var text strings.Builder
	for i := range m.Content {
		part := &m.Content[i]
		switch part.Type {
		case llm.PartText:
			text.WriteString(part.Text)
		case llm.PartImageURL:
			img, err := bareBase64(part.ImageURL)
			if err != nil {
				return w, err
			}
			w.Images = append(w.Images, img)
		case llm.PartInputAudio:
			return w, invalidParam("input_audio", "Ollama does not accept audio input")
		case llm.PartFile:
			return w, invalidParam("file", "Ollama does not accept file input")
		default:
			return w, invalidParam("messages", "content part type %q is not supported", part.Type)
		}
	}
	w.Content = text.String()
	for i, tc := range m.ToolCalls {
		args := json.RawMessage(strings.TrimSpace(tc.Arguments))
		if len(args) == 0 {
			args = json.RawMessage(`{}`)
		}
		if !json.Valid(args) || args[0] != '{' {
			return w, invalidParam("messages", "tool call %q: arguments must be a JSON object", tc.ID)
		}
		w.ToolCalls = append(w.ToolCalls, toolCall{ID: tc.ID, Function: functionCall{Index: &i, Name: tc.Name, Arguments: args}})
		names[tc.ID] = tc.Name
	}
	if m.Role == llm.RoleTool {
		w.ToolName = m.Name
		if w.ToolName == "" {
			w.ToolName = names[m.ToolCallID]
		}
	}
	return w, nil
}

// bareBase64 returns the base64 payload of a data: URL. Ollama takes only inline images, and
// the gateway does not fetch remote URLs on a client's behalf, so http(s) URLs are refused.
func bareBase64(u string) (string, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return "", invalidParam("image_url", "Ollama accepts only inline images (data: URLs with base64), not %s URLs", scheme(u))
	}
	meta, payload, ok := strings.Cut(rest, ",")
	if !ok || !strings.HasSuffix(meta, ";base64") || payload == "" {
		return "", invalidParam("image_url", "image data: URL must be base64-encoded")
	}
	return payload, nil
}

func scheme(u string) string {
	if s, _, ok := strings.Cut(u, ":"); ok && len(s) < 10 {
		return s
	}
	return "remote"
}

func invalidParam(param, format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindInvalidArgument, format, args...)
	e.Param = param
	return e
}
