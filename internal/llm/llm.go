// Package llm is Switchyard's vocabulary: the canonical chat and embedding types every provider
// adapter converts to and from, the Provider interface, and the error kinds that map to the five
// error classes at the edge. It imports nothing of the project's and, of vendor packages, only
// grpc's codes (a list of constants), for the gRPC column of the error table (kinds.go).
package llm

import "context"

// Provider is one upstream endpoint speaking one native protocol (OpenAI, Anthropic, a mock...).
// Implementations are safe for concurrent use. Every method honours ctx: cancelling it cancels the
// upstream call. Errors are *Error values (see Errorf), so the edge can map them to a class.
type Provider interface {
	// Chat answers req with one complete response.
	Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, error)
	// ChatStream starts a streamed answer. An error returned here means nothing was produced; an
	// error from Stream.Recv after chunks means the stream broke mid-way.
	ChatStream(ctx context.Context, req *ChatRequest) (Stream, error)
}

// Embedder is implemented by providers that serve embeddings.
type Embedder interface {
	// Embed returns one vector per input, in input order.
	Embed(ctx context.Context, req *EmbeddingRequest) (*EmbeddingResponse, error)
}

// ModelLister is implemented by providers that can name the models they serve.
type ModelLister interface {
	// Models returns the upstream model names this provider serves (without the provider prefix).
	Models() []string
}

// Stream yields the chunks of a streamed answer. Recv returns io.EOF after the last chunk.
// Close releases the upstream connection; it is safe to call more than once and after io.EOF.
// A Stream is used by one goroutine at a time.
type Stream interface {
	Recv() (*Chunk, error)
	Close() error
}

// Roles of chat messages.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Finish reasons, OpenAI's names; adapters map native reasons onto these.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// ChatRequest is a chat completion request in canonical form. Model is the upstream model name
// (the provider prefix and aliases are already resolved). Optional numbers are nil when unset.
type ChatRequest struct {
	Model               string
	Messages            []Message
	Temperature         *float64
	TopP                *float64
	MaxTokens           *int32 // max_completion_tokens if given, else max_tokens
	Stop                []string
	PresencePenalty     *float64
	FrequencyPenalty    *float64
	Seed                *int64
	N                   *int32
	ResponseFormat      *ResponseFormat
	User                string
	Tools               []Tool
	ToolChoice          *ToolChoice
	ParallelToolCalls   *bool
	ReasoningEffort     string
	IncludeStreamUsage  bool // the client asked for a usage chunk at the end of a stream
	LegacyMaxTokensName bool // the client sent max_tokens rather than max_completion_tokens
}

// Message is one conversation message. Content holds the text parts; a plain text message is a
// single PartText part (see TextMessage).
type Message struct {
	Role             string
	Content          []Part
	ContentIsParts   bool // the client sent content as a list of parts, not a string
	Name             string
	ToolCalls        []ToolCall
	ToolCallID       string
	ReasoningContent string
	// ReasoningSignature is opaque provider data that authenticates ReasoningContent on an
	// assistant message (Anthropic's thinking-block signatures). Clients send back unchanged
	// what a response's ReasoningSignature carried; adapters that need it (Anthropic, with
	// thinking and tool use) drop reasoning that comes without it. Empty when there is none.
	ReasoningSignature string
}

// TextMessage returns a message with plain text content.
func TextMessage(role, text string) Message {
	return Message{Role: role, Content: []Part{{Type: PartText, Text: text}}}
}

// Text returns the concatenated text parts of m.
func (m *Message) Text() string {
	if len(m.Content) == 1 && m.Content[0].Type == PartText {
		return m.Content[0].Text
	}
	var n int
	for _, p := range m.Content {
		n += len(p.Text)
	}
	b := make([]byte, 0, n)
	for _, p := range m.Content {
		if p.Type == PartText {
			b = append(b, p.Text...)
		}
	}
	return string(b)
}

// Part types.
const (
	PartText       = "text"
	PartImageURL   = "image_url"
	PartInputAudio = "input_audio"
	PartFile       = "file"
)

