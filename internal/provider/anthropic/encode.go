package anthropic

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
)

// Thinking budgets (thinking.budget_tokens) for the canonical reasoning_effort values. "none"
// leaves thinking off. Anthropic's minimum budget is 1024 tokens and the budget must stay below
// max_tokens.
var thinkingBudgets = map[string]int32{
	"minimal": 1024,
	"low":     2048,
	"medium":  8192,
	"high":    16384,
	"xhigh":   32768,
}

const minThinkingBudget = 1024

// imageTypes are the media types Anthropic accepts in base64 image sources.
var imageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}

// invalid returns a parameter-class error about param.
func invalid(param, format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindInvalidArgument, format, args...)
	e.Param = param
	return e
}

// encodeRequest converts a canonical request to the Messages API. Parameters the API cannot take
// are dropped with a warning on ctx or refused with a KindInvalidArgument error, as ParamRules
// documents; defaultMaxTokens is sent when the request has no max_tokens.
func encodeRequest(ctx context.Context, req *llm.ChatRequest, defaultMaxTokens int32, tempMapping string, stream bool) (*messagesRequest, error) {
	w := &messagesRequest{Model: req.Model, StopSequences: req.Stop, Stream: stream}
	if err := encodeMessages(w, req.Messages); err != nil {
		return nil, err
	}
	if req.N != nil && *req.N > 1 {
		return nil, invalid("n", "anthropic: n=%d is not supported; the Messages API returns one answer per request", *req.N)
	}
	if req.PresencePenalty != nil {
		llm.Warn(ctx, "anthropic: presence_penalty is not supported and was dropped")
	}
	if req.FrequencyPenalty != nil {
		llm.Warn(ctx, "anthropic: frequency_penalty is not supported and was dropped")
	}
	if req.Seed != nil {
		llm.Warn(ctx, "anthropic: seed is not supported and was dropped")
	}
	if req.User != "" {
		w.Metadata = &metadata{UserID: req.User}
	}

	budget, err := encodeThinking(ctx, w, req, defaultMaxTokens)
	if err != nil {
		return nil, err
	}
	encodeSampling(ctx, w, req, tempMapping, budget > 0)
	if err := encodeTools(w, req, budget > 0); err != nil {
		return nil, err
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_schema":
			if len(rf.Schema) == 0 {
				return nil, invalid("response_format", "anthropic: response_format json_schema needs a schema")
			}
			w.OutputConfig = &outputConfig{Format: &outputFormat{Type: "json_schema", Schema: json.RawMessage(rf.Schema)}}
		case "json_object":
			llm.Warn(ctx, "anthropic: response_format json_object is not supported and was dropped; use json_schema")
		default:
			return nil, invalid("response_format", "anthropic: unknown response_format type %q", rf.Type)
		}
	}
	return w, nil
}

// encodeThinking sets max_tokens and, for a reasoning_effort other than "none", thinking. It
// returns the thinking budget (0: thinking off). Without a client max_tokens, max_tokens is the
// budget plus the default, so the answer keeps the room it would have without thinking; with one,
// the budget is cut to fit below it, and thinking is dropped when less than the minimum fits.
func encodeThinking(ctx context.Context, w *messagesRequest, req *llm.ChatRequest, defaultMaxTokens int32) (int32, error) {
	w.MaxTokens = defaultMaxTokens
	if req.MaxTokens != nil {
		if *req.MaxTokens < 1 {
			return 0, invalid("max_tokens", "anthropic: max_tokens must be at least 1")
		}
		w.MaxTokens = *req.MaxTokens
	}
	effort := req.ReasoningEffort
	if effort == "" || effort == "none" {
		return 0, nil
	}
	budget, ok := thinkingBudgets[effort]
	if !ok {
		return 0, invalid("reasoning_effort", "anthropic: unknown reasoning_effort %q (want none, minimal, low, medium, high or xhigh)", effort)
	}
	switch {
	case req.MaxTokens == nil:
		w.MaxTokens = budget + defaultMaxTokens
	case budget >= w.MaxTokens && w.MaxTokens-1 < minThinkingBudget:
		llm.Warn(ctx, "anthropic: reasoning_effort was dropped: max_tokens %d leaves no room for the minimum thinking budget of %d", w.MaxTokens, minThinkingBudget)
		return 0, nil
	case budget >= w.MaxTokens:
		llm.Warn(ctx, "anthropic: thinking budget for reasoning_effort %s reduced from %d to %d to stay below max_tokens", effort, budget, w.MaxTokens-1)
		budget = w.MaxTokens - 1
	}
	w.Thinking = &thinking{Type: "enabled", BudgetTokens: budget}
	return budget, nil
}

