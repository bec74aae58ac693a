package anthropic

import (
	"encoding/json"
)

// Wire types of Anthropic's Messages API (POST /v1/messages, anthropic-version 2023-06-01), after
// the official Go SDK's MessageNewParams, Message and stream event types. Only the fields the
// gateway uses are declared.

type messagesRequest struct {
	Model         string        `json:"model"`
	MaxTokens     int32         `json:"max_tokens"`
	System        []block       `json:"system,omitempty"` // text blocks, in the order of the system messages
	Messages      []message     `json:"messages"`
	Temperature   *float64      `json:"temperature,omitempty"`
	TopP          *float64      `json:"top_p,omitempty"`
	StopSequences []string      `json:"stop_sequences,omitempty"`
	Tools         []tool        `json:"tools,omitempty"`
	ToolChoice    *toolChoice   `json:"tool_choice,omitempty"`
	Thinking      *thinking     `json:"thinking,omitempty"`
	OutputConfig  *outputConfig `json:"output_config,omitempty"`
	Metadata      *metadata     `json:"metadata,omitempty"`
	Stream        bool          `json:"stream,omitempty"`
}

type message struct {
	Role    string  `json:"role"` // user or assistant
	Content []block `json:"content"`
}

// block is a content block of any type; which fields are set depends on Type: text (Text),
// image and document (Source, Title), tool_use (ID, Name, Input), tool_result (ToolUseID,
// Content: a string or []block), thinking (Thinking, Signature), redacted_thinking (Data).
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *source         `json:"source,omitempty"`
	Title     string          `json:"title,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   any             `json:"content,omitempty"`
	Thinking  *string         `json:"thinking,omitempty"` // pointer: an empty thinking text keeps its key
	Signature string          `json:"signature,omitempty"`
	Data      string          `json:"data,omitempty"`
}

// source is an image or document source: base64 (MediaType, Data), text (MediaType, Data) or url (URL).
type source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
	Strict      *bool           `json:"strict,omitempty"`
}

type toolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type thinking struct {
	Type         string `json:"type"` // enabled
	BudgetTokens int32  `json:"budget_tokens"`
}

type outputConfig struct {
	Format *outputFormat `json:"format,omitempty"`
}

type outputFormat struct {
	Type   string          `json:"type"` // json_schema
	Schema json.RawMessage `json:"schema"`
}

type metadata struct {
	UserID string `json:"user_id"`
}

type messageResponse struct {
	ID         string       `json:"id"`
	Type       string       `json:"type"` // message, or error in a (non-standard) 200 error answer
	Model      string       `json:"model"`
	Content    []block      `json:"content"`
	StopReason string       `json:"stop_reason"`
	Usage      usage        `json:"usage"`
	Error      *errorObject `json:"error"`
}

// usage counts tokens. Fields are pointers because message_delta carries only those that changed
// (each cumulative), and message_start's values stand for the others.
type usage struct {
	InputTokens              *int32 `json:"input_tokens"`
	OutputTokens             *int32 `json:"output_tokens"`
	CacheCreationInputTokens *int32 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int32 `json:"cache_read_input_tokens"`
}

// event is one streamed event; Type equals the SSE event name.
type event struct {
	Type         string           `json:"type"`
	Message      *messageResponse `json:"message"`       // message_start
	Index        int              `json:"index"`         // content_block_*
	ContentBlock *block           `json:"content_block"` // content_block_start
	Delta        *eventDelta      `json:"delta"`         // content_block_delta, message_delta
	Usage        *usage           `json:"usage"`         // message_delta
	Error        *errorObject     `json:"error"`         // error
}

type eventDelta struct {
	Type        string `json:"type"` // text_delta, input_json_delta, thinking_delta, signature_delta, citations_delta
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	Thinking    string `json:"thinking"`
	Signature   string `json:"signature"`
	StopReason  string `json:"stop_reason"` // message_delta
}

// errorBody is Anthropic's error answer {"type":"error","error":{"type","message"},"request_id"}.
type errorBody struct {
	Type      string       `json:"type"`
	Error     *errorObject `json:"error"`
	RequestID string       `json:"request_id"`
}

type errorObject struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}
