package interceptor

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
)

// Fixed limits enforced by validation (OpenAI's); the configurable ones are RequestLimits.
const (
	maxChoices      = 8
	maxFunctionName = 64
)

// validator checks the requests Switchyard serves against fixed rules and its limits.
type validator struct {
	lim RequestLimits // defaults applied
}

func newValidator(lim RequestLimits) *validator { return &validator{lim: lim.WithDefaults()} }

// validate checks m; messages other than the requests Switchyard serves pass. Violations are
// KindInvalidArgument errors whose Param is the offending field's path in OpenAI's JSON
// ("messages[2].role"), so REST clients get a familiar error.param. sessionHeader says the
// call's metadata names a session: a chat request continuing a session may leave out the
// model, which the session supplies.
func (v *validator) validate(m any, sessionHeader bool) error {
	switch r := m.(type) {
	case *pb.CreateChatCompletionRequest:
		return v.validateChat(r, sessionHeader)
	case *pb.StreamChatCompletionRequest:
		if r.GetRequest() == nil {
			return invalid("request", "Missing required parameter: 'request'.")
		}
		return v.validateChat(r.GetRequest(), sessionHeader)
	case *pb.CreateEmbeddingRequest:
		return v.validateEmbedding(r)
	case *pb.RerankRequest:
		return v.validateRerank(r)
	case *pb.GetModelRequest:
		if r.GetId() == "" {
			return invalid("model", "Missing required parameter: 'model'.")
		}
	}
	return nil
}

func invalid(param, format string, args ...any) *llm.Error {
	return &llm.Error{Kind: llm.KindInvalidArgument, Param: param, Message: fmt.Sprintf(format, args...)}
}

func missing(param string) *llm.Error {
	return invalid(param, "Missing required parameter: '%s'.", param)
}

// inRange reports lo ≤ v ≤ hi, false for NaN.
func inRange(v, lo, hi float64) bool { return v >= lo && v <= hi }

func (v *validator) validateChat(r *pb.CreateChatCompletionRequest, sessionHeader bool) error {
	if r.GetModel() == "" && r.GetSessionId() == "" && !sessionHeader {
		return invalid("model", "You must provide a model parameter.")
	}
	if len(r.GetMessages()) == 0 {
		return invalid("messages", "Invalid 'messages': the conversation must contain at least one message.")
	}
	if n := len(r.GetMessages()); over(n, v.lim.MaxMessages) {
		return overLimit("messages", n, "messages", v.lim.MaxMessages, "max_messages")
	}
	if n := len(r.GetTools()); over(n, v.lim.MaxTools) {
		return overLimit("tools", n, "tools", v.lim.MaxTools, "max_tools")
	}
	for i, m := range r.GetMessages() {
		if err := v.validateMessage(i, m); err != nil {
			return err
		}
	}
	if v := r.Temperature; v != nil && !inRange(*v, 0, 2) {
		return invalid("temperature", "Invalid 'temperature': %v is not between 0 and 2.", *v)
	}
	if v := r.TopP; v != nil && !inRange(*v, 0, 1) {
		return invalid("top_p", "Invalid 'top_p': %v is not between 0 and 1.", *v)
	}
	if v := r.PresencePenalty; v != nil && !inRange(*v, -2, 2) {
		return invalid("presence_penalty", "Invalid 'presence_penalty': %v is not between -2 and 2.", *v)
	}
	if v := r.FrequencyPenalty; v != nil && !inRange(*v, -2, 2) {
		return invalid("frequency_penalty", "Invalid 'frequency_penalty': %v is not between -2 and 2.", *v)
	}
	if v := r.MaxTokens; v != nil && *v < 1 {
		return invalid("max_tokens", "Invalid 'max_tokens': %d is less than the minimum of 1.", *v)
	}
	if v := r.MaxCompletionTokens; v != nil && *v < 1 {
		return invalid("max_completion_tokens", "Invalid 'max_completion_tokens': %d is less than the minimum of 1.", *v)
	}
	if v := r.N; v != nil && (*v < 1 || *v > maxChoices) {
		return invalid("n", "Invalid 'n': %d is not between 1 and %d.", *v, maxChoices)
	}
	if n := len(r.GetStop()); over(n, v.lim.MaxStop) {
		return overLimit("stop", n, "sequences", v.lim.MaxStop, "max_stop")
	}
	for i, t := range r.GetTools() {
		if typ := t.GetType(); typ != "" && typ != "function" {
			return invalid(fmt.Sprintf("tools[%d].type", i), "Invalid value for 'tools[%d].type': %q. Supported value: 'function'.", i, typ)
		}
		if t.GetFunction() == nil {
			return missing(fmt.Sprintf("tools[%d].function", i))
		}
		if name := t.GetFunction().GetName(); !validFunctionName(name) {
			return invalid(fmt.Sprintf("tools[%d].function.name", i),
				"Invalid 'tools[%d].function.name': %q must be 1 to %d characters of a-z, A-Z, 0-9, underscores and dashes.", i, name, maxFunctionName)
		}
		if err := checkSchemaDepth(fmt.Sprintf("tools[%d].function.parameters", i), t.GetFunction().GetParameters(), v.lim.MaxSchemaDepth); err != nil {
			return err
		}
	}
	if err := v.validateResponseFormat(r.GetResponseFormat()); err != nil {
		return err
	}
	switch c := r.GetToolChoice().GetChoice().(type) {
	case *pb.ToolChoice_Mode:
		switch c.Mode {
		case "none", "auto", "required":
		default:
			return invalid("tool_choice", "Invalid value for 'tool_choice': %q. Supported values are: 'none', 'auto', 'required' or a named function.", c.Mode)
		}
	case *pb.ToolChoice_Named:
		if c.Named.GetFunction().GetName() == "" {
			return missing("tool_choice.function.name")
		}
	}
	return nil
}

