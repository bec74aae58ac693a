package gateway

import (
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
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

// maxFastDepth bounds the nesting the fast decoder follows; deeper bodies fall back.
const maxFastDepth = 64

type fastDec struct {
	b []byte
	i int
}

func (d *fastDec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\n', '\r', '\t':
			d.i++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte (0 at the end).
func (d *fastDec) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// eat consumes c if it is the next byte after whitespace.
func (d *fastDec) eat(c byte) bool {
	if d.peek() == c {
		d.i++
		return true
	}
	return false
}

// literal consumes the literal lit (true, false, null), which must end at a delimiter.
func (d *fastDec) literal(lit string) bool {
	j := d.i + len(lit)
	if j > len(d.b) || string(d.b[d.i:j]) != lit || (j < len(d.b) && isNotDelim(d.b[j])) {
		return false
	}
	d.i = j
	return true
}

func isNotDelim(c byte) bool {
	return c == '-' || c == '+' || c == '.' || c == '_' ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// null consumes a null value if one is next.
func (d *fastDec) null() bool {
	if d.peek() == 'n' {
		return d.literal("null")
	}
	return false
}

// objectKey reads the next key of an object and its colon. first says whether this is the first
// key (the '{' is consumed by the caller). It returns done at the closing '}'. A key with an
// escape, upper case or a leading '[' (extension syntax) fails: protojson might match it to a
// field by its JSON name or treat it specially.
func (d *fastDec) objectKey(first bool) (key []byte, done, ok bool) {
	c := d.peek()
	if c == '}' {
		d.i++
		return nil, true, true
	}
	if !first {
		if c != ',' {
			return nil, false, false
		}
		d.i++
		c = d.peek()
	}
	if c != '"' {
		return nil, false, false
	}
	start := d.i + 1
	j := start
	for ; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			break
		}
		if c < 0x20 || c == '\\' || c >= 0x80 || ('A' <= c && c <= 'Z') {
			return nil, false, false
		}
	}
	if j >= len(d.b) || (j > start && d.b[start] == '[') {
		return nil, false, false
	}
	d.i = j + 1
	if !d.eat(':') {
		return nil, false, false
	}
	return d.b[start:j], false, true
}

// str reads a JSON string value.
func (d *fastDec) str() (string, bool) {
	if d.peek() != '"' {
		return "", false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			d.i = j + 1
			return string(d.b[start:j]), true
		case c == '\\' || c >= 0x80:
			return d.strSlow(start)
		case c < 0x20:
			return "", false
		}
	}
	return "", false
}

