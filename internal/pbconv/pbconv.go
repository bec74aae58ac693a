// Package pbconv converts between Switchyard's API messages (gen/go/switchyard/v1) and the
// canonical types of internal/llm, in both directions: the server converts requests from proto
// and answers to proto; the grpcupstream provider, a client of another server speaking the same
// API, converts requests to proto and answers from proto. The conversions are pure: they fill in
// no ids, times or defaults (callers decide those) and validate only what they must parse.
package pbconv

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
)

// ChatRequestFromPB converts a proto request to the canonical form, with model as the upstream
// model name. stream says whether the streaming RPC was called (stream_options only counts then).
// It fails with KindInvalidArgument when a JSON Schema cannot be rendered as JSON.
func ChatRequestFromPB(in *pb.CreateChatCompletionRequest, model string, stream bool) (*llm.ChatRequest, error) {
	req := &llm.ChatRequest{
		Model:             model,
		Temperature:       in.Temperature,
		TopP:              in.TopP,
		Stop:              in.GetStop(),
		PresencePenalty:   in.PresencePenalty,
		FrequencyPenalty:  in.FrequencyPenalty,
		Seed:              in.Seed,
		N:                 in.N,
		User:              in.GetUser(),
		ParallelToolCalls: in.ParallelToolCalls,
		ReasoningEffort:   in.GetReasoningEffort(),
	}
	switch {
	case in.MaxCompletionTokens != nil:
		req.MaxTokens = in.MaxCompletionTokens
	case in.MaxTokens != nil:
		req.MaxTokens = in.MaxTokens
		req.LegacyMaxTokensName = true
	}
	if stream {
		req.IncludeStreamUsage = in.GetStreamOptions().GetIncludeUsage()
	}

	req.Messages = make([]llm.Message, len(in.GetMessages()))
	for i, m := range in.GetMessages() {
		req.Messages[i] = MessageFromPB(m)
	}
	if len(in.GetTools()) > 0 {
		req.Tools = make([]llm.Tool, len(in.GetTools()))
		for i, t := range in.GetTools() {
			fn := t.GetFunction()
			params, err := StructJSON(fn.GetParameters(), "tools[%d].function.parameters", i)
			if err != nil {
				return nil, err
			}
			req.Tools[i] = llm.Tool{Name: fn.GetName(), Description: fn.GetDescription(), Parameters: params, Strict: fn.Strict}
		}
	}
	switch c := in.GetToolChoice().GetChoice().(type) {
	case *pb.ToolChoice_Mode:
		req.ToolChoice = &llm.ToolChoice{Mode: c.Mode}
	case *pb.ToolChoice_Named:
		req.ToolChoice = &llm.ToolChoice{Mode: "function", Name: c.Named.GetFunction().GetName()}
	}
	if rf := in.GetResponseFormat(); rf != nil {
		req.ResponseFormat = &llm.ResponseFormat{Type: rf.GetType()}
		if js := rf.GetJsonSchema(); js != nil {
			schema, err := StructJSON(js.GetSchema(), "response_format.json_schema.schema")
			if err != nil {
				return nil, err
			}
			req.ResponseFormat.SchemaName = js.GetName()
			req.ResponseFormat.SchemaDescription = js.GetDescription()
			req.ResponseFormat.Schema = schema
			req.ResponseFormat.Strict = js.Strict
		}
	}
	return req, nil
}