// encodeSampling sets temperature (into 0–1 under tempMapping: clamped by default, or scaled
// linearly from 0–2) and top_p. Anthropic's newer models refuse both together, so top_p is
// dropped when temperature is set; with thinking on, the API requires the default temperature,
// so both are dropped.
func encodeSampling(ctx context.Context, w *messagesRequest, req *llm.ChatRequest, tempMapping string, thinkingOn bool) {
	if thinkingOn {
		if req.Temperature != nil {
			llm.Warn(ctx, "anthropic: temperature was dropped: extended thinking (reasoning_effort) requires the default")
		}
		if req.TopP != nil {
			llm.Warn(ctx, "anthropic: top_p was dropped: extended thinking (reasoning_effort) requires the default")
		}
		return
	}
	if t := req.Temperature; t != nil {
		v, clamped := provider.MapTemperature(tempMapping, *t, 1)
		if clamped {
			llm.Warn(ctx, "anthropic: temperature %g was clamped to %g (Anthropic accepts 0–1)", *t, v)
		}
		w.Temperature = &v
	}
	if req.TopP != nil {
		if req.Temperature != nil {
			llm.Warn(ctx, "anthropic: top_p was dropped: Anthropic models refuse temperature and top_p together, and temperature was set")
		} else {
			w.TopP = req.TopP
		}
	}
}

// encodeTools sets tools and tool_choice. A history with tool calls but no tools in the request
// gets a stand-in definition per called tool name and tool_choice none, because the API refuses
// tool_use blocks without tool definitions.
func encodeTools(w *messagesRequest, req *llm.ChatRequest, thinkingOn bool) error {
	for _, t := range req.Tools {
		schema := json.RawMessage(t.Parameters)
		if len(bytes.TrimSpace(schema)) == 0 {
			schema = json.RawMessage(`{"type":"object"}`)
		}
		w.Tools = append(w.Tools, tool{Name: t.Name, Description: t.Description, InputSchema: schema, Strict: t.Strict})
	}
	if len(w.Tools) == 0 {
		seen := map[string]bool{}
		for _, m := range req.Messages {
			for _, tc := range m.ToolCalls {
				if !seen[tc.Name] {
					seen[tc.Name] = true
					w.Tools = append(w.Tools, tool{Name: tc.Name, InputSchema: json.RawMessage(`{"type":"object"}`)})
				}
			}
		}
		if len(w.Tools) > 0 {
			w.ToolChoice = &toolChoice{Type: "none"}
		}
		return nil // tool_choice and parallel_tool_calls mean nothing without tools
	}
	if tc := req.ToolChoice; tc != nil {
		switch {
		case tc.Mode == "auto":
			w.ToolChoice = &toolChoice{Type: "auto"}
		case tc.Mode == "required":
			w.ToolChoice = &toolChoice{Type: "any"}
		case tc.Mode == "none":
			w.ToolChoice = &toolChoice{Type: "none"}
		case (tc.Mode == "function" || tc.Mode == "") && tc.Name != "":
			w.ToolChoice = &toolChoice{Type: "tool", Name: tc.Name}
		case tc.Mode != "":
			return invalid("tool_choice", "anthropic: unknown tool_choice %q", tc.Mode)
		}
	}
	if thinkingOn && w.ToolChoice != nil && (w.ToolChoice.Type == "any" || w.ToolChoice.Type == "tool") {
		return invalid("tool_choice", "anthropic: a required or named tool_choice cannot be combined with reasoning_effort (extended thinking)")
	}
	if p := req.ParallelToolCalls; p != nil && !*p {
		if w.ToolChoice == nil {
			w.ToolChoice = &toolChoice{Type: "auto"}
		}
		if w.ToolChoice.Type != "none" {
			w.ToolChoice.DisableParallelToolUse = true
		}
	}
	return nil
}

