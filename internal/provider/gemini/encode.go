package gemini

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"mime"
	"net/url"
	"path"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
)

// maxStopSequences is generationConfig.stopSequences' documented limit.
const maxStopSequences = 5

// thinkingBudgets maps reasoning_effort onto generationConfig.thinkingConfig.thinkingBudget,
// the same budgets Google's own OpenAI-compatible endpoint uses (none disables thinking).
// thinkingBudget is what v1beta's ThinkingConfig declares; Gemini 3 models still accept it.
var thinkingBudgets = map[string]int32{
	"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576,
}

// ParamRules documents how each canonical parameter reaches the Gemini API (the parameter
// conversion matrix in docs/providers.md is generated from these).
func ParamRules() []provider.ParamRule {
	return []provider.ParamRule{
		{Param: "temperature", Native: "generationConfig.temperature", Range: "0–2", Action: provider.ParamClamp, Note: "values outside 0–2 are clamped, with a warning"},
		{Param: "top_p", Native: "generationConfig.topP", Range: "0–1", Action: provider.ParamClamp, Note: "values outside 0–1 are clamped, with a warning"},
		{Param: "max_tokens", Native: "generationConfig.maxOutputTokens", Action: provider.ParamRename, Note: "max_completion_tokens or max_tokens"},
		{Param: "stop", Native: "generationConfig.stopSequences", Range: "≤5 sequences", Action: provider.ParamRename, Note: "more than 5 sequences are rejected"},
		{Param: "presence_penalty", Native: "generationConfig.presencePenalty", Action: provider.ParamRename, Note: "model-dependent; the model rejects it if unsupported"},
		{Param: "frequency_penalty", Native: "generationConfig.frequencyPenalty", Action: provider.ParamRename, Note: "model-dependent; the model rejects it if unsupported"},
		{Param: "seed", Native: "generationConfig.seed", Range: "int32", Action: provider.ParamRename, Note: "seeds outside int32 are rejected"},
		{Param: "n", Native: "generationConfig.candidateCount", Action: provider.ParamRename, Note: "candidates map to choices by index"},
		{Param: "response_format", Native: "generationConfig.responseMimeType + responseJsonSchema", Action: provider.ParamRename, Note: "json_object → application/json; json_schema → application/json with the schema as JSON Schema; name and strict are not sent"},
		{Param: "tools", Native: "tools[].functionDeclarations[].parametersJsonSchema", Action: provider.ParamRename, Note: "JSON Schema passed as is; strict is dropped with a warning"},
		{Param: "tool_choice", Native: "toolConfig.functionCallingConfig", Range: "AUTO|ANY|NONE", Action: provider.ParamRename, Note: "auto → AUTO, none → NONE, required → ANY, a named function → ANY + allowedFunctionNames"},
		{Param: "parallel_tool_calls", Action: provider.ParamDrop, Note: "no native switch; false is dropped with a warning"},
		{Param: "user", Action: provider.ParamDrop, Note: "no native field; dropped with a warning"},
		{Param: "reasoning_effort", Native: "generationConfig.thinkingConfig", Range: "none|minimal|low|medium|high|xhigh", Action: provider.ParamRename, Note: "thinkingBudget 0/512/1024/8192/24576/24576 and includeThoughts (thoughts become reasoning_content)"},
		{Param: "image_url", Native: "parts[].inlineData | parts[].fileData", Action: provider.ParamRename, Note: "data: URLs → inlineData; http(s) URLs → fileData with a MIME type guessed from the path; detail is dropped with a warning"},
		{Param: "input_audio", Native: "parts[].inlineData", Action: provider.ParamRename, Note: "audio/<format>"},
		{Param: "file", Native: "parts[].inlineData | parts[].fileData", Action: provider.ParamRename, Note: "file_data (data: URL) → inlineData; an https file_id (Files API URI) → fileData; other file_ids are rejected"},
		{Param: "embeddings.dimensions", Native: "outputDimensionality", Action: provider.ParamRename},
	}
}

// invalid returns a parameter-class error naming the offending canonical parameter.
func invalid(param, format string, args ...any) *llm.Error {
	e := llm.Errorf(llm.KindInvalidArgument, format, args...)
	e.Param = param
	return e
}

