package openai

import (
	"encoding/json"

	"github.com/switchyard/switchyard/internal/llm"
)

// Wire types of OpenAI's Chat Completions and Embeddings APIs (openapi.yaml, schemas
// CreateChatCompletionRequest, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
// CreateEmbeddingRequest, CreateEmbeddingResponse). Only the fields the gateway uses are declared.

type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []message       `json:"messages"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	MaxTokens           *int32          `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int32          `json:"max_completion_tokens,omitempty"`
	Stop                []string        `json:"stop,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	N                   *int32          `json:"n,omitempty"`
	ResponseFormat      *responseFormat `json:"response_format,omitempty"`
	User                string          `json:"user,omitempty"`
	Tools               []tool          `json:"tools,omitempty"`
	ToolChoice          any             `json:"tool_choice,omitempty"` // string or *namedToolChoice
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	ReasoningEffort     string          `json:"reasoning_effort,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *streamOptions  `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// message is a request message. Content is nil (JSON null), a string, or []contentPart.
type message struct {
	Role       string     `json:"role"`
	Content    any        `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []toolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

type contentPart struct {
	Type       string      `json:"type"`
	Text       *string     `json:"text,omitempty"` // pointer: an empty text part keeps its "text" key
	ImageURL   *imageURL   `json:"image_url,omitempty"`
	InputAudio *inputAudio `json:"input_audio,omitempty"`
	File       *file       `json:"file,omitempty"`
}

type imageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type inputAudio struct {
	Data   string `json:"data"`
	Format string `json:"format"`
}

type file struct {
	FileData string `json:"file_data,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	Filename string `json:"filename,omitempty"`
}

type toolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type tool struct {
	Type     string      `json:"type"`
	Function functionDef `json:"function"`
}

type functionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

type namedToolChoice struct {
	Type     string       `json:"type"`
	Function toolNameOnly `json:"function"`
}

type toolNameOnly struct {
	Name string `json:"name"`
}

type responseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *jsonSchema `json:"json_schema,omitempty"`
}

type jsonSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

