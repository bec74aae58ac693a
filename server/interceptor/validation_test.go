package interceptor

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
)

// validate and validateIn check m with the default limits.
func validate(m any) error { return validateIn(m, false) }

func validateIn(m any, sessionHeader bool) error {
	return newValidator(RequestLimits{}).validate(m, sessionHeader)
}

func text(s string) *pb.MessageContent {
	return &pb.MessageContent{Content: &pb.MessageContent_Text{Text: s}}
}

func parts(ps ...*pb.ContentPart) *pb.MessageContent {
	return &pb.MessageContent{Content: &pb.MessageContent_Parts{Parts: &pb.ContentParts{Parts: ps}}}
}

// chat returns a valid request changed by edit.
func chat(edit func(r *pb.CreateChatCompletionRequest)) *pb.CreateChatCompletionRequest {
	r := &pb.CreateChatCompletionRequest{Model: "openai/gpt-4o", Messages: []*pb.ChatMessage{{Role: "user", Content: text("hi")}}}
	if edit != nil {
		edit(r)
	}
	return r
}

func fn(name string) *pb.Tool {
	return &pb.Tool{Type: "function", Function: &pb.FunctionDefinition{Name: name}}
}

func TestValidateChat(t *testing.T) {
	cases := []struct {
		name      string
		req       *pb.CreateChatCompletionRequest
		wantParam string // "" means valid
	}{
		{"minimal", chat(nil), ""},
		{"everything in range", chat(func(r *pb.CreateChatCompletionRequest) {
			r.Temperature, r.TopP = llm.Ptr(2.0), llm.Ptr(0.0)
			r.PresencePenalty, r.FrequencyPenalty = llm.Ptr(-2.0), llm.Ptr(2.0)
			r.MaxTokens, r.MaxCompletionTokens, r.N = llm.Ptr(int32(1)), llm.Ptr(int32(1)), llm.Ptr(int32(8))
			r.Stop = []string{"a", "b", "c", "d"}
			r.Tools = []*pb.Tool{fn("get_weather-2"), {Function: &pb.FunctionDefinition{Name: strings.Repeat("x", 64)}}}
			r.ToolChoice = &pb.ToolChoice{Choice: &pb.ToolChoice_Mode{Mode: "required"}}
			r.ResponseFormat = &pb.ResponseFormat{Type: "json_schema", JsonSchema: &pb.JSONSchema{Name: "answer"}}
			r.Messages = append(r.Messages,
				&pb.ChatMessage{Role: "system", Content: text("be brief")},
				&pb.ChatMessage{Role: "developer", Content: text("")},
				&pb.ChatMessage{Role: "assistant", ToolCalls: []*pb.ToolCall{{Id: "c1", Function: &pb.FunctionCall{Name: "f"}}}},
				&pb.ChatMessage{Role: "tool", ToolCallId: "c1", Content: text("42")},
				&pb.ChatMessage{Role: "user", Content: parts(
					&pb.ContentPart{Type: "text", Text: "see"},
					&pb.ContentPart{Type: "image_url", ImageUrl: &pb.ImageURL{Url: "https://x/y.png"}},
					&pb.ContentPart{Type: "input_audio", InputAudio: &pb.InputAudio{Data: "AA", Format: "wav"}},
					&pb.ContentPart{Type: "file", File: &pb.File{FileId: "f1"}},
				)},
			)
		}), ""},
		{"named tool choice", chat(func(r *pb.CreateChatCompletionRequest) {
			r.ToolChoice = &pb.ToolChoice{Choice: &pb.ToolChoice_Named{Named: &pb.NamedToolChoice{Function: &pb.FunctionName{Name: "f"}}}}
		}), ""},
		{"no model", chat(func(r *pb.CreateChatCompletionRequest) { r.Model = "" }), "model"},
		{"no messages", chat(func(r *pb.CreateChatCompletionRequest) { r.Messages = nil }), "messages"},
		{"unknown role", chat(func(r *pb.CreateChatCompletionRequest) {
			r.Messages = append(r.Messages, &pb.ChatMessage{Role: "user", Content: text("a")}, &pb.ChatMessage{Role: "robot", Content: text("b")})
		}), "messages[2].role"},
		{"empty role", chat(func(r *pb.CreateChatCompletionRequest) { r.Messages[0].Role = "" }), "messages[0].role"},
		{"tool message without tool_call_id", chat(func(r *pb.CreateChatCompletionRequest) {
			r.Messages = append(r.Messages, &pb.ChatMessage{Role: "tool", Content: text("42")})
		}), "messages[1].tool_call_id"},
		{"user message without content", chat(func(r *pb.CreateChatCompletionRequest) { r.Messages[0].Content = nil }), "messages[0].content"},
		{"empty parts", chat(func(r *pb.CreateChatCompletionRequest) { r.Messages[0].Content = parts() }), "messages[0].content"},
		{"unknown part type", chat(func(r *pb.CreateChatCompletionRequest) {
			r.Messages[0].Content = parts(&pb.ContentPart{Type: "text"}, &pb.ContentPart{Type: "video"})
		}), "messages[0].content[1].type"},
		{"image part without url", chat(func(r *pb.CreateChatCompletionRequest) {
			r.Messages[0].Content = parts(&pb.ContentPart{Type: "image_url"})
		}), "messages[0].content[0].image_url.url"},
		{"assistant tool call without name", chat(func(r *pb.CreateChatCompletionRequest) {
			r.Messages = append(r.Messages, &pb.ChatMessage{Role: "assistant", ToolCalls: []*pb.ToolCall{{Id: "c"}}})
		}), "messages[1].tool_calls[0].function.name"},
		{"temperature above 2", chat(func(r *pb.CreateChatCompletionRequest) { r.Temperature = llm.Ptr(2.01) }), "temperature"},
		{"temperature below 0", chat(func(r *pb.CreateChatCompletionRequest) { r.Temperature = llm.Ptr(-0.1) }), "temperature"},
		{"temperature NaN", chat(func(r *pb.CreateChatCompletionRequest) { r.Temperature = llm.Ptr(math.NaN()) }), "temperature"},
		{"top_p above 1", chat(func(r *pb.CreateChatCompletionRequest) { r.TopP = llm.Ptr(1.5) }), "top_p"},
		{"presence_penalty", chat(func(r *pb.CreateChatCompletionRequest) { r.PresencePenalty = llm.Ptr(-2.5) }), "presence_penalty"},
		{"frequency_penalty", chat(func(r *pb.CreateChatCompletionRequest) { r.FrequencyPenalty = llm.Ptr(3.0) }), "frequency_penalty"},
		{"max_tokens 0", chat(func(r *pb.CreateChatCompletionRequest) { r.MaxTokens = llm.Ptr(int32(0)) }), "max_tokens"},
		{"max_completion_tokens negative", chat(func(r *pb.CreateChatCompletionRequest) { r.MaxCompletionTokens = llm.Ptr(int32(-1)) }), "max_completion_tokens"},
		{"n 0", chat(func(r *pb.CreateChatCompletionRequest) { r.N = llm.Ptr(int32(0)) }), "n"},
		{"n 9", chat(func(r *pb.CreateChatCompletionRequest) { r.N = llm.Ptr(int32(9)) }), "n"},
		{"five stops", chat(func(r *pb.CreateChatCompletionRequest) { r.Stop = []string{"a", "b", "c", "d", "e"} }), "stop"},
		{"tool without function", chat(func(r *pb.CreateChatCompletionRequest) { r.Tools = []*pb.Tool{fn("ok"), {Type: "function"}} }), "tools[1].function"},
		{"tool of another type", chat(func(r *pb.CreateChatCompletionRequest) {
			r.Tools = []*pb.Tool{{Type: "web_search", Function: &pb.FunctionDefinition{Name: "f"}}}
		}), "tools[0].type"},
		{"tool name with a space", chat(func(r *pb.CreateChatCompletionRequest) { r.Tools = []*pb.Tool{fn("get weather")} }), "tools[0].function.name"},
		{"tool name too long", chat(func(r *pb.CreateChatCompletionRequest) { r.Tools = []*pb.Tool{fn(strings.Repeat("x", 65))} }), "tools[0].function.name"},
		{"empty tool name", chat(func(r *pb.CreateChatCompletionRequest) { r.Tools = []*pb.Tool{fn("")} }), "tools[0].function.name"},
		{"unknown response format", chat(func(r *pb.CreateChatCompletionRequest) { r.ResponseFormat = &pb.ResponseFormat{Type: "xml"} }), "response_format.type"},
		{"json_schema without name", chat(func(r *pb.CreateChatCompletionRequest) {
			r.ResponseFormat = &pb.ResponseFormat{Type: "json_schema", JsonSchema: &pb.JSONSchema{}}
		}), "response_format.json_schema.name"},
		{"unknown tool choice mode", chat(func(r *pb.CreateChatCompletionRequest) {
			r.ToolChoice = &pb.ToolChoice{Choice: &pb.ToolChoice_Mode{Mode: "any"}}
		}), "tool_choice"},
		{"named tool choice without name", chat(func(r *pb.CreateChatCompletionRequest) {
			r.ToolChoice = &pb.ToolChoice{Choice: &pb.ToolChoice_Named{Named: &pb.NamedToolChoice{}}}
		}), "tool_choice.function.name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkParam(t, validate(c.req), c.wantParam)
			// The streaming RPC's wrapper is validated the same way.
			checkParam(t, validate(&pb.StreamChatCompletionRequest{Request: c.req}), c.wantParam)
		})
	}
	checkParam(t, validate(&pb.StreamChatCompletionRequest{}), "request")
}