// encodeChat converts req into a GenerateContentRequest. Dropped or clamped parameters are
// recorded with llm.Warn; parameters Gemini cannot take are KindInvalidArgument errors.
func encodeChat(ctx context.Context, req *llm.ChatRequest) (*generateRequest, error) {
	w := &generateRequest{}
	if err := encodeMessages(ctx, req.Messages, w); err != nil {
		return nil, err
	}
	if len(w.Contents) == 0 {
		return nil, invalid("messages", "the conversation needs at least one user or assistant message")
	}
	if err := encodeTools(ctx, req, w); err != nil {
		return nil, err
	}
	gc, err := encodeConfig(ctx, req)
	if err != nil {
		return nil, err
	}
	if !gc.empty() {
		w.GenerationConfig = gc
	}
	if req.User != "" {
		llm.Warn(ctx, "gemini: user is not supported and was dropped")
	}
	return w, nil
}

func encodeConfig(ctx context.Context, req *llm.ChatRequest) (*generationConfig, error) {
	gc := &generationConfig{
		CandidateCount:   req.N,
		MaxOutputTokens:  req.MaxTokens,
		PresencePenalty:  req.PresencePenalty,
		FrequencyPenalty: req.FrequencyPenalty,
	}
	if req.Temperature != nil {
		gc.Temperature = clamp(ctx, "temperature", *req.Temperature, 0, 2)
	}
	if req.TopP != nil {
		gc.TopP = clamp(ctx, "top_p", *req.TopP, 0, 1)
	}
	if len(req.Stop) > maxStopSequences {
		return nil, invalid("stop", "Gemini accepts at most %d stop sequences, got %d", maxStopSequences, len(req.Stop))
	}
	if len(req.Stop) > 0 {
		gc.StopSequences = req.Stop
	}
	if req.Seed != nil {
		if *req.Seed < math.MinInt32 || *req.Seed > math.MaxInt32 {
			return nil, invalid("seed", "Gemini takes a 32-bit seed, got %d", *req.Seed)
		}
		gc.Seed = llm.Ptr(int32(*req.Seed))
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			gc.ResponseMimeType = "application/json"
			if len(rf.Schema) > 0 {
				gc.ResponseJSONSchema = json.RawMessage(rf.Schema)
			}
		default:
			return nil, invalid("response_format", "response_format type %q is not supported by Gemini", rf.Type)
		}
	}
	if req.ReasoningEffort != "" {
		budget, ok := thinkingBudgets[req.ReasoningEffort]
		if !ok {
			return nil, invalid("reasoning_effort", "reasoning_effort %q is not supported by Gemini", req.ReasoningEffort)
		}
		tc := &thinkingConfig{ThinkingBudget: llm.Ptr(budget)}
		if budget > 0 {
			tc.IncludeThoughts = llm.Ptr(true)
		}
		gc.ThinkingConfig = tc
	}
	return gc, nil
}

func (g *generationConfig) empty() bool {
	return g.CandidateCount == nil && g.StopSequences == nil && g.MaxOutputTokens == nil &&
		g.Temperature == nil && g.TopP == nil && g.Seed == nil && g.ResponseMimeType == "" &&
		g.ResponseJSONSchema == nil && g.PresencePenalty == nil && g.FrequencyPenalty == nil &&
		g.ThinkingConfig == nil
}

func clamp(ctx context.Context, name string, v, lo, hi float64) *float64 {
	c := min(max(v, lo), hi)
	if c != v {
		llm.Warn(ctx, "gemini: %s %g clamped to %g", name, v, c)
	}
	return &c
}

func encodeTools(ctx context.Context, req *llm.ChatRequest, w *generateRequest) error {
	if len(req.Tools) > 0 {
		decls := make([]functionDeclaration, len(req.Tools))
		for i, t := range req.Tools {
			decls[i] = functionDeclaration{Name: t.Name, Description: t.Description}
			if t.Description == "" {
				decls[i].Description = t.Name // the API requires a description
			}
			if len(t.Parameters) > 0 {
				decls[i].ParametersJSONSchema = json.RawMessage(t.Parameters)
			}
			if t.Strict != nil && *t.Strict {
				llm.Warn(ctx, "gemini: tools[].function.strict is not supported and was dropped")
			}
		}
		w.Tools = []tool{{FunctionDeclarations: decls}}
	}
	if req.ParallelToolCalls != nil && !*req.ParallelToolCalls {
		llm.Warn(ctx, "gemini: parallel_tool_calls is not supported and was dropped")
	}
	tc := req.ToolChoice
	if tc == nil || len(req.Tools) == 0 {
		return nil
	}
	fc := &functionCallingConfig{}
	switch tc.Mode {
	case "auto":
		fc.Mode = "AUTO"
	case "none":
		fc.Mode = "NONE"
	case "required":
		fc.Mode = "ANY"
	case "function":
		fc.Mode, fc.AllowedFunctionNames = "ANY", []string{tc.Name}
	default:
		return invalid("tool_choice", "tool_choice %q is not supported by Gemini", tc.Mode)
	}
	w.ToolConfig = &toolConfig{FunctionCallingConfig: fc}
	return nil
}

