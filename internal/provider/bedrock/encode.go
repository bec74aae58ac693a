package bedrock

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	brdoc "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydoc "github.com/aws/smithy-go/document"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
)

// converseParts are the pieces of a Converse or ConverseStream request built from a canonical
// request (the two inputs differ only in their guardrail type).
type converseParts struct {
	modelID   *string
	system    []types.SystemContentBlock
	messages  []types.Message
	inference *types.InferenceConfiguration
	tools     *types.ToolConfiguration
}

func invalid(param, format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindInvalidArgument, format, args...)
	e.Param = param
	return e
}

// encode converts a canonical request. Parameters Converse cannot take are dropped with a
// warning on ctx or refused with KindInvalidArgument, as ParamRules documents.
func (p *Provider) encode(ctx context.Context, req *llm.ChatRequest) (*converseParts, error) {
	if req.N != nil && *req.N > 1 {
		return nil, invalid("n", "bedrock: n > 1 is not supported (one answer per request)")
	}
	out := &converseParts{modelID: aws.String(req.Model)}
	inf := &types.InferenceConfiguration{}
	set := false
	if req.Temperature != nil {
		t, clamped := provider.MapTemperature(p.cfg.TemperatureMapping, *req.Temperature, 1)
		if clamped {
			llm.Warn(ctx, "bedrock: temperature %g clamped to %g", *req.Temperature, t)
		}
		inf.Temperature, set = aws.Float32(float32(t)), true
	}
	if req.TopP != nil {
		inf.TopP, set = aws.Float32(float32(*req.TopP)), true
	}
	if req.MaxTokens != nil {
		inf.MaxTokens, set = aws.Int32(*req.MaxTokens), true
	}
	if len(req.Stop) > 0 {
		inf.StopSequences, set = req.Stop, true
	}
	if set {
		out.inference = inf
	}
	if req.PresencePenalty != nil {
		llm.Warn(ctx, "bedrock: presence_penalty is not supported and was dropped")
	}
	if req.FrequencyPenalty != nil {
		llm.Warn(ctx, "bedrock: frequency_penalty is not supported and was dropped")
	}
	if req.Seed != nil {
		llm.Warn(ctx, "bedrock: seed is not supported and was dropped")
	}
	if req.ResponseFormat != nil && req.ResponseFormat.Type != "" && req.ResponseFormat.Type != "text" {
		llm.Warn(ctx, "bedrock: response_format %s is not supported and was dropped", req.ResponseFormat.Type)
	}
	if req.User != "" {
		llm.Warn(ctx, "bedrock: user is not supported and was dropped")
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
		llm.Warn(ctx, "bedrock: parallel_tool_calls=false is not supported and was dropped")
	}
	if req.ReasoningEffort != "" && req.ReasoningEffort != "none" {
		llm.Warn(ctx, "bedrock: reasoning_effort is not supported by Converse and was dropped (use additional_model_request_fields)")
	}

	historyTools, err := p.encodeMessages(req.Messages, out)
	if err != nil {
		return nil, err
	}
	tc, err := encodeTools(ctx, req, historyTools)
	if err != nil {
		return nil, err
	}
	out.tools = tc
	return out, nil
}

// encodeMessages fills out.system and out.messages. System and developer messages go, in order,
// to the system prompt; tool messages become toolResult blocks of a user turn; consecutive turns
// of the same role are merged, as Converse wants alternating roles. It returns the names of the
// tools the history calls.
func (p *Provider) encodeMessages(msgs []llm.Message, out *converseParts) ([]string, error) {
	var names []string
	add := func(role types.ConversationRole, blocks ...types.ContentBlock) {
		if n := len(out.messages); n > 0 && out.messages[n-1].Role == role {
			out.messages[n-1].Content = append(out.messages[n-1].Content, blocks...)
			return
		}
		out.messages = append(out.messages, types.Message{Role: role, Content: blocks})
	}
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case llm.RoleSystem, llm.RoleDeveloper:
			if t := m.Text(); t != "" {
				out.system = append(out.system, &types.SystemContentBlockMemberText{Value: t})
			}
		case llm.RoleUser:
			blocks, err := encodeParts(m.Content)
			if err != nil {
				return nil, err
			}
			if len(blocks) > 0 {
				add(types.ConversationRoleUser, blocks...)
			}
		case llm.RoleAssistant:
			var blocks []types.ContentBlock
			if m.ReasoningContent != "" && m.ReasoningSignature != "" {
				blocks = append(blocks, &types.ContentBlockMemberReasoningContent{Value: &types.ReasoningContentBlockMemberReasoningText{
					Value: types.ReasoningTextBlock{Text: aws.String(m.ReasoningContent), Signature: aws.String(m.ReasoningSignature)}}})
			}
			if t := m.Text(); t != "" {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: t})
			}
			for _, tc := range m.ToolCalls {
				input, err := jsonDocument(tc.Arguments)
				if err != nil {
					return nil, invalid("messages", "bedrock: the arguments of tool call %q are not a JSON object", tc.ID)
				}
				blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
					ToolUseId: aws.String(tc.ID), Name: aws.String(tc.Name), Input: input}})
				names = append(names, tc.Name)
			}
			if len(blocks) > 0 {
				add(types.ConversationRoleAssistant, blocks...)
			}
		case llm.RoleTool:
			add(types.ConversationRoleUser, &types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
				ToolUseId: aws.String(m.ToolCallID),
				Content:   []types.ToolResultContentBlock{&types.ToolResultContentBlockMemberText{Value: m.Text()}},
			}})
		default:
			return nil, invalid("messages", "bedrock: unknown message role %q", m.Role)
		}
	}
	if len(out.messages) == 0 {
		return nil, invalid("messages", "bedrock: at least one user message is required")
	}
	return names, nil
}

