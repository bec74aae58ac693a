package server

import (
	"context"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/router"
)

type chatService struct {
	pb.UnimplementedChatServiceServer
	routes func() *router.Router
}

// CreateChatCompletion resolves the model, calls the provider and answers with its response. The
// answer's model is the upstream's model name; the route header names "provider/model".
func (s *chatService) CreateChatCompletion(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
	target, err := s.routes().Resolve(in.GetModel())
	if err != nil {
		return nil, err
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(RouteHeader, target.Name()))
	req, err := chatRequest(in, target.Model, false)
	if err != nil {
		return nil, err
	}
	ctx, warnings := llm.WithWarnings(ctx)
	resp, err := target.Provider.Chat(ctx, req)
	setWarnings(ctx, warnings, grpc.SetHeader)
	if err != nil {
		return nil, err
	}
	return chatResponse(resp, target.Model), nil
}

// StreamChatCompletion resolves the model, starts the provider's stream and forwards each chunk as
// soon as it arrives. Every chunk carries the same id and created time; each choice's first delta
// carries role "assistant". The usage chunk is forwarded only when the client asked for it with
// stream_options.include_usage. An error after chunks were sent ends the stream with that error.
func (s *chatService) StreamChatCompletion(in *pb.StreamChatCompletionRequest, stream grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
	ctx := stream.Context()
	inner := in.GetRequest()
	target, err := s.routes().Resolve(inner.GetModel())
	if err != nil {
		return err
	}
	_ = stream.SetHeader(metadata.Pairs(RouteHeader, target.Name()))
	req, err := chatRequest(inner, target.Model, true)
	if err != nil {
		return err
	}
	ctx, warnings := llm.WithWarnings(ctx)
	up, err := target.Provider.ChatStream(ctx, req)
	setWarnings(ctx, warnings, func(_ context.Context, md metadata.MD) error { return stream.SetHeader(md) })
	if err != nil {
		return err
	}
	defer up.Close()

	cv := chunkConverter{includeUsage: req.IncludeStreamUsage, model: target.Model}
	for {
		c, err := up.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		out := cv.convert(c)
		if out == nil {
			continue
		}
		if err := stream.Send(out); err != nil {
			return err
		}
	}
}

