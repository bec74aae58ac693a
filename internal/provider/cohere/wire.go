package cohere

import "encoding/json"

// The Cohere v2 wire types the adapter sends and reads (cohere-openapi.yaml: /v2/chat,
// /v2/embed, /v2/rerank). Only the fields the adapter uses are declared.

type chatRequest struct {
	Model            string          `json:"model"`
	Messages         []message       `json:"messages"`
	Stream           bool            `json:"stream,omitempty"`
	Tools            []tool          `json:"tools,omitempty"`
	StrictTools      *bool           `json:"strict_tools,omitempty"`
	ToolChoice       string          `json:"tool_choice,omitempty"`
	ResponseFormat   *responseFormat `json:"response_format,omitempty"`
	MaxTokens        *int32          `json:"max_tokens,omitempty"`
	StopSequences    []string        `json:"stop_sequences,omitempty"`
	Temperature      *float64        `json:"temperature,omitempty"`
	Seed             *int64          `json:"seed,omitempty"`
	FrequencyPenalty *float64        `json:"frequency_penalty,omitempty"`
	PresencePenalty  *float64        `json:"presence_penalty,omitempty"`
	P                *float64        `json:"p,omitempty"`
	Thinking         *thinking       `json:"thinking,omitempty"`
}

// message is one of the four role-discriminated messages. Content is a string or a list of
// contentPart; tool messages carry ToolCallID, assistant messages ToolCalls and ToolPlan.
type message struct {
	Role       string     `json:"role"`
	Content    any        `json:"content,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	ToolCalls  []toolCall `json:"tool_calls,omitempty"`
	ToolPlan   string     `json:"tool_plan,omitempty"`
}

type contentPart struct {
	Type     string    `json:"type"`
	Text     *string   `json:"text,omitempty"`
	Thinking *string   `json:"thinking,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type toolCall struct {
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function toolFunction `json:"function"`
}

type toolFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments,omitempty"`
}

type tool struct {
	Type     string      `json:"type"`
	Function functionDef `json:"function"`
}

type functionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
}

type responseFormat struct {
	Type       string          `json:"type"`
	JSONSchema json.RawMessage `json:"json_schema,omitempty"`
}

type thinking struct {
	Type        string `json:"type"`
	TokenBudget int32  `json:"token_budget,omitempty"`
}

// chatResponse is ChatResponseV2.
type chatResponse struct {
	ID           string           `json:"id"`
	FinishReason string           `json:"finish_reason"`
	Message      *responseMessage `json:"message"`
	Usage        *usage           `json:"usage"`
}

type responseMessage struct {
	Role      string            `json:"role"`
	Content   []contentPart     `json:"content"`
	ToolPlan  string            `json:"tool_plan"`
	ToolCalls []toolCall        `json:"tool_calls"`
	Citations []json.RawMessage `json:"citations"`
}

type usage struct {
	BilledUnits  *billedUnits `json:"billed_units"`
	Tokens       *tokens      `json:"tokens"`
	CachedTokens float64      `json:"cached_tokens"`
}

// Counts are declared as numbers (not integers) in the spec.
type billedUnits struct {
	InputTokens  float64 `json:"input_tokens"`
	OutputTokens float64 `json:"output_tokens"`
	SearchUnits  float64 `json:"search_units"`
}

type tokens struct {
	InputTokens  float64 `json:"input_tokens"`
	OutputTokens float64 `json:"output_tokens"`
}

// streamEvent is any StreamedChatResponseV2 event; which fields are set depends on Type.
type streamEvent struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	Index int32  `json:"index"`
	Delta *struct {
		Message      *deltaMessage `json:"message"`
		FinishReason string        `json:"finish_reason"`
		Usage        *usage        `json:"usage"`
		Error        string        `json:"error"`
	} `json:"delta"`
	// Message is set on a bare error object ({"message": ...}) sent inside a stream.
	Message string `json:"message"`
}

// deltaMessage is delta.message of a stream event: one content piece, a tool plan piece or a
// tool call (whole at tool-call-start, arguments only at tool-call-delta). Content and
// tool_calls are kept raw: message-start sends them as empty lists, the other events as objects.
type deltaMessage struct {
	Content   json.RawMessage `json:"content"`
	ToolPlan  *string         `json:"tool_plan"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

type embedRequest struct {
	Model           string   `json:"model"`
	Texts           []string `json:"texts"`
	InputType       string   `json:"input_type"`
	EmbeddingTypes  []string `json:"embedding_types"`
	OutputDimension *int32   `json:"output_dimension,omitempty"`
}

type embedResponse struct {
	ID         string `json:"id"`
	Embeddings struct {
		Float [][]float32 `json:"float"`
	} `json:"embeddings"`
	Meta *apiMeta `json:"meta"`
}

type apiMeta struct {
	BilledUnits *billedUnits `json:"billed_units"`
}

type rerankRequest struct {
	Model           string   `json:"model"`
	Query           string   `json:"query"`
	Documents       []string `json:"documents"`
	TopN            int32    `json:"top_n,omitempty"`
	MaxTokensPerDoc int32    `json:"max_tokens_per_doc,omitempty"`
}

type rerankResponse struct {
	ID      string `json:"id"`
	Results []struct {
		Index          *int32   `json:"index"`
		RelevanceScore *float64 `json:"relevance_score"`
	} `json:"results"`
	Meta *apiMeta `json:"meta"`
}

// errorBody is Cohere's error answer ({"id", "message"}) for every status.
type errorBody struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}