func (v *validator) validateMessage(i int, m *pb.ChatMessage) error {
	switch m.GetRole() {
	case llm.RoleSystem, llm.RoleDeveloper, llm.RoleUser, llm.RoleAssistant, llm.RoleTool:
	case "":
		return missing(fmt.Sprintf("messages[%d].role", i))
	default:
		return invalid(fmt.Sprintf("messages[%d].role", i),
			"Invalid value for 'messages[%d].role': %q. Supported values are: 'system', 'developer', 'user', 'assistant' and 'tool'.", i, m.GetRole())
	}
	if m.GetRole() == llm.RoleTool && m.GetToolCallId() == "" {
		return missing(fmt.Sprintf("messages[%d].tool_call_id", i))
	}
	switch c := m.GetContent().GetContent().(type) {
	case nil:
		// An assistant message may only call tools; every other message has content.
		if m.GetRole() != llm.RoleAssistant {
			return missing(fmt.Sprintf("messages[%d].content", i))
		}
	case *pb.MessageContent_Parts:
		parts := c.Parts.GetParts()
		if len(parts) == 0 {
			return invalid(fmt.Sprintf("messages[%d].content", i), "Invalid 'messages[%d].content': empty array. Expected at least one content part.", i)
		}
		if over(len(parts), v.lim.MaxContentParts) {
			return overLimit(fmt.Sprintf("messages[%d].content", i), len(parts), "content parts", v.lim.MaxContentParts, "max_content_parts")
		}
		for j, p := range parts {
			if err := validatePart(i, j, p); err != nil {
				return err
			}
		}
	}
	for j, tc := range m.GetToolCalls() {
		if tc.GetFunction().GetName() == "" {
			return missing(fmt.Sprintf("messages[%d].tool_calls[%d].function.name", i, j))
		}
		if n := len(tc.GetFunction().GetArguments()); over(n, v.lim.MaxToolCallArgs) {
			return overLimit(fmt.Sprintf("messages[%d].tool_calls[%d].function.arguments", i, j), n, "bytes",
				v.lim.MaxToolCallArgs, "max_tool_call_arguments_bytes")
		}
	}
	return nil
}

func validatePart(i, j int, p *pb.ContentPart) error {
	path := fmt.Sprintf("messages[%d].content[%d]", i, j)
	switch p.GetType() {
	case llm.PartText:
	case llm.PartImageURL:
		if p.GetImageUrl().GetUrl() == "" {
			return missing(path + ".image_url.url")
		}
	case llm.PartInputAudio:
		if p.GetInputAudio().GetData() == "" {
			return missing(path + ".input_audio.data")
		}
	case llm.PartFile:
		if p.GetFile().GetFileData() == "" && p.GetFile().GetFileId() == "" {
			return missing(path + ".file.file_data")
		}
	case "":
		return missing(path + ".type")
	default:
		return invalid(path+".type", "Invalid value for '%s.type': %q. Supported values are: 'text', 'image_url', 'input_audio' and 'file'.", path, p.GetType())
	}
	return nil
}