// ChatRequestToPB converts a canonical request to proto, for the unary RPC (Stream false and no
// stream_options; the caller sets them for the streaming RPC). max_tokens or
// max_completion_tokens is chosen as the client sent it (req.LegacyMaxTokensName). It fails with
// KindInvalidArgument when a tool's parameters or a response schema are not a JSON object.
func ChatRequestToPB(req *llm.ChatRequest) (*pb.CreateChatCompletionRequest, error) {
	out := &pb.CreateChatCompletionRequest{
		Model:             req.Model,
		Messages:          make([]*pb.ChatMessage, len(req.Messages)),
		Temperature:       req.Temperature,
		TopP:              req.TopP,
		Stop:              req.Stop,
		PresencePenalty:   req.PresencePenalty,
		FrequencyPenalty:  req.FrequencyPenalty,
		Seed:              req.Seed,
		N:                 req.N,
		User:              req.User,
		ParallelToolCalls: req.ParallelToolCalls,
		ReasoningEffort:   req.ReasoningEffort,
	}
	if req.LegacyMaxTokensName {
		out.MaxTokens = req.MaxTokens
	} else {
		out.MaxCompletionTokens = req.MaxTokens
	}
	for i := range req.Messages {
		out.Messages[i] = MessageToPB(&req.Messages[i])
	}
	if len(req.Tools) > 0 {
		out.Tools = make([]*pb.Tool, len(req.Tools))
		for i, t := range req.Tools {
			params, err := JSONStruct(t.Parameters, "tools[%d].function.parameters", i)
			if err != nil {
				return nil, err
			}
			out.Tools[i] = &pb.Tool{Type: "function", Function: &pb.FunctionDefinition{Name: t.Name, Description: t.Description, Parameters: params, Strict: t.Strict}}
		}
	}
	if tc := req.ToolChoice; tc != nil {
		if tc.Mode == "function" {
			out.ToolChoice = &pb.ToolChoice{Choice: &pb.ToolChoice_Named{Named: &pb.NamedToolChoice{Type: "function", Function: &pb.FunctionName{Name: tc.Name}}}}
		} else {
			out.ToolChoice = &pb.ToolChoice{Choice: &pb.ToolChoice_Mode{Mode: tc.Mode}}
		}
	}
	if rf := req.ResponseFormat; rf != nil {
		out.ResponseFormat = &pb.ResponseFormat{Type: rf.Type}
		if rf.Schema != nil || rf.SchemaName != "" {
			schema, err := JSONStruct(rf.Schema, "response_format.json_schema.schema")
			if err != nil {
				return nil, err
			}
			out.ResponseFormat.JsonSchema = &pb.JSONSchema{Name: rf.SchemaName, Description: rf.SchemaDescription, Schema: schema, Strict: rf.Strict}
		}
	}
	return out, nil
}

// MessageFromPB converts one proto message.
func MessageFromPB(m *pb.ChatMessage) llm.Message {
	out := llm.Message{
		Role:             m.GetRole(),
		Name:             m.GetName(),
		ToolCallID:       m.GetToolCallId(),
		ReasoningContent: m.GetReasoningContent(),
		ToolCalls:        ToolCallsFromPB(m.GetToolCalls()),

		ReasoningSignature: m.GetReasoningSignature(),
	}
	switch c := m.GetContent().GetContent().(type) {
	case *pb.MessageContent_Text:
		out.Content = []llm.Part{{Type: llm.PartText, Text: c.Text}}
	case *pb.MessageContent_Parts:
		out.ContentIsParts = true
		out.Content = make([]llm.Part, len(c.Parts.GetParts()))
		for i, p := range c.Parts.GetParts() {
			out.Content[i] = PartFromPB(p)
		}
	}
	return out
}

// MessageToPB converts one canonical message. Content is sent as a string unless the client
// sent parts (m.ContentIsParts) or it holds anything but a single text part; no content at all
// is sent as no content.
func MessageToPB(m *llm.Message) *pb.ChatMessage {
	out := &pb.ChatMessage{
		Role:             m.Role,
		Name:             m.Name,
		ToolCallId:       m.ToolCallID,
		ReasoningContent: m.ReasoningContent,
		ToolCalls:        ToolCallsToPB(m.ToolCalls),

		ReasoningSignature: m.ReasoningSignature,
	}
	switch {
	case !m.ContentIsParts && len(m.Content) == 1 && m.Content[0].Type == llm.PartText:
		out.Content = &pb.MessageContent{Content: &pb.MessageContent_Text{Text: m.Content[0].Text}}
	case m.ContentIsParts || len(m.Content) > 0:
		parts := make([]*pb.ContentPart, len(m.Content))
		for i := range m.Content {
			parts[i] = PartToPB(&m.Content[i])
		}
		out.Content = &pb.MessageContent{Content: &pb.MessageContent_Parts{Parts: &pb.ContentParts{Parts: parts}}}
	}
	return out
}