// encodeMessages fills w.SystemInstruction and w.Contents. System and developer messages become
// the system instruction; assistant messages "model" turns; tool messages functionResponse parts
// of a "user" turn, named after the call they answer (found by tool_call_id among the
// assistant turns before them, since Gemini matches responses to calls by name). Consecutive
// turns of one role are merged, and turns without parts are left out.
func encodeMessages(ctx context.Context, msgs []llm.Message, w *generateRequest) error {
	names := map[string]string{} // tool call id, as the client holds it → function name
	for i := range msgs {
		m := &msgs[i]
		switch m.Role {
		case llm.RoleSystem, llm.RoleDeveloper:
			for _, p := range m.Content {
				if p.Type != llm.PartText {
					return invalid("messages", "Gemini takes only text in system messages, got a %s part", p.Type)
				}
			}
			if t := m.Text(); t != "" {
				if w.SystemInstruction == nil {
					w.SystemInstruction = &content{}
				}
				w.SystemInstruction.Parts = append(w.SystemInstruction.Parts, part{Text: llm.Ptr(t)})
			}
		case llm.RoleUser:
			parts, err := encodeParts(ctx, m.Content)
			if err != nil {
				return err
			}
			appendTurn(w, "user", parts)
		case llm.RoleAssistant:
			var parts []part
			if t := m.Text(); t != "" {
				parts = append(parts, part{Text: llm.Ptr(t)})
			}
			for _, tc := range m.ToolCalls {
				p, err := encodeCall(tc)
				if err != nil {
					return err
				}
				names[tc.ID] = tc.Name
				parts = append(parts, p)
			}
			appendTurn(w, "model", parts)
		case llm.RoleTool:
			name := names[m.ToolCallID]
			if name == "" {
				name = m.Name
			}
			if name == "" {
				return invalid("messages", "tool message %q answers no tool call in the conversation; Gemini needs the function's name", m.ToolCallID)
			}
			id, _ := splitCallID(m.ToolCallID)
			fr := &functionResponse{ID: id, Name: name, Response: toolResponse(m.Text())}
			appendTurn(w, "user", []part{{FunctionResponse: fr}})
		default:
			return invalid("messages", "message role %q is not supported by Gemini", m.Role)
		}
	}
	return nil
}

func appendTurn(w *generateRequest, role string, parts []part) {
	if len(parts) == 0 {
		return
	}
	if n := len(w.Contents); n > 0 && w.Contents[n-1].Role == role {
		w.Contents[n-1].Parts = append(w.Contents[n-1].Parts, parts...)
		return
	}
	w.Contents = append(w.Contents, content{Role: role, Parts: parts})
}

// encodeCall turns an assistant tool call back into a functionCall part, with the thought
// signature the call's id carries (see splitCallID).
func encodeCall(tc llm.ToolCall) (part, error) {
	args := bytes.TrimSpace([]byte(tc.Arguments))
	if len(args) == 0 {
		args = []byte("{}")
	}
	if args[0] != '{' || !json.Valid(args) {
		return part{}, invalid("messages", "tool call %q has arguments that are not a JSON object", tc.ID)
	}
	id, sig := splitCallID(tc.ID)
	return part{FunctionCall: &functionCall{ID: id, Name: tc.Name, Args: args}, ThoughtSignature: sig}, nil
}

// toolResponse wraps a tool result for functionResponse.response, which must be a JSON object:
// an object is sent as is, anything else as {"result": "<text>"}.
func toolResponse(text string) json.RawMessage {
	t := bytes.TrimSpace([]byte(text))
	if len(t) > 0 && t[0] == '{' && json.Valid(t) {
		return t
	}
	b, _ := json.Marshal(map[string]string{"result": text}) // a string always marshals
	return b
}

