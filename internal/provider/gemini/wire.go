package gemini

import "encoding/json"

// Wire types of the Generative Language API v1beta REST surface (protos in
// google/ai/generativelanguage/v1beta: GenerateContentRequest, GenerateContentResponse,
// EmbedContentRequest, BatchEmbedContentsRequest and their responses; google.rpc.Status for
// errors). JSON names are the protos' lowerCamelCase JSON names. Only the fields the gateway
// uses are declared.

type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction,omitempty"`
	Tools             []tool            `json:"tools,omitempty"`
	ToolConfig        *toolConfig       `json:"toolConfig,omitempty"`
	GenerationConfig  *generationConfig `json:"generationConfig,omitempty"`
}

// content is a Content: a turn of role "user" or "model" (no role in systemInstruction).
type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

// part is a Part. Exactly one data member is set (text, inlineData, fileData, functionCall,
// functionResponse); thought and thoughtSignature are metadata beside it.
type part struct {
	Text             *string           `json:"text,omitempty"`
	InlineData       *blob             `json:"inlineData,omitempty"`
	FileData         *fileData         `json:"fileData,omitempty"`
	FunctionCall     *functionCall     `json:"functionCall,omitempty"`
	FunctionResponse *functionResponse `json:"functionResponse,omitempty"`
	Thought          bool              `json:"thought,omitempty"`
	ThoughtSignature string            `json:"thoughtSignature,omitempty"` // bytes: standard base64
}

type blob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"` // bytes: standard base64
}

type fileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

type functionCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"` // a JSON object (google.protobuf.Struct)
}

type functionResponse struct {
	ID       string          `json:"id,omitempty"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"` // a JSON object (google.protobuf.Struct)
}

type tool struct {
	FunctionDeclarations []functionDeclaration `json:"functionDeclarations,omitempty"`
}

// functionDeclaration carries the client's JSON Schema in parametersJsonSchema, which takes
// JSON Schema as is (parameters would need the OpenAPI-subset Schema message).
type functionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

type toolConfig struct {
	FunctionCallingConfig *functionCallingConfig `json:"functionCallingConfig,omitempty"`
}

type functionCallingConfig struct {
	Mode                 string   `json:"mode,omitempty"` // AUTO, ANY, NONE
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

type generationConfig struct {
	CandidateCount     *int32          `json:"candidateCount,omitempty"`
	StopSequences      []string        `json:"stopSequences,omitempty"`
	MaxOutputTokens    *int32          `json:"maxOutputTokens,omitempty"`
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"topP,omitempty"`
	Seed               *int32          `json:"seed,omitempty"`
	ResponseMimeType   string          `json:"responseMimeType,omitempty"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema,omitempty"`
	PresencePenalty    *float64        `json:"presencePenalty,omitempty"`
	FrequencyPenalty   *float64        `json:"frequencyPenalty,omitempty"`
	ThinkingConfig     *thinkingConfig `json:"thinkingConfig,omitempty"`
}

type thinkingConfig struct {
	IncludeThoughts *bool  `json:"includeThoughts,omitempty"`
	ThinkingBudget  *int32 `json:"thinkingBudget,omitempty"`
}

// generateResponse is a GenerateContentResponse: the whole answer, or one SSE event of a
// stream. Error is set when a stream event is a google.rpc.Status instead.
type generateResponse struct {
	Candidates     []candidate     `json:"candidates"`
	PromptFeedback *promptFeedback `json:"promptFeedback"`
	UsageMetadata  *usageMetadata  `json:"usageMetadata"`
	ModelVersion   string          `json:"modelVersion"`
	ResponseID     string          `json:"responseId"`
	Error          *rpcStatus      `json:"error"`
}

type candidate struct {
	Content       *content `json:"content"`
	FinishReason  string   `json:"finishReason"`
	FinishMessage string   `json:"finishMessage"`
	Index         int32    `json:"index"`
}

type promptFeedback struct {
	BlockReason string `json:"blockReason"`
}

type usageMetadata struct {
	PromptTokenCount        int32 `json:"promptTokenCount"`
	CachedContentTokenCount int32 `json:"cachedContentTokenCount"`
	CandidatesTokenCount    int32 `json:"candidatesTokenCount"`
	ToolUsePromptTokenCount int32 `json:"toolUsePromptTokenCount"`
	ThoughtsTokenCount      int32 `json:"thoughtsTokenCount"`
	TotalTokenCount         int32 `json:"totalTokenCount"`
}

type embedRequest struct {
	Model                string  `json:"model,omitempty"` // required inside batchEmbedContents
	Content              content `json:"content"`
	TaskType             string  `json:"taskType,omitempty"`
	OutputDimensionality *int32  `json:"outputDimensionality,omitempty"`
}

type batchEmbedRequest struct {
	Requests []embedRequest `json:"requests"`
}

type contentEmbedding struct {
	Values []float32 `json:"values"`
}

type embedResponse struct {
	Embedding *contentEmbedding `json:"embedding"`
}

type batchEmbedResponse struct {
	Embeddings []contentEmbedding `json:"embeddings"`
}

// errorBody is the JSON form of a google.rpc.Status answer: {"error": {...}}.
type errorBody struct {
	Error *rpcStatus `json:"error"`
}

type rpcStatus struct {
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Status  string         `json:"status"`
	Details []statusDetail `json:"details"`
}

// statusDetail holds the members of the detail types the adapter reads: ErrorInfo (reason),
// RetryInfo (retryDelay) and QuotaFailure (violations).
type statusDetail struct {
	Type       string           `json:"@type"`
	Reason     string           `json:"reason"`
	RetryDelay string           `json:"retryDelay"`
	Violations []quotaViolation `json:"violations"`
}

type quotaViolation struct {
	QuotaID string `json:"quotaId"`
}