type chatResponse struct {
	ID                string          `json:"id"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	Choices           []choice        `json:"choices"`
	Usage             *usage          `json:"usage"`
	SystemFingerprint string          `json:"system_fingerprint"`
	ServiceTier       string          `json:"service_tier"`
	Error             json.RawMessage `json:"error"` // some compatible servers answer 200 with an error
}

type choice struct {
	Index        int32           `json:"index"`
	Message      responseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
}

type responseMessage struct {
	Content          *string    `json:"content"`
	Refusal          *string    `json:"refusal"`
	ReasoningContent *string    `json:"reasoning_content"` // DeepSeek, Qwen, older vLLM
	Reasoning        *string    `json:"reasoning"`         // vLLM, OpenRouter
	ToolCalls        []toolCall `json:"tool_calls"`
}

type usage struct {
	PromptTokens        int32 `json:"prompt_tokens"`
	CompletionTokens    int32 `json:"completion_tokens"`
	TotalTokens         int32 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int32 `json:"cached_tokens"`
		AudioTokens  int32 `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens          int32 `json:"reasoning_tokens"`
		AudioTokens              int32 `json:"audio_tokens"`
		AcceptedPredictionTokens int32 `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int32 `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

type chunk struct {
	ID                string          `json:"id"`
	Created           int64           `json:"created"`
	Model             string          `json:"model"`
	Choices           []chunkChoice   `json:"choices"`
	Usage             *usage          `json:"usage"`
	SystemFingerprint string          `json:"system_fingerprint"`
	Error             json.RawMessage `json:"error"`
}

type chunkChoice struct {
	Index        int32   `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role             string          `json:"role"`
	Content          *string         `json:"content"`
	Refusal          *string         `json:"refusal"`
	ReasoningContent *string         `json:"reasoning_content"`
	Reasoning        *string         `json:"reasoning"`
	ToolCalls        []toolCallDelta `json:"tool_calls"`
}

type toolCallDelta struct {
	Index    int32  `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type embeddingRequest struct {
	Model          string `json:"model"`
	Input          any    `json:"input"` // []string or [][]int32
	EncodingFormat string `json:"encoding_format"`
	Dimensions     *int32 `json:"dimensions,omitempty"`
	User           string `json:"user,omitempty"`
}

type embeddingResponse struct {
	Model string `json:"model"`
	Data  []struct {
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int32 `json:"prompt_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// errorBody is OpenAI's error envelope {"error":{...}}. vLLM and some other servers send the
// error object's fields at the top level instead, and some send "error" as a plain string; both
// are accepted.
type errorBody struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
	Param   *string         `json:"param"`
}

type errorObject struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"` // string, number or null depending on the server
	Param   *string         `json:"param"`
}

// encodeChat converts a canonical request to OpenAI's wire form.
func encodeChat(req *llm.ChatRequest, stream bool) *chatRequest {
	w := &chatRequest{
		Model:             req.Model,
		Messages:          make([]message, len(req.Messages)),
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
		Stream:            stream,
	}
	if req.MaxTokens != nil {
		if req.LegacyMaxTokensName {
			w.MaxTokens = req.MaxTokens
		} else {
			w.MaxCompletionTokens = req.MaxTokens
		}
	}
	if stream {
		w.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	for i := range req.Messages {
		encodeMessage(&w.Messages[i], &req.Messages[i])
	}
	if rf := req.ResponseFormat; rf != nil {
		w.ResponseFormat = &responseFormat{Type: rf.Type}
		if rf.Type == "json_schema" {
			name := rf.SchemaName
			if name == "" {
				name = "response" // required by the API
			}
			w.ResponseFormat.JSONSchema = &jsonSchema{
				Name: name, Description: rf.SchemaDescription, Schema: rawJSON(rf.Schema), Strict: rf.Strict,
			}
		}
	}
	if len(req.Tools) > 0 {
		w.Tools = make([]tool, len(req.Tools))
		for i, t := range req.Tools {
			w.Tools[i] = tool{Type: "function", Function: functionDef{
				Name: t.Name, Description: t.Description, Parameters: rawJSON(t.Parameters), Strict: t.Strict,
			}}
		}
	}
	if tc := req.ToolChoice; tc != nil {
		if tc.Mode == "function" || (tc.Mode == "" && tc.Name != "") {
			w.ToolChoice = &namedToolChoice{Type: "function", Function: toolNameOnly{Name: tc.Name}}
		} else if tc.Mode != "" {
			w.ToolChoice = tc.Mode
		}
	}
	return w
}

func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return json.RawMessage(b)
}

func encodeMessage(w *message, m *llm.Message) {
	w.Role = m.Role
	w.Name = m.Name
	w.ToolCallID = m.ToolCallID
	if len(m.ToolCalls) > 0 {
		w.ToolCalls = make([]toolCall, len(m.ToolCalls))
		for i, tc := range m.ToolCalls {
			w.ToolCalls[i] = toolCall{ID: tc.ID, Type: "function", Function: functionCall{Name: tc.Name, Arguments: tc.Arguments}}
		}
	}
	switch {
	case !m.ContentIsParts && isPlainText(m.Content):
		text := ""
		if len(m.Content) == 1 {
			text = m.Content[0].Text
		}
		if text == "" && len(m.ToolCalls) > 0 {
			w.Content = nil // null: the assistant only called tools
		} else {
			w.Content = text
		}
	case len(m.Content) == 0 && len(m.ToolCalls) > 0:
		w.Content = nil
	default:
		parts := make([]contentPart, len(m.Content))
		for i := range m.Content {
			encodePart(&parts[i], &m.Content[i])
		}
		w.Content = parts
	}
}

// isPlainText reports whether content is empty or a single text part.
func isPlainText(content []llm.Part) bool {
	return len(content) == 0 || (len(content) == 1 && content[0].Type == llm.PartText)
}

func encodePart(w *contentPart, p *llm.Part) {
	w.Type = p.Type
	switch p.Type {
	case llm.PartImageURL:
		w.ImageURL = &imageURL{URL: p.ImageURL, Detail: p.ImageDetail}
	case llm.PartInputAudio:
		w.InputAudio = &inputAudio{Data: p.AudioData, Format: p.AudioFormat}
	case llm.PartFile:
		w.File = &file{FileData: p.FileData, FileID: p.FileID, Filename: p.FileName}
	default:
		w.Type = llm.PartText
		w.Text = &p.Text
	}
}

func decodeUsage(u *usage) *llm.Usage {
	if u == nil {
		return nil
	}
	out := &llm.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	if d := u.PromptTokensDetails; d != nil {
		out.CachedTokens, out.PromptAudioTokens = d.CachedTokens, d.AudioTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		out.ReasoningTokens, out.CompletionAudioTokens = d.ReasoningTokens, d.AudioTokens
		out.AcceptedPredictionTokens, out.RejectedPredictionTokens = d.AcceptedPredictionTokens, d.RejectedPredictionTokens
	}
	return out
}

func decodeResponse(w *chatResponse) *llm.ChatResponse {
	out := &llm.ChatResponse{
		ID: w.ID, Model: w.Model, Created: w.Created, Usage: decodeUsage(w.Usage),
		SystemFingerprint: w.SystemFingerprint, ServiceTier: w.ServiceTier,
		Choices: make([]llm.Choice, len(w.Choices)),
	}
	for i := range w.Choices {
		c, m := &w.Choices[i], &w.Choices[i].Message
		oc := &out.Choices[i]
		oc.Index, oc.FinishReason = c.Index, c.FinishReason
		oc.Content, oc.Refusal = m.Content, m.Refusal
		oc.ReasoningContent = firstNonNil(m.ReasoningContent, m.Reasoning)
		if len(m.ToolCalls) > 0 {
			oc.ToolCalls = make([]llm.ToolCall, len(m.ToolCalls))
			for j, tc := range m.ToolCalls {
				oc.ToolCalls[j] = llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}
			}
		}
	}
	return out
}

func decodeChunk(w *chunk) *llm.Chunk {
	out := &llm.Chunk{
		ID: w.ID, Model: w.Model, Created: w.Created, Usage: decodeUsage(w.Usage), SystemFingerprint: w.SystemFingerprint,
	}
	if len(w.Choices) > 0 {
		out.Choices = make([]llm.ChunkChoice, len(w.Choices))
	}
	for i := range w.Choices {
		c, d := &w.Choices[i], &w.Choices[i].Delta
		oc := &out.Choices[i]
		oc.Index, oc.Role = c.Index, d.Role
		oc.Content, oc.Refusal = d.Content, d.Refusal
		oc.ReasoningContent = firstNonNil(d.ReasoningContent, d.Reasoning)
		if c.FinishReason != nil {
			oc.FinishReason = *c.FinishReason
		}
		if len(d.ToolCalls) > 0 {
			oc.ToolCalls = make([]llm.ToolCallDelta, len(d.ToolCalls))
			for j, tc := range d.ToolCalls {
				oc.ToolCalls[j] = llm.ToolCallDelta{Index: tc.Index, ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}
			}
		}
	}
	return out
}

func firstNonNil(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}