// PartFromPB converts one content part; only the fields of its type are read.
func PartFromPB(p *pb.ContentPart) llm.Part {
	out := llm.Part{Type: p.GetType()}
	switch out.Type {
	case llm.PartText:
		out.Text = p.GetText()
	case llm.PartImageURL:
		out.ImageURL = p.GetImageUrl().GetUrl()
		out.ImageDetail = p.GetImageUrl().GetDetail()
	case llm.PartInputAudio:
		out.AudioData = p.GetInputAudio().GetData()
		out.AudioFormat = p.GetInputAudio().GetFormat()
	case llm.PartFile:
		out.FileData = p.GetFile().GetFileData()
		out.FileID = p.GetFile().GetFileId()
		out.FileName = p.GetFile().GetFilename()
	}
	return out
}

// PartToPB converts one content part; only the fields of its type are written.
func PartToPB(p *llm.Part) *pb.ContentPart {
	out := &pb.ContentPart{Type: p.Type}
	switch p.Type {
	case llm.PartText:
		out.Text = p.Text
	case llm.PartImageURL:
		out.ImageUrl = &pb.ImageURL{Url: p.ImageURL, Detail: p.ImageDetail}
	case llm.PartInputAudio:
		out.InputAudio = &pb.InputAudio{Data: p.AudioData, Format: p.AudioFormat}
	case llm.PartFile:
		out.File = &pb.File{FileData: p.FileData, FileId: p.FileID, Filename: p.FileName}
	}
	return out
}

// ToolCallsFromPB converts tool calls; nil for none.
func ToolCallsFromPB(tcs []*pb.ToolCall) []llm.ToolCall {
	if len(tcs) == 0 {
		return nil
	}
	out := make([]llm.ToolCall, len(tcs))
	for i, tc := range tcs {
		out[i] = llm.ToolCall{ID: tc.GetId(), Name: tc.GetFunction().GetName(), Arguments: tc.GetFunction().GetArguments()}
	}
	return out
}

// ToolCallsToPB converts tool calls, all of type "function"; nil for none.
func ToolCallsToPB(tcs []llm.ToolCall) []*pb.ToolCall {
	if len(tcs) == 0 {
		return nil
	}
	out := make([]*pb.ToolCall, len(tcs))
	for i, tc := range tcs {
		out[i] = &pb.ToolCall{Id: tc.ID, Type: "function", Function: &pb.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}}
	}
	return out
}

// ChatResponseToPB converts a complete answer. Empty id, created time and model stay empty.
func ChatResponseToPB(r *llm.ChatResponse) *pb.CreateChatCompletionResponse {
	out := &pb.CreateChatCompletionResponse{
		Id:                r.ID,
		Object:            "chat.completion",
		Created:           r.Created,
		Model:             r.Model,
		Usage:             UsageToPB(r.Usage),
		SystemFingerprint: r.SystemFingerprint,
		ServiceTier:       r.ServiceTier,
		Choices:           make([]*pb.Choice, len(r.Choices)),
	}
	for i, c := range r.Choices {
		out.Choices[i] = &pb.Choice{
			Index: c.Index,
			Message: &pb.AssistantMessage{
				Role:             llm.RoleAssistant,
				Content:          c.Content,
				Refusal:          c.Refusal,
				ReasoningContent: c.ReasoningContent,
				ToolCalls:        ToolCallsToPB(c.ToolCalls),

				ReasoningSignature: c.ReasoningSignature,
			},
			FinishReason: c.FinishReason,
		}
	}
	return out
}

// ChatResponseFromPB converts a complete answer.
func ChatResponseFromPB(r *pb.CreateChatCompletionResponse) *llm.ChatResponse {
	out := &llm.ChatResponse{
		ID:                r.GetId(),
		Model:             r.GetModel(),
		Created:           r.GetCreated(),
		Usage:             UsageFromPB(r.GetUsage()),
		SystemFingerprint: r.GetSystemFingerprint(),
		ServiceTier:       r.GetServiceTier(),
		Choices:           make([]llm.Choice, len(r.GetChoices())),
	}
	for i, c := range r.GetChoices() {
		m := c.GetMessage()
		if m == nil { // an upstream may leave it out: its optional fields are read directly
			m = &pb.AssistantMessage{}
		}
		out.Choices[i] = llm.Choice{
			Index:            c.GetIndex(),
			Content:          m.Content,
			Refusal:          m.Refusal,
			ReasoningContent: m.ReasoningContent,
			ToolCalls:        ToolCallsFromPB(m.GetToolCalls()),
			FinishReason:     c.GetFinishReason(),

			ReasoningSignature: m.GetReasoningSignature(),
		}
	}
	return out
}