// chatRequest converts a proto request to the canonical form, with model as the upstream model name.
// stream says whether the streaming RPC was called (stream_options only counts then).
func chatRequest(in *pb.CreateChatCompletionRequest, model string, stream bool) (*llm.ChatRequest, error) {
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
		req.Messages[i] = message(m)
	}
	if len(in.GetTools()) > 0 {
		req.Tools = make([]llm.Tool, len(in.GetTools()))
		for i, t := range in.GetTools() {
			fn := t.GetFunction()
			params, err := structJSON(fn.GetParameters(), "tools[%d].function.parameters", i)
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
			schema, err := structJSON(js.GetSchema(), "response_format.json_schema.schema")
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

func message(m *pb.ChatMessage) llm.Message {
	out := llm.Message{
		Role:             m.GetRole(),
		Name:             m.GetName(),
		ToolCallID:       m.GetToolCallId(),
		ReasoningContent: m.GetReasoningContent(),
	}
	switch c := m.GetContent().GetContent().(type) {
	case *pb.MessageContent_Text:
		out.Content = []llm.Part{{Type: llm.PartText, Text: c.Text}}
	case *pb.MessageContent_Parts:
		out.ContentIsParts = true
		out.Content = make([]llm.Part, len(c.Parts.GetParts()))
		for i, p := range c.Parts.GetParts() {
			out.Content[i] = part(p)
		}
	}
	if len(m.GetToolCalls()) > 0 {
		out.ToolCalls = make([]llm.ToolCall, len(m.GetToolCalls()))
		for i, tc := range m.GetToolCalls() {
			out.ToolCalls[i] = llm.ToolCall{ID: tc.GetId(), Name: tc.GetFunction().GetName(), Arguments: tc.GetFunction().GetArguments()}
		}
	}
	return out
}

func part(p *pb.ContentPart) llm.Part {
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

// chatResponse converts a provider's answer. model is used when the provider names no model.
func chatResponse(r *llm.ChatResponse, model string) *pb.CreateChatCompletionResponse {
	out := &pb.CreateChatCompletionResponse{
		Id:                r.ID,
		Object:            "chat.completion",
		Created:           r.Created,
		Model:             r.Model,
		Usage:             usage(r.Usage),
		SystemFingerprint: r.SystemFingerprint,
		ServiceTier:       r.ServiceTier,
		Choices:           make([]*pb.Choice, len(r.Choices)),
	}
	if out.Id == "" {
		out.Id = newID("chatcmpl-")
	}
	if out.Created == 0 {
		out.Created = time.Now().Unix()
	}
	if out.Model == "" {
		out.Model = model
	}
	for i, c := range r.Choices {
		out.Choices[i] = &pb.Choice{
			Index: c.Index,
			Message: &pb.AssistantMessage{
				Role:             llm.RoleAssistant,
				Content:          c.Content,
				Refusal:          c.Refusal,
				ReasoningContent: c.ReasoningContent,
				ToolCalls:        toolCalls(c.ToolCalls),
			},
			FinishReason: c.FinishReason,
		}
	}
	return out
}

func toolCalls(tcs []llm.ToolCall) []*pb.ToolCall {
	if len(tcs) == 0 {
		return nil
	}
	out := make([]*pb.ToolCall, len(tcs))
	for i, tc := range tcs {
		out[i] = &pb.ToolCall{Id: tc.ID, Type: "function", Function: &pb.FunctionCall{Name: tc.Name, Arguments: tc.Arguments}}
	}
	return out
}

func usage(u *llm.Usage) *pb.Usage {
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

// chunkConverter turns a provider's chunks into stream responses. It fixes the id and created time
// at the first chunk and remembers which choices have had their role sent.
type chunkConverter struct {
	includeUsage bool
	model        string // upstream model name, until a chunk names one

	started  bool
	id       string
	created  int64
	roleSent uint64 // bit i: choice i has had its role; choices ≥ 64 get no role fix-up
}

// convert returns the response for c, or nil if nothing of c is to be sent.
func (cv *chunkConverter) convert(c *llm.Chunk) *pb.StreamChatCompletionResponse {
	u := c.Usage
	if !cv.includeUsage {
		u = nil
	}
	if len(c.Choices) == 0 && u == nil {
		return nil
	}
	if !cv.started {
		cv.started = true
		cv.id, cv.created = c.ID, c.Created
		if cv.id == "" {
			cv.id = newID("chatcmpl-")
		}
		if cv.created == 0 {
			cv.created = time.Now().Unix()
		}
	}
	if c.Model != "" {
		cv.model = c.Model
	}
	out := &pb.StreamChatCompletionResponse{
		Id:                cv.id,
		Object:            "chat.completion.chunk",
		Created:           cv.created,
		Model:             cv.model,
		Usage:             usage(u),
		SystemFingerprint: c.SystemFingerprint,
	}
	if len(c.Choices) > 0 {
		out.Choices = make([]*pb.ChunkChoice, len(c.Choices))
	}
	for i, ch := range c.Choices {
		d := &pb.Delta{
			Role:             ch.Role,
			Content:          ch.Content,
			ReasoningContent: ch.ReasoningContent,
			Refusal:          ch.Refusal,
		}
		if ch.Index >= 0 && ch.Index < 64 {
			bit := uint64(1) << ch.Index
			if cv.roleSent&bit == 0 {
				cv.roleSent |= bit
				if d.Role == "" {
					d.Role = llm.RoleAssistant
				}
			}
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
		out.Choices[i] = &pb.ChunkChoice{Index: ch.Index, Delta: d, FinishReason: ch.FinishReason}
	}
	return out
}

// setWarnings sends the adapter's warnings (parameters it dropped or clamped) as response headers.
// Adapters convert the request before their first upstream byte, so the warnings are complete
// when Chat or ChatStream returns, before the first message is sent.
func setWarnings(ctx context.Context, w *llm.Warnings, set func(context.Context, metadata.MD) error) {
	list := w.List()
	if len(list) == 0 {
		return
	}
	_ = set(ctx, metadata.MD{WarningHeader: list})
}