func TestValidateEmbeddingAndModel(t *testing.T) {
	texts := &pb.EmbeddingInput{Texts: []string{"a"}}
	cases := []struct {
		name      string
		req       any
		wantParam string
	}{
		{"texts", &pb.CreateEmbeddingRequest{Model: "m", Input: texts}, ""},
		{"tokens, base64, dimensions", &pb.CreateEmbeddingRequest{Model: "m", Input: &pb.EmbeddingInput{Tokens: []*pb.TokenIDs{{Ids: []int32{1}}}},
			EncodingFormat: "base64", Dimensions: llm.Ptr(int32(256))}, ""},
		{"float", &pb.CreateEmbeddingRequest{Model: "m", Input: texts, EncodingFormat: "float"}, ""},
		{"2048 inputs", &pb.CreateEmbeddingRequest{Model: "m", Input: &pb.EmbeddingInput{Texts: make([]string, 2048)}}, ""},
		{"no model", &pb.CreateEmbeddingRequest{Input: texts}, "model"},
		{"no input", &pb.CreateEmbeddingRequest{Model: "m"}, "input"},
		{"empty input", &pb.CreateEmbeddingRequest{Model: "m", Input: &pb.EmbeddingInput{}}, "input"},
		{"2049 inputs", &pb.CreateEmbeddingRequest{Model: "m", Input: &pb.EmbeddingInput{Texts: make([]string, 2049)}}, "input"},
		{"texts and tokens", &pb.CreateEmbeddingRequest{Model: "m", Input: &pb.EmbeddingInput{Texts: []string{"a"}, Tokens: []*pb.TokenIDs{{Ids: []int32{1}}}}}, "input"},
		{"empty token list", &pb.CreateEmbeddingRequest{Model: "m", Input: &pb.EmbeddingInput{Tokens: []*pb.TokenIDs{{Ids: []int32{1}}, {}}}}, "input[1]"},
		{"unknown encoding", &pb.CreateEmbeddingRequest{Model: "m", Input: texts, EncodingFormat: "int8"}, "encoding_format"},
		{"dimensions 0", &pb.CreateEmbeddingRequest{Model: "m", Input: texts, Dimensions: llm.Ptr(int32(0))}, "dimensions"},
		{"model id", &pb.GetModelRequest{Id: "openai/gpt-4o"}, ""},
		{"empty model id", &pb.GetModelRequest{}, "model"},
		{"other messages pass", &pb.ListModelsRequest{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkParam(t, validate(c.req), c.wantParam) })
	}
}

