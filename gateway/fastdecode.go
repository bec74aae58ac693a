package gateway

import (
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/jsonscan"
)

// The fast decoder reads the chat completion and embeddings request bodies, as clients send them
// (before normalization), straight into the request protos. It covers the subset of inputs that
// clients send in practice and gives up (returns false) on anything else: a camelCase or escaped
// field name, a duplicate field, a number written as a string or with an exponent where an
// integer is expected, a polymorphic field already in the typed shape, any malformed or unusual
// token. The codec then decodes the body the general way (normalizer and protojson), which also
// words every error. So a body the fast decoder accepts must decode to exactly the proto protojson
// gives for the normalized body (FuzzDecodeFast checks it with proto.Equal); anything else only
// costs the general path.
//
// protojson semantics kept: fields are matched by their proto names (the JSON names differ only
// by case here, and keys with upper case fall back); unknown fields are skipped (DiscardUnknown);
// a null value leaves its field unset but still counts for duplicate detection; {} sets an empty
// message; google.protobuf.Struct takes JSON objects, its numbers are doubles.

// fastDec is the decoder's state: a strict scanner of the body.
type fastDec struct{ jsonscan.Scanner }

// fastDecodeChat decodes a chat completion request body into m (reset first). false means the
// general path must decide; m is then in an unspecified state.
func fastDecodeChat(data []byte, m *pb.CreateChatCompletionRequest) bool {
	m.Reset()
	d := &fastDec{}
	d.Reset(data)
	var seen jsonscan.Seen
	ok := d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "model":
			n = 1
		case "messages":
			n = 2
		case "temperature":
			n = 3
		case "top_p":
			n = 4
		case "max_tokens":
			n = 5
		case "max_completion_tokens":
			n = 6
		case "stop":
			n = 7
		case "presence_penalty":
			n = 8
		case "frequency_penalty":
			n = 9
		case "seed":
			n = 10
		case "n":
			n = 11
		case "response_format":
			n = 12
		case "user":
			n = 13
		case "stream":
			n = 14
		case "stream_options":
			n = 15
		case "tools":
			n = 16
		case "tool_choice":
			n = 17
		case "parallel_tool_calls":
			n = 18
		case "reasoning_effort":
			n = 19
		case "session_id":
			n = 20
		default:
			return d.Skip(1)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			m.Model, ok = d.Str()
		case 2:
			ok = d.Array(func() bool {
				msg := new(pb.ChatMessage)
				m.Messages = append(m.Messages, msg)
				return d.chatMessage(msg)
			})
		case 3:
			m.Temperature, ok = d.optDouble()
		case 4:
			m.TopP, ok = d.optDouble()
		case 5:
			m.MaxTokens, ok = d.optInt32()
		case 6:
			m.MaxCompletionTokens, ok = d.optInt32()
		case 7:
			if d.Peek() == '"' {
				var s string
				s, ok = d.Str()
				m.Stop = []string{s}
			} else {
				m.Stop, ok = d.strings()
			}
		case 8:
			m.PresencePenalty, ok = d.optDouble()
		case 9:
			m.FrequencyPenalty, ok = d.optDouble()
		case 10:
			var v int64
			v, ok = d.Int(64)
			m.Seed = &v
		case 11:
			m.N, ok = d.optInt32()
		case 12:
			m.ResponseFormat = new(pb.ResponseFormat)
			ok = d.responseFormat(m.ResponseFormat)
		case 13:
			m.User, ok = d.Str()
		case 14:
			m.Stream, ok = d.Bool()
		case 15:
			m.StreamOptions = new(pb.StreamOptions)
			ok = d.streamOptions(m.StreamOptions)
		case 16:
			ok = d.Array(func() bool {
				t := new(pb.Tool)
				m.Tools = append(m.Tools, t)
				return d.tool(t)
			})
		case 17:
			m.ToolChoice, ok = d.toolChoice()
		case 18:
			var v bool
			v, ok = d.Bool()
			m.ParallelToolCalls = &v
		case 19:
			m.ReasoningEffort, ok = d.Str()
		case 20:
			m.SessionId, ok = d.Str()
		}
		return ok
	})
	return ok && d.End()
}