func (v *validator) validateResponseFormat(rf *pb.ResponseFormat) error {
	if rf == nil {
		return nil
	}
	switch rf.GetType() {
	case "text", "json_object":
	case "json_schema":
		if rf.GetJsonSchema().GetName() == "" {
			return missing("response_format.json_schema.name")
		}
		return checkSchemaDepth("response_format.json_schema.schema", rf.GetJsonSchema().GetSchema(), v.lim.MaxSchemaDepth)
	case "":
		return missing("response_format.type")
	default:
		return invalid("response_format.type",
			"Invalid value for 'response_format.type': %q. Supported values are: 'text', 'json_object' and 'json_schema'.", rf.GetType())
	}
	return nil
}

// validFunctionName reports whether s matches ^[A-Za-z0-9_-]{1,64}$.
func validFunctionName(s string) bool {
	if s == "" || len(s) > maxFunctionName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (v *validator) validateEmbedding(r *pb.CreateEmbeddingRequest) error {
	if r.GetModel() == "" {
		return invalid("model", "You must provide a model parameter.")
	}
	texts, tokens := r.GetInput().GetTexts(), r.GetInput().GetTokens()
	switch n := len(texts) + len(tokens); {
	case len(texts) > 0 && len(tokens) > 0:
		return invalid("input", "Invalid 'input': give texts or token lists, not both.")
	case n == 0:
		return invalid("input", "Invalid 'input': it must not be empty.")
	case over(n, v.lim.MaxEmbeddingInputs):
		return overLimit("input", n, "inputs", v.lim.MaxEmbeddingInputs, "max_embedding_inputs")
	}
	for i, t := range tokens {
		if len(t.GetIds()) == 0 {
			return invalid(fmt.Sprintf("input[%d]", i), "Invalid 'input[%d]': a token list must not be empty.", i)
		}
	}
	switch f := r.GetEncodingFormat(); f {
	case "", "float", "base64":
	default:
		return invalid("encoding_format", "Invalid value for 'encoding_format': %q. Supported values are: 'float' and 'base64'.", f)
	}
	if v := r.Dimensions; v != nil && *v < 1 {
		return invalid("dimensions", "Invalid 'dimensions': %d is less than the minimum of 1.", *v)
	}
	return nil
}

// hasSessionHeader reports whether the call's metadata names a session.
func hasSessionHeader(ctx context.Context) bool {
	return len(metadata.ValueFromIncomingContext(ctx, mdkey.SessionID)) > 0
}

func unaryValidation(v *validator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := v.validate(req, hasSessionHeader(ctx)); err != nil {
			return nil, errmap.ToStatus(err).Err()
		}
		return handler(ctx, req)
	}
}

func streamValidation(v *validator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &validatingStream{ServerStream: ss, v: v})
	}
}

// validatingStream validates each message the handler receives.
type validatingStream struct {
	grpc.ServerStream
	v *validator
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.v.validate(m, hasSessionHeader(s.Context())); err != nil {
		return errmap.ToStatus(err).Err()
	}
	return nil
}

func (v *validator) validateRerank(r *pb.RerankRequest) error {
	if r.GetModel() == "" {
		return invalid("model", "You must provide a model parameter.")
	}
	if r.GetQuery() == "" {
		return missing("query")
	}
	switch n := len(r.GetDocuments()); {
	case n == 0:
		return invalid("documents", "Invalid 'documents': it must not be empty.")
	case over(n, v.lim.MaxRerankDocuments):
		return overLimit("documents", n, "documents", v.lim.MaxRerankDocuments, "max_rerank_documents")
	}
	for i, d := range r.GetDocuments() {
		if d.GetDocument() == nil {
			return missing(fmt.Sprintf("documents[%d]", i))
		}
		if s := d.GetStructured(); s != nil && len(s.GetFields()) == 0 {
			return invalid(fmt.Sprintf("documents[%d]", i), "Invalid 'documents[%d]': a structured document needs at least one field.", i)
		}
	}
	if t := r.TopN; t != nil && *t < 0 {
		return invalid("top_n", "Invalid 'top_n': %d is less than the minimum of 0.", *t)
	}
	if m := r.MaxChunksPerDoc; m != nil && *m < 1 {
		return invalid("max_chunks_per_doc", "Invalid 'max_chunks_per_doc': %d is less than the minimum of 1.", *m)
	}
	return nil
}