func checkParam(t *testing.T, err error, wantParam string) {
	t.Helper()
	if wantParam == "" {
		if err != nil {
			t.Fatalf("validate() = %v; want nil", err)
		}
		return
	}
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindInvalidArgument || e.Param != wantParam || e.Message == "" {
		t.Fatalf("validate() = %#v; want KindInvalidArgument with param %q and a message", err, wantParam)
	}
}

func TestSaneRequestID(t *testing.T) {
	cases := map[string]bool{
		"abc":                       true,
		"A-b_c.9":                   true,
		strings.Repeat("a", 128):    true,
		"":                          false,
		strings.Repeat("a", 129):    false,
		"has space":                 false,
		"semi;colon":                false,
		"new\nline":                 false,
		"ünïcode":                   false,
		"0190f5b4-7a3c-7d1e-8f00-1": true,
	}
	for id, want := range cases {
		if got := saneRequestID(id); got != want {
			t.Errorf("saneRequestID(%q) = %v; want %v", id, got, want)
		}
	}
}

// TestValidateSessionModel: a chat request continuing a session (body session_id, or the
// x-switchyard-session-id header) may leave the model out; without a session it may not.
func TestValidateSessionModel(t *testing.T) {
	msgs := []*pb.ChatMessage{{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: "hi"}}}}
	noModel := &pb.CreateChatCompletionRequest{Messages: msgs}
	checkParam(t, validateIn(noModel, false), "model")
	if err := validateIn(noModel, true); err != nil {
		t.Errorf("with the session header: %v; want nil", err)
	}
	if err := validateIn(&pb.CreateChatCompletionRequest{Messages: msgs, SessionId: "0192f3a0-0000-7000-8000-000000000000"}, false); err != nil {
		t.Errorf("with session_id: %v; want nil", err)
	}
	if err := validateIn(&pb.StreamChatCompletionRequest{Request: noModel}, true); err != nil {
		t.Errorf("stream with the session header: %v; want nil", err)
	}
}