// Part is one content part. Which fields are set depends on Type.
type Part struct {
	Type        string
	Text        string // PartText
	ImageURL    string // PartImageURL: http(s) or data: URL
	ImageDetail string // PartImageURL: auto, low, high
	AudioData   string // PartInputAudio: base64
	AudioFormat string // PartInputAudio: wav, mp3
	FileData    string // PartFile: data: URL
	FileID      string // PartFile
	FileName    string // PartFile
}

// ToolCall is a call the model made. Arguments is the JSON text exactly as the model produced it.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string
}

// Tool is a function the model may call. Parameters is a JSON Schema as raw JSON (nil if none).
type Tool struct {
	Name        string
	Description string
	Parameters  []byte
	Strict      *bool
}

// ToolChoice is "none", "auto", "required", or a named function (Mode "function", Name set).
type ToolChoice struct {
	Mode string
	Name string
}

// ResponseFormat selects text, json_object or json_schema output. Schema is raw JSON.
type ResponseFormat struct {
	Type              string
	SchemaName        string
	SchemaDescription string
	Schema            []byte
	Strict            *bool
}

// ChatResponse is a complete answer.
type ChatResponse struct {
	ID                string
	Model             string
	Created           int64
	Choices           []Choice
	Usage             *Usage
	SystemFingerprint string
	ServiceTier       string
}

// Choice is one generated answer. Content is nil when the model produced no text.
type Choice struct {
	Index            int32
	Content          *string
	Refusal          *string
	ReasoningContent *string
	ToolCalls        []ToolCall
	FinishReason     string
	// ReasoningSignature is opaque provider data to send back with ReasoningContent in the
	// next turn's assistant message (see Message.ReasoningSignature). Empty when there is none.
	ReasoningSignature string
}

// Usage counts tokens. Providers fill it from the upstream's report; the server estimates it
// (and sets Estimated) for an answer the upstream reported none for, so that every answered
// request is counted (docs/limits.md, "Counting tokens").
type Usage struct {
	PromptTokens             int32
	CompletionTokens         int32
	TotalTokens              int32
	CachedTokens             int32
	PromptAudioTokens        int32
	ReasoningTokens          int32
	CompletionAudioTokens    int32
	AcceptedPredictionTokens int32
	RejectedPredictionTokens int32
	// Estimated says the counts are the gateway's estimate (about 4 characters a token), not
	// the upstream's report. Never set by a provider; never sent to a client.
	Estimated bool
}

// Chunk is one piece of a streamed answer. A chunk with Usage set and no Choices is the usage
// report; providers send it last when they have it.
type Chunk struct {
	ID                string
	Model             string
	Created           int64
	Choices           []ChunkChoice
	Usage             *Usage
	SystemFingerprint string
}

// ChunkChoice is the delta of one choice. Pointer fields are nil when the chunk carries no such piece.
type ChunkChoice struct {
	Index            int32
	Role             string
	Content          *string
	ReasoningContent *string
	Refusal          *string
	ToolCalls        []ToolCallDelta
	FinishReason     string
	// ReasoningSignature is Choice.ReasoningSignature of a stream: whole, not a piece, on at
	// most one chunk of the choice (the one carrying FinishReason). Empty on other chunks.
	ReasoningSignature string
}

// ToolCallDelta is a piece of a tool call. The first piece of a call has ID and Name; later
// pieces carry only Index and more Arguments text.
type ToolCallDelta struct {
	Index     int32
	ID        string
	Name      string
	Arguments string
}

// EmbeddingRequest asks for one vector per input: either Texts or Tokens is set.
type EmbeddingRequest struct {
	Model      string
	Texts      []string
	Tokens     [][]int32
	Dimensions *int32
	User       string
}

// EmbeddingResponse holds one vector per input, in input order.
type EmbeddingResponse struct {
	Model        string
	Vectors      [][]float32
	PromptTokens int32
	// UsageEstimated says PromptTokens is the gateway's estimate: this caller's share of a
	// merged (micro-batched) upstream call's count, or, set by an adapter, an estimate for an
	// upstream that reported no count (bedrock's Cohere embeddings without the count header).
	UsageEstimated bool
}

// Ptr returns a pointer to v, for optional fields.
func Ptr[T any](v T) *T { return &v }