func encodeParts(parts []llm.Part) ([]types.ContentBlock, error) {
	blocks := make([]types.ContentBlock, 0, len(parts))
	for i := range parts {
		pt := &parts[i]
		switch pt.Type {
		case llm.PartText:
			if pt.Text != "" {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: pt.Text})
			}
		case llm.PartImageURL:
			b, err := encodeImage(pt.ImageURL)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, b)
		case llm.PartInputAudio:
			return nil, invalid("input_audio", "bedrock: audio input is not supported")
		case llm.PartFile:
			return nil, invalid("file", "bedrock: file input is not supported")
		default:
			return nil, invalid("messages", "bedrock: unknown content part type %q", pt.Type)
		}
	}
	return blocks, nil
}

var imageFormats = map[string]types.ImageFormat{
	"image/png": types.ImageFormatPng, "image/jpeg": types.ImageFormatJpeg, "image/jpg": types.ImageFormatJpeg,
	"image/gif": types.ImageFormatGif, "image/webp": types.ImageFormatWebp,
}

// encodeImage decodes a base64 data: URL into an image block. Converse takes image bytes (or S3
// locations), not URLs, so http(s) URLs are refused rather than fetched by the gateway.
func encodeImage(u string) (types.ContentBlock, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			return nil, invalid("image_url", "bedrock: image_url must be a base64 data: URL (Bedrock takes image bytes, not URLs)")
		}
		return nil, invalid("image_url", "bedrock: image_url must be a base64 data: URL")
	}
	meta, data, ok := strings.Cut(rest, ",")
	params := strings.Split(meta, ";")
	if !ok || params[len(params)-1] != "base64" {
		return nil, invalid("image_url", "bedrock: image_url must be a base64 data: URL")
	}
	f, ok := imageFormats[strings.ToLower(params[0])]
	if !ok {
		return nil, invalid("image_url", "bedrock: image type %q is not supported (want image/png, image/jpeg, image/gif or image/webp)", params[0])
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, invalid("image_url", "bedrock: image_url has invalid base64 data")
	}
	return &types.ContentBlockMemberImage{Value: types.ImageBlock{Format: f, Source: &types.ImageSourceMemberBytes{Value: b}}}, nil
}

// encodeTools builds the toolConfig. Converse has no "none" choice: tool_choice none leaves the
// tools out, unless the history has tool blocks (Converse then wants a toolConfig), when they are
// sent with auto and a warning. A history with tool calls but no tools gets stand-in tools.
func encodeTools(ctx context.Context, req *llm.ChatRequest, historyTools []string) (*types.ToolConfiguration, error) {
	tools := req.Tools
	none := req.ToolChoice != nil && req.ToolChoice.Mode == "none"
	if none && len(historyTools) == 0 {
		return nil, nil
	}
	if none {
		llm.Warn(ctx, "bedrock: tool_choice none is not supported with tool calls in the history; auto was sent")
	}
	tc := &types.ToolConfiguration{}
	if len(tools) == 0 {
		seen := map[string]bool{}
		for _, n := range historyTools {
			if !seen[n] {
				seen[n] = true
				tools = append(tools, llm.Tool{Name: n})
			}
		}
	}
	if len(tools) == 0 {
		return nil, nil
	}
	for _, t := range tools {
		schema := t.Parameters
		if len(bytes.TrimSpace(schema)) == 0 {
			schema = []byte(`{"type":"object","properties":{}}`)
		}
		doc, err := jsonDocument(string(schema))
		if err != nil {
			return nil, invalid("tools", "bedrock: the parameters of tool %q are not a JSON object", t.Name)
		}
		spec := types.ToolSpecification{Name: aws.String(t.Name), InputSchema: &types.ToolInputSchemaMemberJson{Value: doc}, Strict: t.Strict}
		if t.Description != "" {
			spec.Description = aws.String(t.Description)
		}
		tc.Tools = append(tc.Tools, &types.ToolMemberToolSpec{Value: spec})
	}
	if req.ToolChoice != nil && !none {
		switch req.ToolChoice.Mode {
		case "auto", "":
			tc.ToolChoice = &types.ToolChoiceMemberAuto{}
		case "required":
			tc.ToolChoice = &types.ToolChoiceMemberAny{}
		case "function":
			tc.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(req.ToolChoice.Name)}}
		default:
			return nil, invalid("tool_choice", "bedrock: unknown tool_choice %q", req.ToolChoice.Mode)
		}
	}
	return tc, nil
}

// jsonDocument parses a JSON object into a document for the SDK. Numbers keep their text.
func jsonDocument(s string) (brdoc.Interface, error) {
	if strings.TrimSpace(s) == "" {
		s = "{}"
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil || v == nil {
		return nil, errNotObject
	}
	return brdoc.NewLazyDocument(smithyValue(v)), nil
}

var errNotObject = llm.Errorf(llm.KindInvalidArgument, "not a JSON object")

// smithyValue converts json.Number (which the SDK's document encoder would send as a string)
// into smithy document numbers, recursively.
func smithyValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = smithyValue(e)
		}
	case []any:
		for i, e := range x {
			x[i] = smithyValue(e)
		}
	case json.Number:
		return smithydoc.Number(x)
	}
	return v
}