// nested returns a JSON schema whose objects nest depth levels deep (the schema is level 1).
func nested(t *testing.T, depth int) *structpb.Struct {
	t.Helper()
	var v any = "leaf"
	for range depth - 1 {
		v = map[string]any{"p": v}
	}
	s, err := structpb.NewStruct(map[string]any{"type": "object", "properties": v})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRequestLimits: each shape limit refuses a request one over it with code limit_exceeded,
// the field as param and the setting and its value in the message; a request at the limit, or
// any request when the limit is negative (off), passes.
func TestRequestLimits(t *testing.T) {
	msgs := func(n int) func(*pb.CreateChatCompletionRequest) {
		return func(r *pb.CreateChatCompletionRequest) {
			r.Messages = make([]*pb.ChatMessage, n)
			for i := range r.Messages {
				r.Messages[i] = &pb.ChatMessage{Role: "user", Content: text("hi")}
			}
		}
	}
	tools := func(n int) func(*pb.CreateChatCompletionRequest) {
		return func(r *pb.CreateChatCompletionRequest) {
			for i := range n {
				r.Tools = append(r.Tools, fn(fmt.Sprintf("f%d", i)))
			}
		}
	}
	contentParts := func(n int) func(*pb.CreateChatCompletionRequest) {
		return func(r *pb.CreateChatCompletionRequest) {
			ps := make([]*pb.ContentPart, n)
			for i := range ps {
				ps[i] = &pb.ContentPart{Type: "text", Text: "x"}
			}
			r.Messages[0].Content = parts(ps...)
		}
	}
	args := func(n int) func(*pb.CreateChatCompletionRequest) {
		return func(r *pb.CreateChatCompletionRequest) {
			r.Messages = append(r.Messages, &pb.ChatMessage{Role: "assistant", ToolCalls: []*pb.ToolCall{
				{Id: "c1", Function: &pb.FunctionCall{Name: "f", Arguments: strings.Repeat("x", n)}}}})
		}
	}
	stop := func(n int) func(*pb.CreateChatCompletionRequest) {
		return func(r *pb.CreateChatCompletionRequest) { r.Stop = make([]string, n) }
	}
	toolSchema := func(depth int) func(*pb.CreateChatCompletionRequest) {
		return func(r *pb.CreateChatCompletionRequest) {
			r.Tools = []*pb.Tool{{Type: "function", Function: &pb.FunctionDefinition{Name: "f", Parameters: nested(t, depth)}}}
		}
	}
	formatSchema := func(depth int) func(*pb.CreateChatCompletionRequest) {
		return func(r *pb.CreateChatCompletionRequest) {
			r.ResponseFormat = &pb.ResponseFormat{Type: "json_schema", JsonSchema: &pb.JSONSchema{Name: "a", Schema: nested(t, depth)}}
		}
	}
	embed := func(n int) *pb.CreateEmbeddingRequest {
		return &pb.CreateEmbeddingRequest{Model: "m", Input: &pb.EmbeddingInput{Texts: make([]string, n)}}
	}
	cases := []struct {
		name      string
		lim       RequestLimits
		req       any
		wantParam string // "" means valid
		wantInMsg string
	}{
		{"messages at the default", RequestLimits{}, chat(msgs(DefaultMaxMessages)), "", ""},
		{"messages over the default", RequestLimits{}, chat(msgs(DefaultMaxMessages + 1)), "messages", "max_messages"},
		{"10,000 messages", RequestLimits{}, chat(msgs(10000)), "messages", "at most 4096 messages"},
		{"messages over a configured limit", RequestLimits{MaxMessages: 2}, chat(msgs(3)), "messages", "at most 2 messages"},
		{"messages limit off", RequestLimits{MaxMessages: -1}, chat(msgs(10000)), "", ""},
		{"tools at the default", RequestLimits{}, chat(tools(DefaultMaxTools)), "", ""},
		{"tools over the default", RequestLimits{}, chat(tools(DefaultMaxTools + 1)), "tools", "max_tools"},
		{"tools limit raised", RequestLimits{MaxTools: 256}, chat(tools(DefaultMaxTools + 1)), "", ""},
		{"content parts at the default", RequestLimits{}, chat(contentParts(DefaultMaxContentParts)), "", ""},
		{"content parts over the default", RequestLimits{}, chat(contentParts(DefaultMaxContentParts + 1)), "messages[0].content", "max_content_parts"},
		{"tool call arguments at a limit", RequestLimits{MaxToolCallArgs: 10}, chat(args(10)), "", ""},
		{"tool call arguments over a limit", RequestLimits{MaxToolCallArgs: 10}, chat(args(11)), "messages[1].tool_calls[0].function.arguments", "at most 10 bytes"},
		{"tool call arguments over the default", RequestLimits{}, chat(args(DefaultMaxToolCallArgs + 1)), "messages[1].tool_calls[0].function.arguments", "max_tool_call_arguments_bytes"},
		{"stop over the default", RequestLimits{}, chat(stop(DefaultMaxStop + 1)), "stop", "max_stop"},
		{"stop limit raised", RequestLimits{MaxStop: 8}, chat(stop(8)), "", ""},
		{"tool schema at the default depth", RequestLimits{}, chat(toolSchema(DefaultMaxSchemaDepth)), "", ""},
		{"tool schema too deep", RequestLimits{}, chat(toolSchema(DefaultMaxSchemaDepth + 1)), "tools[0].function.parameters", "max_schema_depth"},
		{"tool schema 10,000 deep", RequestLimits{}, chat(toolSchema(10000)), "tools[0].function.parameters", "deeper than 64"},
		{"response schema too deep", RequestLimits{MaxSchemaDepth: 3}, chat(formatSchema(4)), "response_format.json_schema.schema", "deeper than 3"},
		{"response schema depth off", RequestLimits{MaxSchemaDepth: -1}, chat(formatSchema(500)), "", ""},
		{"embedding inputs over a limit", RequestLimits{MaxEmbeddingInputs: 1}, embed(2), "input", "max_embedding_inputs"},
		{"embedding inputs limit raised", RequestLimits{MaxEmbeddingInputs: 4096}, embed(2049), "", ""},
		{"rerank documents at the default", RequestLimits{}, rerankDocs(DefaultMaxRerankDocuments), "", ""},
		{"rerank documents over the default", RequestLimits{}, rerankDocs(DefaultMaxRerankDocuments + 1), "documents", "max_rerank_documents"},
		{"rerank documents over a limit", RequestLimits{MaxRerankDocuments: 2}, rerankDocs(3), "documents", "at most 2 documents"},
		{"rerank documents limit off", RequestLimits{MaxRerankDocuments: -1}, rerankDocs(5000), "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := newValidator(c.lim).validate(c.req, false)
			checkParam(t, err, c.wantParam)
			if c.wantParam == "" {
				return
			}
			var e *llm.Error
			if errors.As(err, &e); e.Code != CodeLimitExceeded || !strings.Contains(e.Message, c.wantInMsg) {
				t.Errorf("error = %q (code %q); want code %q and a message mentioning %q", e.Message, e.Code, CodeLimitExceeded, c.wantInMsg)
			}
		})
	}
}