// strSlow decodes a string with escapes or non-ASCII text from start (after the quote), the way
// protojson does; lone or mismatched surrogate escapes and invalid UTF-8 fail.
func (d *fastDec) strSlow(start int) (string, bool) {
	out := make([]byte, 0, 32)
	j := start
	for j < len(d.b) {
		c := d.b[j]
		switch {
		case c == '"':
			d.i = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c < 0x80 && c != '\\':
			out = append(out, c)
			j++
		case c >= 0x80:
			r, n := utf8.DecodeRune(d.b[j:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			out = append(out, d.b[j:j+n]...)
			j += n
		default: // backslash
			if j+1 >= len(d.b) {
				return "", false
			}
			switch e := d.b[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(d.b, j+2)
				if !ok {
					return "", false
				}
				j += 6
				if r >= 0xD800 && r <= 0xDFFF {
					if r > 0xDBFF || j+1 >= len(d.b) || d.b[j] != '\\' || d.b[j+1] != 'u' {
						return "", false
					}
					lo, ok := hex4(d.b, j+2)
					if !ok || lo < 0xDC00 || lo > 0xDFFF {
						return "", false
					}
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					j += 6
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			j += 2
		}
	}
	return "", false
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads a JSON number and reports whether it has no fraction or exponent.
func (d *fastDec) number() (raw []byte, integer, ok bool) {
	d.ws()
	j := d.i
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	switch {
	case j < len(d.b) && d.b[j] == '0':
		j++
	case j < len(d.b) && '1' <= d.b[j] && d.b[j] <= '9':
		for j < len(d.b) && '0' <= d.b[j] && d.b[j] <= '9' {
			j++
		}
	default:
		return nil, false, false
	}
	integer = true
	if j < len(d.b) && d.b[j] == '.' {
		integer = false
		j++
		k := j
		for j < len(d.b) && '0' <= d.b[j] && d.b[j] <= '9' {
			j++
		}
		if j == k {
			return nil, false, false
		}
	}
	if j < len(d.b) && (d.b[j] == 'e' || d.b[j] == 'E') {
		integer = false
		j++
		if j < len(d.b) && (d.b[j] == '+' || d.b[j] == '-') {
			j++
		}
		k := j
		for j < len(d.b) && '0' <= d.b[j] && d.b[j] <= '9' {
			j++
		}
		if j == k {
			return nil, false, false
		}
	}
	if j < len(d.b) && isNotDelim(d.b[j]) {
		return nil, false, false
	}
	raw = d.b[d.i:j]
	d.i = j
	return raw, integer, true
}

func (d *fastDec) double() (float64, bool) {
	raw, _, ok := d.number()
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// integer reads an integer written without fraction or exponent (protojson also takes 1.0, 1e2
// and "1"; those fall back).
func (d *fastDec) integer(bits int) (int64, bool) {
	raw, integer, ok := d.number()
	if !ok || !integer {
		return 0, false
	}
	n, err := strconv.ParseInt(string(raw), 10, bits)
	return n, err == nil
}

func (d *fastDec) int32() (int32, bool) {
	n, ok := d.integer(32)
	return int32(n), ok
}

func (d *fastDec) boolean() (bool, bool) {
	switch d.peek() {
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	}
	return false, false
}

// skip consumes any JSON value (an unknown field's), checking it as strictly as protojson does.
func (d *fastDec) skip(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	switch d.peek() {
	case '"':
		_, ok := d.str()
		return ok
	case '{':
		d.i++
		for first := true; ; first = false {
			if d.peek() == '}' {
				d.i++
				return true
			}
			if !first && !d.eat(',') {
				return false
			}
			if _, ok := d.str(); !ok || !d.eat(':') || !d.skip(depth+1) {
				return false
			}
		}
	case '[':
		d.i++
		for first := true; ; first = false {
			if d.peek() == ']' {
				d.i++
				return true
			}
			if !first && !d.eat(',') {
				return false
			}
			if !d.skip(depth + 1) {
				return false
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	default:
		_, _, ok := d.number()
		return ok
	}
}

// fields tracks the field numbers seen in one object, for protojson's duplicate-field rule.
type fields uint64

func (s *fields) see(n int) bool {
	bit := fields(1) << n
	if *s&bit != 0 {
		return false
	}
	*s |= bit
	return true
}

// field starts a known field: it rejects a duplicate and reports whether the value is null (then
// consumed; protojson leaves the field unset).
func (d *fastDec) field(seen *fields, n int) (isNull, ok bool) {
	if !seen.see(n) {
		return false, false
	}
	if d.null() {
		return true, true
	}
	return false, d.i < len(d.b)
}

// array runs elem for each element of an array.
func (d *fastDec) array(elem func() bool) bool {
	if !d.eat('[') {
		return false
	}
	for first := true; ; first = false {
		if d.peek() == ']' {
			d.i++
			return true
		}
		if !first && !d.eat(',') {
			return false
		}
		if !elem() {
			return false
		}
	}
}

// object runs fn for each key of an object; fn consumes the value.
func (d *fastDec) object(fn func(key []byte) bool) bool {
	if !d.eat('{') {
		return false
	}
	for first := true; ; first = false {
		key, done, ok := d.objectKey(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		if !fn(key) {
			return false
		}
	}
}

// end reports whether only whitespace is left.
func (d *fastDec) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// fastDecodeChat decodes a chat completion request body into m (reset first). false means the
// general path must decide; m is then in an unspecified state.
func fastDecodeChat(data []byte, m *pb.CreateChatCompletionRequest) bool {
	m.Reset()
	d := &fastDec{b: data}
	var seen fields
	ok := d.object(func(key []byte) bool {
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
			return d.skip(1)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			m.Model, ok = d.str()
		case 2:
			ok = d.array(func() bool {
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
			if d.peek() == '"' {
				var s string
				s, ok = d.str()
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
			v, ok = d.integer(64)
			m.Seed = &v
		case 11:
			m.N, ok = d.optInt32()
		case 12:
			m.ResponseFormat = new(pb.ResponseFormat)
			ok = d.responseFormat(m.ResponseFormat)
		case 13:
			m.User, ok = d.str()
		case 14:
			m.Stream, ok = d.boolean()
		case 15:
			m.StreamOptions = new(pb.StreamOptions)
			ok = d.streamOptions(m.StreamOptions)
		case 16:
			ok = d.array(func() bool {
				t := new(pb.Tool)
				m.Tools = append(m.Tools, t)
				return d.tool(t)
			})
		case 17:
			m.ToolChoice, ok = d.toolChoice()
		case 18:
			var v bool
			v, ok = d.boolean()
			m.ParallelToolCalls = &v
		case 19:
			m.ReasoningEffort, ok = d.str()
		case 20:
			m.SessionId, ok = d.str()
		}
		return ok
	})
	return ok && d.end()
}

func (d *fastDec) optDouble() (*float64, bool) {
	v, ok := d.double()
	return &v, ok
}

func (d *fastDec) optInt32() (*int32, bool) {
	v, ok := d.int32()
	return &v, ok
}

func (d *fastDec) optBool() (*bool, bool) {
	v, ok := d.boolean()
	return &v, ok
}

// strings reads an array of strings (null elements fail, as in protojson).
func (d *fastDec) strings() ([]string, bool) {
	var out []string
	ok := d.array(func() bool {
		s, ok := d.str()
		out = append(out, s)
		return ok
	})
	return out, ok
}

func (d *fastDec) chatMessage(m *pb.ChatMessage) bool {
	var seen fields
	return d.object(func(key []byte) bool {
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
			return d.skip(2)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			m.Role, ok = d.str()
		case 2: // normalized: "s" → {"text":"s"}, [...] → {"parts":{"parts":[...]}}
			switch d.peek() {
			case '"':
				var s string
				s, ok = d.str()
				m.Content = &pb.MessageContent{Content: &pb.MessageContent_Text{Text: s}}
			case '[':
				parts := new(pb.ContentParts)
				m.Content = &pb.MessageContent{Content: &pb.MessageContent_Parts{Parts: parts}}
				ok = d.array(func() bool {
					p := new(pb.ContentPart)
					parts.Parts = append(parts.Parts, p)
					return d.contentPart(p)
				})
			default:
				return false
			}
		case 3:
			m.Name, ok = d.str()
		case 4:
			ok = d.array(func() bool {
				tc := new(pb.ToolCall)
				m.ToolCalls = append(m.ToolCalls, tc)
				return d.toolCall(tc)
			})
		case 5:
			m.ToolCallId, ok = d.str()
		case 6:
			m.ReasoningContent, ok = d.str()
		case 7:
			m.ReasoningSignature, ok = d.str()
		}
		return ok
	})
}

func (d *fastDec) contentPart(p *pb.ContentPart) bool {
	var seen fields
	return d.object(func(key []byte) bool {
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
			return d.skip(5)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			p.Type, ok = d.str()
		case 2:
			p.Text, ok = d.str()
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
	var seen fields
	return d.object(func(key []byte) bool {
		var n int
		var v *string
		switch string(key) {
		case a:
			n, v = 1, va
		case b:
			n, v = 2, vb
		default:
			return d.skip(6)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		*v, ok = d.str()
		return ok
	})
}

func (d *fastDec) file(f *pb.File) bool {
	var seen fields
	return d.object(func(key []byte) bool {
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
			return d.skip(6)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		*v, ok = d.str()
		return ok
	})
}

func (d *fastDec) toolCall(tc *pb.ToolCall) bool {
	var seen fields
	return d.object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "id":
			n = 1
		case "type":
			n = 2
		case "function":
			n = 3
		default:
			return d.skip(4)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			tc.Id, ok = d.str()
		case 2:
			tc.Type, ok = d.str()
		case 3:
			tc.Function = new(pb.FunctionCall)
			ok = d.twoStrings("name", "arguments", &tc.Function.Name, &tc.Function.Arguments)
		}
		return ok
	})
}

func (d *fastDec) tool(t *pb.Tool) bool {
	var seen fields
	return d.object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "type":
			n = 1
		case "function":
			n = 2
		default:
			return d.skip(3)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		if n == 1 {
			t.Type, ok = d.str()
			return ok
		}
		t.Function = new(pb.FunctionDefinition)
		return d.functionDefinition(t.Function)
	})
}

func (d *fastDec) functionDefinition(f *pb.FunctionDefinition) bool {
	var seen fields
	return d.object(func(key []byte) bool {
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
			return d.skip(4)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			f.Name, ok = d.str()
		case 2:
			f.Description, ok = d.str()
		case 3:
			f.Parameters, ok = d.structValue(4)
		case 4:
			f.Strict, ok = d.optBool()
		}
		return ok
	})
}

func (d *fastDec) responseFormat(rf *pb.ResponseFormat) bool {
	var seen fields
	return d.object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "type":
			n = 1
		case "json_schema":
			n = 2
		default:
			return d.skip(2)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		if n == 1 {
			rf.Type, ok = d.str()
			return ok
		}
		rf.JsonSchema = new(pb.JSONSchema)
		return d.jsonSchema(rf.JsonSchema)
	})
}

func (d *fastDec) jsonSchema(s *pb.JSONSchema) bool {
	var seen fields
	return d.object(func(key []byte) bool {
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
			return d.skip(3)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			s.Name, ok = d.str()
		case 2:
			s.Description, ok = d.str()
		case 3:
			s.Schema, ok = d.structValue(3)
		case 4:
			s.Strict, ok = d.optBool()
		}
		return ok
	})
}

func (d *fastDec) streamOptions(o *pb.StreamOptions) bool {
	var seen fields
	return d.object(func(key []byte) bool {
		if string(key) != "include_usage" {
			return d.skip(2)
		}
		isNull, ok := d.field(&seen, 1)
		if !ok || isNull {
			return ok
		}
		o.IncludeUsage, ok = d.boolean()
		return ok
	})
}

// toolChoice decodes tool_choice as normalized: "auto" → {"mode":"auto"}, an object without
// "mode" or "named" → {"named":{...}}. The typed shape falls back.
func (d *fastDec) toolChoice() (*pb.ToolChoice, bool) {
	if d.peek() == '"' {
		s, ok := d.str()
		return &pb.ToolChoice{Choice: &pb.ToolChoice_Mode{Mode: s}}, ok
	}
	named := new(pb.NamedToolChoice)
	var seen fields
	ok := d.object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "type":
			n = 1
		case "function":
			n = 2
		case "mode", "named":
			return false
		default:
			return d.skip(2)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		if n == 1 {
			named.Type, ok = d.str()
			return ok
		}
		named.Function = new(pb.FunctionName)
		var fseen fields
		return d.object(func(key []byte) bool {
			if string(key) != "name" {
				return d.skip(3)
			}
			isNull, ok := d.field(&fseen, 1)
			if !ok || isNull {
				return ok
			}
			named.Function.Name, ok = d.str()
			return ok
		})
	})
	return &pb.ToolChoice{Choice: &pb.ToolChoice_Named{Named: named}}, ok
}

// structValue decodes a google.protobuf.Struct (a JSON object; duplicate keys fall back).
func (d *fastDec) structValue(depth int) (*structpb.Struct, bool) {
	if depth > maxFastDepth || d.peek() != '{' {
		return nil, false
	}
	d.i++
	s := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for first := true; ; first = false {
		if d.peek() == '}' {
			d.i++
			return s, true
		}
		if !first && !d.eat(',') {
			return nil, false
		}
		k, ok := d.str()
		if !ok || !d.eat(':') {
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
	if depth > maxFastDepth {
		return nil, false
	}
	switch d.peek() {
	case '"':
		s, ok := d.str()
		return structpb.NewStringValue(s), ok
	case '{':
		s, ok := d.structValue(depth)
		return structpb.NewStructValue(s), ok
	case '[':
		l := new(structpb.ListValue)
		ok := d.array(func() bool {
			v, ok := d.value(depth + 1)
			l.Values = append(l.Values, v)
			return ok
		})
		return structpb.NewListValue(l), ok
	case 't', 'f':
		b, ok := d.boolean()
		return structpb.NewBoolValue(b), ok
	case 'n':
		return structpb.NewNullValue(), d.literal("null")
	default:
		f, ok := d.double()
		return structpb.NewNumberValue(f), ok
	}
}

// fastDecodeEmbedding decodes an embeddings request body into m (reset first); false as for
// fastDecodeChat.
func fastDecodeEmbedding(data []byte, m *pb.CreateEmbeddingRequest) bool {
	m.Reset()
	d := &fastDec{b: data}
	var seen fields
	ok := d.object(func(key []byte) bool {
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
			return d.skip(1)
		}
		isNull, ok := d.field(&seen, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			m.Model, ok = d.str()
		case 2:
			m.Input, ok = d.embeddingInput()
		case 3:
			m.EncodingFormat, ok = d.str()
		case 4:
			m.Dimensions, ok = d.optInt32()
		case 5:
			m.User, ok = d.str()
		}
		return ok
	})
	return ok && d.end()
}

// embeddingInput decodes input as normalized: "s" → texts ["s"]; strings or [] → texts; integers
// → one token list; arrays of integers → token lists. The typed shape and mixtures fall back.
func (d *fastDec) embeddingInput() (*pb.EmbeddingInput, bool) {
	in := new(pb.EmbeddingInput)
	switch d.peek() {
	case '"':
		s, ok := d.str()
		in.Texts = []string{s}
		return in, ok
	case '[':
	default:
		return nil, false
	}
	save := d.i
	d.i++
	first := d.peek()
	d.i = save
	var ok bool
	switch {
	case first == ']' || first == '"':
		in.Texts, ok = d.strings()
	case first == '-' || ('0' <= first && first <= '9'):
		ids := new(pb.TokenIDs)
		in.Tokens = []*pb.TokenIDs{ids}
		ids.Ids, ok = d.int32s()
	case first == '[':
		ok = d.array(func() bool {
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
	ok := d.array(func() bool {
		v, ok := d.int32()
		out = append(out, v)
		return ok
	})
	return out, ok
}