// ChunkChoiceToPB converts the delta of one streamed choice, as sent (no role is added).
func ChunkChoiceToPB(ch *llm.ChunkChoice) *pb.ChunkChoice {
	d := &pb.Delta{
		Role:             ch.Role,
		Content:          ch.Content,
		ReasoningContent: ch.ReasoningContent,
		Refusal:          ch.Refusal,

		ReasoningSignature: ch.ReasoningSignature,
	}
	if len(ch.ToolCalls) > 0 {
		d.ToolCalls = make([]*pb.ToolCallDelta, len(ch.ToolCalls))
		for j, tc := range ch.ToolCalls {
			td := &pb.ToolCallDelta{Index: tc.Index, Id: tc.ID, Function: &pb.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}}
			if tc.ID != "" || tc.Name != "" {
				td.Type = "function"
			}
			d.ToolCalls[j] = td
		}
	}
	return &pb.ChunkChoice{Index: ch.Index, Delta: d, FinishReason: ch.FinishReason}
}

// ChunkFromPB converts one streamed message.
func ChunkFromPB(r *pb.StreamChatCompletionResponse) *llm.Chunk {
	out := &llm.Chunk{
		ID:                r.GetId(),
		Model:             r.GetModel(),
		Created:           r.GetCreated(),
		Usage:             UsageFromPB(r.GetUsage()),
		SystemFingerprint: r.GetSystemFingerprint(),
	}
	if len(r.GetChoices()) > 0 {
		out.Choices = make([]llm.ChunkChoice, len(r.GetChoices()))
	}
	for i, c := range r.GetChoices() {
		d := c.GetDelta()
		if d == nil { // as for ChatResponseFromPB's message
			d = &pb.Delta{}
		}
		ch := llm.ChunkChoice{
			Index:            c.GetIndex(),
			Role:             d.GetRole(),
			Content:          d.Content,
			ReasoningContent: d.ReasoningContent,
			Refusal:          d.Refusal,
			FinishReason:     c.GetFinishReason(),

			ReasoningSignature: d.GetReasoningSignature(),
		}
		if len(d.GetToolCalls()) > 0 {
			ch.ToolCalls = make([]llm.ToolCallDelta, len(d.GetToolCalls()))
			for j, tc := range d.GetToolCalls() {
				ch.ToolCalls[j] = llm.ToolCallDelta{Index: tc.GetIndex(), ID: tc.GetId(), Name: tc.GetFunction().GetName(), Arguments: tc.GetFunction().GetArguments()}
			}
		}
		out.Choices[i] = ch
	}
	return out
}

// UsageToPB converts token counts; nil stays nil.
func UsageToPB(u *llm.Usage) *pb.Usage {
	if u == nil {
		return nil
	}
	return &pb.Usage{
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		TotalTokens:      u.TotalTokens,
		PromptTokensDetails: &pb.PromptTokensDetails{
			CachedTokens: u.CachedTokens,
			AudioTokens:  u.PromptAudioTokens,
		},
		CompletionTokensDetails: &pb.CompletionTokensDetails{
			ReasoningTokens:          u.ReasoningTokens,
			AudioTokens:              u.CompletionAudioTokens,
			AcceptedPredictionTokens: u.AcceptedPredictionTokens,
			RejectedPredictionTokens: u.RejectedPredictionTokens,
		},
	}
}

// UsageFromPB converts token counts; nil stays nil.
func UsageFromPB(u *pb.Usage) *llm.Usage {
	if u == nil {
		return nil
	}
	return &llm.Usage{
		PromptTokens:             u.GetPromptTokens(),
		CompletionTokens:         u.GetCompletionTokens(),
		TotalTokens:              u.GetTotalTokens(),
		CachedTokens:             u.GetPromptTokensDetails().GetCachedTokens(),
		PromptAudioTokens:        u.GetPromptTokensDetails().GetAudioTokens(),
		ReasoningTokens:          u.GetCompletionTokensDetails().GetReasoningTokens(),
		CompletionAudioTokens:    u.GetCompletionTokensDetails().GetAudioTokens(),
		AcceptedPredictionTokens: u.GetCompletionTokensDetails().GetAcceptedPredictionTokens(),
		RejectedPredictionTokens: u.GetCompletionTokensDetails().GetRejectedPredictionTokens(),
	}
}