// encodeMessages moves system and developer messages, in order, to the top-level system prompt
// and converts the rest into alternating turns: tool messages become tool_result blocks at the
// start of a user turn (consecutive ones share it), and consecutive messages of one role share a
// turn. Empty text is left out, since the API refuses empty text blocks.
func encodeMessages(w *messagesRequest, msgs []llm.Message) error {
	w.Messages = make([]message, 0, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case llm.RoleSystem, llm.RoleDeveloper:
			for _, p := range m.Content {
				if p.Type != llm.PartText {
					return invalid("messages", "anthropic: a %s message can hold only text, not %s", m.Role, p.Type)
				}
			}
			if text := m.Text(); text != "" {
				w.System = append(w.System, block{Type: "text", Text: text})
			}
		case llm.RoleUser:
			blocks, err := encodeParts(m.Content)
			if err != nil {
				return err
			}
			w.appendTurn("user", blocks, false)
		case llm.RoleTool:
			b, err := encodeToolResult(m)
			if err != nil {
				return err
			}
			w.appendTurn("user", []block{b}, true)
		case llm.RoleAssistant:
			blocks, err := encodeAssistant(m)
			if err != nil {
				return err
			}
			w.appendTurn("assistant", blocks, false)
		default:
			return invalid("messages", "anthropic: unknown message role %q", m.Role)
		}
	}
	return nil
}

// appendTurn adds blocks to the last turn when it has the same role, else starts a turn. Tool
// results go after the turn's leading tool results, ahead of any other block.
func (w *messagesRequest) appendTurn(role string, blocks []block, toolResult bool) {
	if len(blocks) == 0 {
		return
	}
	n := len(w.Messages)
	if n == 0 || w.Messages[n-1].Role != role {
		w.Messages = append(w.Messages, message{Role: role, Content: blocks})
		return
	}
	last := &w.Messages[n-1]
	if !toolResult {
		last.Content = append(last.Content, blocks...)
		return
	}
	at := 0
	for at < len(last.Content) && last.Content[at].Type == "tool_result" {
		at++
	}
	last.Content = append(last.Content[:at], append(blocks, last.Content[at:]...)...)
}

func encodeParts(parts []llm.Part) ([]block, error) {
	blocks := make([]block, 0, len(parts))
	for i := range parts {
		p := &parts[i]
		switch p.Type {
		case llm.PartText:
			if p.Text != "" {
				blocks = append(blocks, block{Type: "text", Text: p.Text})
			}
		case llm.PartImageURL:
			b, err := encodeImage(p.ImageURL)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, b)
		case llm.PartFile:
			b, err := encodeFile(p)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, b)
		case llm.PartInputAudio:
			return nil, invalid("input_audio", "anthropic: audio input is not supported")
		default:
			return nil, invalid("messages", "anthropic: unknown content part type %q", p.Type)
		}
	}
	return blocks, nil
}

// parseDataURL splits "data:<media type>[;params];base64,<data>".
func parseDataURL(u string) (mediaType, data string, ok bool) {
	rest, found := strings.CutPrefix(u, "data:")
	if !found {
		return "", "", false
	}
	meta, data, found := strings.Cut(rest, ",")
	if !found {
		return "", "", false
	}
	params := strings.Split(meta, ";")
	if params[len(params)-1] != "base64" {
		return "", "", false
	}
	return strings.ToLower(params[0]), data, true
}

func encodeImage(u string) (block, error) {
	if mt, data, ok := parseDataURL(u); ok {
		if !imageTypes[mt] {
			return block{}, invalid("image_url", "anthropic: image type %q is not supported (want image/jpeg, image/png, image/gif or image/webp)", mt)
		}
		return block{Type: "image", Source: &source{Type: "base64", MediaType: mt, Data: data}}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return block{Type: "image", Source: &source{Type: "url", URL: u}}, nil
	}
	return block{}, invalid("image_url", "anthropic: image_url must be an http(s) URL or a base64 data: URL")
}

