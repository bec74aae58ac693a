package interceptor

import (
	"fmt"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/switchyard/switchyard/internal/llm"
)

// Default request limits. Each is equal to or looser than what OpenAI accepts, so no request
// OpenAI serves is refused; docs/limits.md gives the reasons.
const (
	DefaultMaxMessages        = 4096    // OpenAI documents no count; long agent loops reach a thousand
	DefaultMaxTools           = 128     // OpenAI's limit
	DefaultMaxContentParts    = 1024    // per message; OpenAI takes up to 500 images per request
	DefaultMaxToolCallArgs    = 1 << 20 // bytes of one tool call's arguments
	DefaultMaxStop            = 4       // OpenAI's limit
	DefaultMaxEmbeddingInputs = 2048    // OpenAI's limit
	DefaultMaxRerankDocuments = 1000    // Cohere's recommended maximum; Jina and vLLM document none
	DefaultMaxSchemaDepth     = 64      // JSON nesting; OpenAI's strict schemas allow 10 schema levels
)

// CodeLimitExceeded is the error code of a request over one of its RequestLimits.
const CodeLimitExceeded = "limit_exceeded"

// RequestLimits bound the shape of a request, beyond the size of its body: how many messages,
// tools, content parts, stop sequences, embedding inputs and rerank documents it has, how large one tool call's
// arguments are, and how deeply a JSON schema nests. They apply to the request as the client
// sent it (a session's stored history does not count). A zero field means its default; a
// negative one turns that limit off. A request over a limit is INVALID_ARGUMENT (HTTP 400) with
// code CodeLimitExceeded, the field as param, and a message naming the limit and its value.
type RequestLimits struct {
	MaxMessages        int `yaml:"max_messages"`                  // messages per chat request
	MaxTools           int `yaml:"max_tools"`                     // tools per chat request
	MaxContentParts    int `yaml:"max_content_parts"`             // content parts per message
	MaxToolCallArgs    int `yaml:"max_tool_call_arguments_bytes"` // bytes of each tool call's arguments
	MaxStop            int `yaml:"max_stop"`                      // stop sequences
	MaxEmbeddingInputs int `yaml:"max_embedding_inputs"`          // inputs per embeddings request
	MaxRerankDocuments int `yaml:"max_rerank_documents"`          // documents per rerank request
	// MaxSchemaDepth bounds the JSON nesting (objects and arrays; the schema itself is level 1)
	// of tools[].function.parameters and response_format.json_schema.schema.
	MaxSchemaDepth int `yaml:"max_schema_depth"`
}

// WithDefaults returns l with every zero field set to its default.
func (l RequestLimits) WithDefaults() RequestLimits {
	for _, f := range l.fields() {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	return l
}

// limitField is one field of RequestLimits: its value, YAML key and default.
type limitField struct {
	v   *int
	key string
	def int
}

func (l *RequestLimits) fields() []limitField {
	return []limitField{
		{&l.MaxMessages, "max_messages", DefaultMaxMessages},
		{&l.MaxTools, "max_tools", DefaultMaxTools},
		{&l.MaxContentParts, "max_content_parts", DefaultMaxContentParts},
		{&l.MaxToolCallArgs, "max_tool_call_arguments_bytes", DefaultMaxToolCallArgs},
		{&l.MaxStop, "max_stop", DefaultMaxStop},
		{&l.MaxEmbeddingInputs, "max_embedding_inputs", DefaultMaxEmbeddingInputs},
		{&l.MaxRerankDocuments, "max_rerank_documents", DefaultMaxRerankDocuments},
		{&l.MaxSchemaDepth, "max_schema_depth", DefaultMaxSchemaDepth},
	}
}

// over reports whether n exceeds limit; a negative limit is off.
func over(n, limit int) bool { return limit >= 0 && n > limit }

// overLimit is the error for param holding got items (what: "messages", "bytes") over limit,
// the value of the setting key.
func overLimit(param string, got int, what string, limit int, key string) *llm.Error {
	return &llm.Error{Kind: llm.KindInvalidArgument, Code: CodeLimitExceeded, Param: param,
		Message: fmt.Sprintf("Invalid '%s': at most %d %s are allowed (server.request_limits.%s), got %d.", param, limit, what, key, got)}
}

// checkSchemaDepth refuses schema, found at param, when it nests deeper than limit.
func checkSchemaDepth(param string, schema *structpb.Struct, limit int) error {
	if schema == nil || limit < 0 {
		return nil
	}
	if deeper(structpb.NewStructValue(schema), limit) {
		return &llm.Error{Kind: llm.KindInvalidArgument, Code: CodeLimitExceeded, Param: param,
			Message: fmt.Sprintf("Invalid '%s': the schema nests deeper than %d levels (server.request_limits.max_schema_depth).", param, limit)}
	}
	return nil
}

// deeper reports whether v nests objects and arrays more than left levels deep. It never
// descends past left levels, so an absurdly deep value costs no more than a value at the limit.
func deeper(v *structpb.Value, left int) bool {
	var children []*structpb.Value
	switch k := v.GetKind().(type) {
	case *structpb.Value_StructValue:
		for _, f := range k.StructValue.GetFields() {
			children = append(children, f)
		}
	case *structpb.Value_ListValue:
		children = k.ListValue.GetValues()
	default:
		return false // a scalar adds no level
	}
	if left == 0 {
		return true
	}
	for _, c := range children {
		if deeper(c, left-1) {
			return true
		}
	}
	return false
}