// EmbeddingRequestFromPB converts a proto embeddings request, with model as the upstream model
// name. The encoding format is the caller's business.
func EmbeddingRequestFromPB(in *pb.CreateEmbeddingRequest, model string) *llm.EmbeddingRequest {
	req := &llm.EmbeddingRequest{
		Model:      model,
		Texts:      in.GetInput().GetTexts(),
		Dimensions: in.Dimensions,
		User:       in.GetUser(),
	}
	if toks := in.GetInput().GetTokens(); len(toks) > 0 {
		req.Tokens = make([][]int32, len(toks))
		for i, t := range toks {
			req.Tokens[i] = t.GetIds()
		}
	}
	return req
}

// EmbeddingRequestToPB converts a canonical embeddings request, asking for float vectors.
func EmbeddingRequestToPB(req *llm.EmbeddingRequest) *pb.CreateEmbeddingRequest {
	in := &pb.EmbeddingInput{Texts: req.Texts}
	if len(req.Tokens) > 0 {
		in.Tokens = make([]*pb.TokenIDs, len(req.Tokens))
		for i, t := range req.Tokens {
			in.Tokens[i] = &pb.TokenIDs{Ids: t}
		}
	}
	return &pb.CreateEmbeddingRequest{Model: req.Model, Input: in, EncodingFormat: "float", Dimensions: req.Dimensions, User: req.User}
}

// EmbeddingResponseFromPB converts an embeddings answer for n inputs, placing each vector at its
// index. Vectors sent as bytes (base64 encoding) are decoded. It fails when an index is out of
// range or repeated, a vector is missing, or bytes are not whole float32 values.
func EmbeddingResponseFromPB(r *pb.CreateEmbeddingResponse, n int) (*llm.EmbeddingResponse, error) {
	out := &llm.EmbeddingResponse{Model: r.GetModel(), PromptTokens: r.GetUsage().GetPromptTokens(), Vectors: make([][]float32, n)}
	for _, e := range r.GetData() {
		i := int(e.GetIndex())
		if i < 0 || i >= n || out.Vectors[i] != nil {
			return nil, fmt.Errorf("embedding index %d out of range or repeated (%d inputs)", i, n)
		}
		v := e.GetEmbedding()
		if b := e.GetEmbeddingBytes(); len(b) > 0 {
			var err error
			if v, err = Float32s(b); err != nil {
				return nil, fmt.Errorf("embedding %d: %w", i, err)
			}
		}
		if v == nil {
			v = []float32{}
		}
		out.Vectors[i] = v
	}
	if len(r.GetData()) != n {
		return nil, fmt.Errorf("%d embeddings for %d inputs", len(r.GetData()), n)
	}
	return out, nil
}

// Float32Bytes encodes v as little-endian IEEE 754 float32 values, the layout of OpenAI's base64
// embeddings (and of KServe's raw FP32 tensors).
func Float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// Float32s decodes little-endian IEEE 754 float32 values; len(b) must be a multiple of 4.
func Float32s(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%d bytes are not a whole number of float32 values", len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

// StructJSON returns s as JSON text, or nil if s is nil. param is a format for the request field
// named in the KindInvalidArgument error.
func StructJSON(s *structpb.Struct, param string, args ...any) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	b, err := protojson.Marshal(s)
	if err != nil {
		p := fmt.Sprintf(param, args...)
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Message: "Invalid JSON Schema in '" + p + "'.", Param: p, Err: err}
	}
	return b, nil
}

// JSONStruct parses JSON object text into a Struct, or returns nil for empty text. param is a
// format for the request field named in the KindInvalidArgument error.
func JSONStruct(b []byte, param string, args ...any) (*structpb.Struct, error) {
	if len(b) == 0 {
		return nil, nil
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(b, s); err != nil {
		p := fmt.Sprintf(param, args...)
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Message: "Invalid JSON Schema in '" + p + "': it must be a JSON object.", Param: p, Err: err}
	}
	return s, nil
}