func TestRequestLimitsWithDefaults(t *testing.T) {
	got := RequestLimits{MaxTools: 7, MaxStop: -1}.WithDefaults()
	want := RequestLimits{MaxMessages: DefaultMaxMessages, MaxTools: 7, MaxContentParts: DefaultMaxContentParts,
		MaxToolCallArgs: DefaultMaxToolCallArgs, MaxStop: -1, MaxEmbeddingInputs: DefaultMaxEmbeddingInputs, MaxRerankDocuments: DefaultMaxRerankDocuments,
		MaxSchemaDepth: DefaultMaxSchemaDepth}
	if got != want {
		t.Errorf("WithDefaults() = %+v; want %+v", got, want)
	}
}

func rerankDocs(n int) *pb.RerankRequest {
	r := &pb.RerankRequest{Model: "m", Query: "q"}
	for range n {
		r.Documents = append(r.Documents, &pb.RerankDocument{Document: &pb.RerankDocument_Text{Text: "d"}})
	}
	return r
}

func TestValidateRerank(t *testing.T) {
	text := []*pb.RerankDocument{{Document: &pb.RerankDocument_Text{Text: "d"}}}
	structured := func(fields ...*pb.DocumentField) []*pb.RerankDocument {
		return []*pb.RerankDocument{{Document: &pb.RerankDocument_Structured{Structured: &pb.StructuredDocument{Fields: fields}}}}
	}
	cases := []struct {
		name      string
		req       *pb.RerankRequest
		wantParam string
	}{
		{"text", &pb.RerankRequest{Model: "m", Query: "q", Documents: text}, ""},
		{"empty text is a document", &pb.RerankRequest{Model: "m", Query: "q", Documents: []*pb.RerankDocument{{Document: &pb.RerankDocument_Text{}}}}, ""},
		{"structured, top_n 0, chunks 1", &pb.RerankRequest{Model: "m", Query: "q", Documents: structured(&pb.DocumentField{Key: "title", Value: "t"}),
			TopN: llm.Ptr(int32(0)), MaxChunksPerDoc: llm.Ptr(int32(1))}, ""},
		{"no model", &pb.RerankRequest{Query: "q", Documents: text}, "model"},
		{"no query", &pb.RerankRequest{Model: "m", Documents: text}, "query"},
		{"no documents", &pb.RerankRequest{Model: "m", Query: "q"}, "documents"},
		{"unset document", &pb.RerankRequest{Model: "m", Query: "q", Documents: append(text, &pb.RerankDocument{})}, "documents[1]"},
		{"structured without fields", &pb.RerankRequest{Model: "m", Query: "q", Documents: structured()}, "documents[0]"},
		{"negative top_n", &pb.RerankRequest{Model: "m", Query: "q", Documents: text, TopN: llm.Ptr(int32(-1))}, "top_n"},
		{"max_chunks_per_doc 0", &pb.RerankRequest{Model: "m", Query: "q", Documents: text, MaxChunksPerDoc: llm.Ptr(int32(0))}, "max_chunks_per_doc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkParam(t, validate(c.req), c.wantParam) })
	}
}