func (d *fastDec) optDouble() (*float64, bool) {
	v, ok := d.Float64()
	return &v, ok
}

func (d *fastDec) optInt32() (*int32, bool) {
	v, ok := d.Int32()
	return &v, ok
}

func (d *fastDec) optBool() (*bool, bool) {
	v, ok := d.Bool()
	return &v, ok
}

// strings reads an array of strings (null elements fail, as in protojson).
func (d *fastDec) strings() ([]string, bool) {
	var out []string
	ok := d.Array(func() bool {
		s, ok := d.Str()
		out = append(out, s)
		return ok
	})
	return out, ok
}

func (d *fastDec) chatMessage(m *pb.ChatMessage) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "role":
			n = 1
		case "content":
			n = 2
		case "name":
			n = 3
		case "tool_calls":
			n = 4
		case "tool_call_id":
			n = 5
		case "reasoning_content":
			n = 6
		case "reasoning_signature":
			n = 7
		default:
			return d.Skip(2)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			m.Role, ok = d.Str()
		case 2: // normalized: "s" → {"text":"s"}, [...] → {"parts":{"parts":[...]}}
			switch d.Peek() {
			case '"':
				var s string
				s, ok = d.Str()
				m.Content = &pb.MessageContent{Content: &pb.MessageContent_Text{Text: s}}
			case '[':
				parts := new(pb.ContentParts)
				m.Content = &pb.MessageContent{Content: &pb.MessageContent_Parts{Parts: parts}}
				ok = d.Array(func() bool {
					p := new(pb.ContentPart)
					parts.Parts = append(parts.Parts, p)
					return d.contentPart(p)
				})
			default:
				return false
			}
		case 3:
			m.Name, ok = d.Str()
		case 4:
			ok = d.Array(func() bool {
				tc := new(pb.ToolCall)
				m.ToolCalls = append(m.ToolCalls, tc)
				return d.toolCall(tc)
			})
		case 5:
			m.ToolCallId, ok = d.Str()
		case 6:
			m.ReasoningContent, ok = d.Str()
		case 7:
			m.ReasoningSignature, ok = d.Str()
		}
		return ok
	})
}

func (d *fastDec) contentPart(p *pb.ContentPart) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "type":
			n = 1
		case "text":
			n = 2
		case "image_url":
			n = 3
		case "input_audio":
			n = 4
		case "file":
			n = 5
		default:
			return d.Skip(5)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			p.Type, ok = d.Str()
		case 2:
			p.Text, ok = d.Str()
		case 3:
			p.ImageUrl = new(pb.ImageURL)
			ok = d.twoStrings("url", "detail", &p.ImageUrl.Url, &p.ImageUrl.Detail)
		case 4:
			p.InputAudio = new(pb.InputAudio)
			ok = d.twoStrings("data", "format", &p.InputAudio.Data, &p.InputAudio.Format)
		case 5:
			p.File = new(pb.File)
			ok = d.file(p.File)
		}
		return ok
	})
}

// twoStrings decodes a message of two string fields named a (number 1) and b (number 2).
func (d *fastDec) twoStrings(a, b string, va, vb *string) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		var v *string
		switch string(key) {
		case a:
			n, v = 1, va
		case b:
			n, v = 2, vb
		default:
			return d.Skip(6)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		*v, ok = d.Str()
		return ok
	})
}

func (d *fastDec) file(f *pb.File) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		var v *string
		switch string(key) {
		case "file_data":
			n, v = 1, &f.FileData
		case "file_id":
			n, v = 2, &f.FileId
		case "filename":
			n, v = 3, &f.Filename
		default:
			return d.Skip(6)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		*v, ok = d.Str()
		return ok
	})
}

