package ollama

import (
	"bytes"
	"encoding/json"
	"time"
)

// Wire types of Ollama's native API (docs/api.md, docs/openapi.yaml, api/types.go). Only the
// fields the gateway uses are declared.

type chatRequest struct {
	Model     string          `json:"model"`
	Messages  []message       `json:"messages"`
	Tools     []tool          `json:"tools,omitempty"`
	Format    json.RawMessage `json:"format,omitempty"` // "json" or a JSON schema object
	Options   *options        `json:"options,omitempty"`
	Stream    bool            `json:"stream"` // always sent: Ollama streams by default
	Think     any             `json:"think,omitempty"`
	KeepAlive json.RawMessage `json:"keep_alive,omitempty"` // "5m" or a number of seconds
}

// options are Ollama's runtime options (ModelOptions). Pointers: unset options keep the model's
// defaults.
type options struct {
	NumCtx           *int     `json:"num_ctx,omitempty"`
	NumPredict       *int32   `json:"num_predict,omitempty"`
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"top_p,omitempty"`
	Stop             []string `json:"stop,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
}

type message struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"` // required by the API, even when empty
	Thinking   string     `json:"thinking,omitempty"`
	Images     []string   `json:"images,omitempty"` // bare base64
	ToolCalls  []toolCall `json:"tool_calls,omitempty"`
	ToolName   string     `json:"tool_name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
}

type toolCall struct {
	ID       string       `json:"id,omitempty"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Index     *int            `json:"index,omitempty"`
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"` // a JSON object, not a string
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

// chatResponse is a blocking answer and also one NDJSON line of a streamed answer. Error is set
// instead of the rest when the server fails (mid-stream too).
type chatResponse struct {
	Model           string          `json:"model"`
	CreatedAt       time.Time       `json:"created_at"`
	Message         responseMessage `json:"message"`
	Done            bool            `json:"done"`
	DoneReason      string          `json:"done_reason"`
	PromptEvalCount int32           `json:"prompt_eval_count"`
	EvalCount       int32           `json:"eval_count"`
	Error           *string         `json:"error"`
}

type responseMessage struct {
	Role      string     `json:"role"`
	Content   string     `json:"content"`
	Thinking  string     `json:"thinking"`
	ToolCalls []toolCall `json:"tool_calls"`
}

type embedRequest struct {
	Model      string          `json:"model"`
	Input      []string        `json:"input"`
	Truncate   *bool           `json:"truncate,omitempty"`
	Dimensions *int32          `json:"dimensions,omitempty"`
	KeepAlive  json.RawMessage `json:"keep_alive,omitempty"`
	Options    *options        `json:"options,omitempty"`
}

type embedResponse struct {
	Model           string      `json:"model"`
	Embeddings      [][]float32 `json:"embeddings"`
	PromptEvalCount int32       `json:"prompt_eval_count"`
	Error           *string     `json:"error"`
}

// errorBody is Ollama's error answer, {"error":"message"}.
type errorBody struct {
	Error string `json:"error"`
}

// compactArgs returns tool-call arguments as the compact JSON text OpenAI clients expect ("{}"
// when the model sent none).
func compactArgs(raw json.RawMessage) string {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "{}"
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}