func encodeParts(ctx context.Context, in []llm.Part) ([]part, error) {
	parts := make([]part, 0, len(in))
	for _, p := range in {
		switch p.Type {
		case llm.PartText:
			if p.Text != "" {
				parts = append(parts, part{Text: llm.Ptr(p.Text)})
			}
		case llm.PartImageURL:
			if p.ImageDetail != "" && p.ImageDetail != "auto" {
				llm.Warn(ctx, "gemini: image_url.detail is not supported and was dropped")
			}
			q, err := mediaPart("image_url", p.ImageURL)
			if err != nil {
				return nil, err
			}
			parts = append(parts, q)
		case llm.PartInputAudio:
			if p.AudioData == "" || p.AudioFormat == "" {
				return nil, invalid("input_audio", "input_audio needs data and a format")
			}
			parts = append(parts, part{InlineData: &blob{MimeType: "audio/" + p.AudioFormat, Data: p.AudioData}})
		case llm.PartFile:
			switch {
			case p.FileData != "":
				q, err := mediaPart("file", p.FileData)
				if err != nil {
					return nil, err
				}
				parts = append(parts, q)
			case strings.HasPrefix(p.FileID, "https://"):
				parts = append(parts, part{FileData: &fileData{FileURI: p.FileID}})
			default:
				return nil, invalid("file", "Gemini takes files as data: URLs or Files API URIs, not file id %q", p.FileID)
			}
		default:
			return nil, invalid("messages", "content part type %q is not supported by Gemini", p.Type)
		}
	}
	return parts, nil
}

// mediaPart converts a data: URL into inlineData and an http(s) URL into fileData, whose MIME
// type is guessed from the URL's path (left out when unknown; Gemini then sniffs the content).
func mediaPart(param, raw string) (part, error) {
	if rest, ok := strings.CutPrefix(raw, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mt, params, _ := strings.Cut(meta, ";")
		if !ok || mt == "" {
			return part{}, invalid(param, "malformed data: URL")
		}
		if params == "base64" || strings.HasSuffix(params, ";base64") {
			if _, err := base64.StdEncoding.DecodeString(data); err != nil {
				return part{}, invalid(param, "data: URL with invalid base64")
			}
		} else {
			text, err := url.PathUnescape(data)
			if err != nil {
				return part{}, invalid(param, "malformed data: URL")
			}
			data = base64.StdEncoding.EncodeToString([]byte(text))
		}
		return part{InlineData: &blob{MimeType: mt, Data: data}}, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return part{}, invalid(param, "Gemini takes media as data: URLs or http(s) URLs")
	}
	mt := mime.TypeByExtension(strings.ToLower(path.Ext(u.Path)))
	mt, _, _ = strings.Cut(mt, ";")
	return part{FileData: &fileData{MimeType: mt, FileURI: raw}}, nil
}

// Tool call ids carry Gemini's thought signature, so that it comes back on the next turn
// through any OpenAI-shaped client: clients echo tool call ids verbatim, and drop fields they
// do not know. An id is the call's own id, then sigMarker and the signature in unpadded
// base64url (the id stays within [A-Za-z0-9_-] when the call's id does).
const sigMarker = "__ts_"

// joinCallID appends the thought signature (standard base64, as Gemini sends it) to id.
func joinCallID(id, sig string) string {
	if sig == "" {
		return id
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return id // not base64: Gemini would not accept it back either
	}
	return id + sigMarker + base64.RawURLEncoding.EncodeToString(raw)
}

// splitCallID undoes joinCallID: it returns the call's own id and the signature in standard
// base64 ("" when the id carries none or a corrupted one).
func splitCallID(id string) (base, sig string) {
	base, enc, ok := strings.Cut(id, sigMarker)
	if !ok {
		return id, ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(raw) == 0 {
		return base, ""
	}
	return base, base64.StdEncoding.EncodeToString(raw)
}

// modelPath returns the resource name of model: "models/<name>" unless it already names a
// models/ or tunedModels/ resource.
func modelPath(model string) (string, error) {
	name := model
	prefix := "models/"
	for _, p := range []string{"models/", "tunedModels/"} {
		if rest, ok := strings.CutPrefix(model, p); ok {
			prefix, name = p, rest
		}
	}
	if name == "" || strings.ContainsAny(name, "/:?#% \t\r\n") {
		return "", invalid("model", "model name %q is not a Gemini model name", model)
	}
	return prefix + name, nil
}