func (d *fastDec) toolCall(tc *pb.ToolCall) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "id":
			n = 1
		case "type":
			n = 2
		case "function":
			n = 3
		default:
			return d.Skip(4)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			tc.Id, ok = d.Str()
		case 2:
			tc.Type, ok = d.Str()
		case 3:
			tc.Function = new(pb.FunctionCall)
			ok = d.twoStrings("name", "arguments", &tc.Function.Name, &tc.Function.Arguments)
		}
		return ok
	})
}

func (d *fastDec) tool(t *pb.Tool) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "type":
			n = 1
		case "function":
			n = 2
		default:
			return d.Skip(3)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		if n == 1 {
			t.Type, ok = d.Str()
			return ok
		}
		t.Function = new(pb.FunctionDefinition)
		return d.functionDefinition(t.Function)
	})
}

func (d *fastDec) functionDefinition(f *pb.FunctionDefinition) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "name":
			n = 1
		case "description":
			n = 2
		case "parameters":
			n = 3
		case "strict":
			n = 4
		default:
			return d.Skip(4)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			f.Name, ok = d.Str()
		case 2:
			f.Description, ok = d.Str()
		case 3:
			f.Parameters, ok = d.structValue(4)
		case 4:
			f.Strict, ok = d.optBool()
		}
		return ok
	})
}

func (d *fastDec) responseFormat(rf *pb.ResponseFormat) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "type":
			n = 1
		case "json_schema":
			n = 2
		default:
			return d.Skip(2)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		if n == 1 {
			rf.Type, ok = d.Str()
			return ok
		}
		rf.JsonSchema = new(pb.JSONSchema)
		return d.jsonSchema(rf.JsonSchema)
	})
}

func (d *fastDec) jsonSchema(s *pb.JSONSchema) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "name":
			n = 1
		case "description":
			n = 2
		case "schema":
			n = 3
		case "strict":
			n = 4
		default:
			return d.Skip(3)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			s.Name, ok = d.Str()
		case 2:
			s.Description, ok = d.Str()
		case 3:
			s.Schema, ok = d.structValue(3)
		case 4:
			s.Strict, ok = d.optBool()
		}
		return ok
	})
}

func (d *fastDec) streamOptions(o *pb.StreamOptions) bool {
	var seen jsonscan.Seen
	return d.Object(func(key []byte) bool {
		if string(key) != "include_usage" {
			return d.Skip(2)
		}
		isNull, ok := d.Member(&seen, 1)
		if !ok || isNull {
			return ok
		}
		o.IncludeUsage, ok = d.Bool()
		return ok
	})
}

// toolChoice decodes tool_choice as normalized: "auto" → {"mode":"auto"}, an object without
// "mode" or "named" → {"named":{...}}. The typed shape falls back.
func (d *fastDec) toolChoice() (*pb.ToolChoice, bool) {
	if d.Peek() == '"' {
		s, ok := d.Str()
		return &pb.ToolChoice{Choice: &pb.ToolChoice_Mode{Mode: s}}, ok
	}
	named := new(pb.NamedToolChoice)
	var seen jsonscan.Seen
	ok := d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "type":
			n = 1
		case "function":
			n = 2
		case "mode", "named":
			return false
		default:
			return d.Skip(2)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		if n == 1 {
			named.Type, ok = d.Str()
			return ok
		}
		named.Function = new(pb.FunctionName)
		var fseen jsonscan.Seen
		return d.Object(func(key []byte) bool {
			if string(key) != "name" {
				return d.Skip(3)
			}
			isNull, ok := d.Member(&fseen, 1)
			if !ok || isNull {
				return ok
			}
			named.Function.Name, ok = d.Str()
			return ok
		})
	})
	return &pb.ToolChoice{Choice: &pb.ToolChoice_Named{Named: named}}, ok
}