// encodeFile turns a PDF or plain-text data: URL into a document block. File ids (Anthropic's
// beta Files API) are refused.
func encodeFile(p *llm.Part) (block, error) {
	if p.FileData == "" {
		return block{}, invalid("file", "anthropic: file parts need file_data; file_id is not supported")
	}
	mt, data, ok := parseDataURL(p.FileData)
	switch {
	case ok && mt == "application/pdf":
		return block{Type: "document", Title: p.FileName, Source: &source{Type: "base64", MediaType: mt, Data: data}}, nil
	case ok && mt == "text/plain":
		text, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return block{}, invalid("file", "anthropic: file_data is not valid base64")
		}
		return block{Type: "document", Title: p.FileName, Source: &source{Type: "text", MediaType: mt, Data: string(text)}}, nil
	}
	return block{}, invalid("file", "anthropic: file_data must be a base64 data: URL of application/pdf or text/plain")
}

// encodeToolResult converts a tool message. Text-only content is sent as a string; content with
// images as blocks.
func encodeToolResult(m *llm.Message) (block, error) {
	b := block{Type: "tool_result", ToolUseID: m.ToolCallID}
	if m.ToolCallID == "" {
		return b, invalid("messages", "anthropic: a tool message needs tool_call_id")
	}
	textOnly := true
	for _, p := range m.Content {
		textOnly = textOnly && p.Type == llm.PartText
	}
	if textOnly {
		if text := m.Text(); text != "" {
			b.Content = text
		}
		return b, nil
	}
	blocks, err := encodeParts(m.Content)
	if err != nil {
		return b, err
	}
	b.Content = blocks
	return b, nil
}

// encodeAssistant converts an assistant message: its signed reasoning as thinking blocks first,
// then its text, then its tool calls as tool_use blocks.
func encodeAssistant(m *llm.Message) ([]block, error) {
	blocks, err := decodeSignature(m.ReasoningContent, m.ReasoningSignature)
	if err != nil {
		return nil, err
	}
	text, err := encodeParts(m.Content)
	if err != nil {
		return nil, err
	}
	blocks = append(blocks, text...)
	for _, tc := range m.ToolCalls {
		input := json.RawMessage(bytes.TrimSpace([]byte(tc.Arguments)))
		if len(input) == 0 {
			input = json.RawMessage(`{}`)
		}
		if input[0] != '{' || !json.Valid(input) {
			return nil, invalid("messages", "anthropic: the arguments of tool call %q are not a JSON object", tc.ID)
		}
		blocks = append(blocks, block{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: input})
	}
	return blocks, nil
}

// encodeSignature makes a turn's thinking and redacted_thinking blocks into the opaque
// Choice.ReasoningSignature: the signature itself for the usual single thinking block, else the
// blocks as a JSON array (signatures are base64, so a leading "[" is unambiguous). "" when the
// turn had no signed reasoning.
func encodeSignature(thoughts []block) string {
	switch {
	case len(thoughts) == 0:
		return ""
	case len(thoughts) == 1 && thoughts[0].Type == "thinking":
		return thoughts[0].Signature
	}
	b, err := json.Marshal(thoughts)
	if err != nil {
		return "" // blocks of strings always marshal
	}
	return string(b)
}

// decodeSignature rebuilds the thinking blocks of an assistant message from its reasoning and
// signature (see encodeSignature). Reasoning without a signature cannot be sent back (the API
// refuses unsigned thinking) and is left out.
func decodeSignature(reasoning, sig string) ([]block, error) {
	switch {
	case sig == "":
		return nil, nil
	case sig[0] != '[':
		return []block{{Type: "thinking", Thinking: &reasoning, Signature: sig}}, nil
	}
	var blocks []block
	if err := json.Unmarshal([]byte(sig), &blocks); err != nil {
		return nil, invalid("messages", "anthropic: reasoning_signature is not one this gateway issued")
	}
	for _, b := range blocks {
		if b.Type != "thinking" && b.Type != "redacted_thinking" {
			return nil, invalid("messages", "anthropic: reasoning_signature is not one this gateway issued")
		}
	}
	return blocks, nil
}