// structValue decodes a google.protobuf.Struct (a JSON object; duplicate keys fall back).
func (d *fastDec) structValue(depth int) (*structpb.Struct, bool) {
	if depth > jsonscan.MaxDepth || !d.Eat('{') {
		return nil, false
	}
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for first := true; ; first = false {
		if d.Eat('}') {
			return s, true
		}
		if !first && !d.Eat(',') {
			return nil, false
		}
		k, ok := d.Str()
		if !ok || !d.Eat(':') {
			return nil, false
		}
		if _, dup := s.Fields[k]; dup {
			return nil, false
		}
		v, ok := d.value(depth + 1)
		if !ok {
			return nil, false
		}
		s.Fields[k] = v
	}
}

// value decodes a google.protobuf.Value.
func (d *fastDec) value(depth int) (*structpb.Value, bool) {
	if depth > jsonscan.MaxDepth {
		return nil, false
	}
	switch d.Peek() {
	case '"':
		s, ok := d.Str()
		return structpb.NewStringValue(s), ok
	case '{':
		s, ok := d.structValue(depth)
		return structpb.NewStructValue(s), ok
	case '[':
		l := new(structpb.ListValue)
		ok := d.Array(func() bool {
			v, ok := d.value(depth + 1)
			l.Values = append(l.Values, v)
			return ok
		})
		return structpb.NewListValue(l), ok
	case 't', 'f':
		b, ok := d.Bool()
		return structpb.NewBoolValue(b), ok
	case 'n':
		return structpb.NewNullValue(), d.Literal("null")
	default:
		f, ok := d.Float64()
		return structpb.NewNumberValue(f), ok
	}
}

// fastDecodeEmbedding decodes an embeddings request body into m (reset first); false as for
// fastDecodeChat.
func fastDecodeEmbedding(data []byte, m *pb.CreateEmbeddingRequest) bool {
	m.Reset()
	d := &fastDec{}
	d.Reset(data)
	var seen jsonscan.Seen
	ok := d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "model":
			n = 1
		case "input":
			n = 2
		case "encoding_format":
			n = 3
		case "dimensions":
			n = 4
		case "user":
			n = 5
		default:
			return d.Skip(1)
		}
		isNull, ok := d.Member(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			m.Model, ok = d.Str()
		case 2:
			m.Input, ok = d.embeddingInput()
		case 3:
			m.EncodingFormat, ok = d.Str()
		case 4:
			m.Dimensions, ok = d.optInt32()
		case 5:
			m.User, ok = d.Str()
		}
		return ok
	})
	return ok && d.End()
}

// embeddingInput decodes input as normalized: "s" → texts ["s"]; strings or [] → texts; integers
// → one token list; arrays of integers → token lists. The typed shape and mixtures fall back.
func (d *fastDec) embeddingInput() (*pb.EmbeddingInput, bool) {
	in := new(pb.EmbeddingInput)
	switch d.Peek() {
	case '"':
		s, ok := d.Str()
		in.Texts = []string{s}
		return in, ok
	case '[':
	default:
		return nil, false
	}
	save := d.Offset()
	d.Eat('[')
	first := d.Peek()
	d.Seek(save)
	var ok bool
	switch {
	case first == ']' || first == '"':
		in.Texts, ok = d.strings()
	case first == '-' || ('0' <= first && first <= '9'):
		ids := new(pb.TokenIDs)
		in.Tokens = []*pb.TokenIDs{ids}
		ids.Ids, ok = d.int32s()
	case first == '[':
		ok = d.Array(func() bool {
			ids := new(pb.TokenIDs)
			in.Tokens = append(in.Tokens, ids)
			var ok bool
			ids.Ids, ok = d.int32s()
			return ok
		})
	}
	return in, ok
}

func (d *fastDec) int32s() ([]int32, bool) {
	var out []int32
	ok := d.Array(func() bool {
		v, ok := d.Int32()
		out = append(out, v)
		return ok
	})
	return out, ok
}
