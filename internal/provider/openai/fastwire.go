package openai

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/switchyard/switchyard/internal/jsonscan"
)

// The hot wire paths without encoding/json's reflection: appendChatRequest writes a chatRequest
// as the encoder of wireutil.PostJSON would (HTML characters unescaped, a final newline), and
// fastChunk and fastResponse decode stream events and answers. Each covers the shapes OpenAI and
// compatible servers send and declines (returns false) on anything else: an upper-case, escaped or
// repeated key (encoding/json folds case and lets the last repeat win), a type it would convert or
// reject, an "error" member, malformed JSON. The caller then takes the encoding/json path, so the
// result is always encoding/json's; FuzzFastWire checks that what the fast paths accept they
// decode and encode identically.

// --- decoding ---------------------------------------------------------------------------------

type wireDec struct{ jsonscan.Scanner }

func (d *wireDec) optStr() (*string, bool) {
	v, ok := d.Str()
	return &v, ok
}

// fastChunk decodes a stream event into w (which must be zero). prev, when not nil, is the
// stream's previous event: its id, model and system_fingerprint strings are reused when they
// repeat, as they do on every event of a stream.
func fastChunk(data []byte, w *chunk, prev *chunk) bool {
	if prev == nil {
		prev = &chunk{}
	}
	d := &wireDec{}
	d.Reset(data)
	var s jsonscan.Seen
	ok := d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "id":
			n = 1
		case "created":
			n = 2
		case "model":
			n = 3
		case "choices":
			n = 4
		case "usage":
			n = 5
		case "system_fingerprint":
			n = 6
		case "error":
			return false
		default:
			return d.Skip(1)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			w.ID, ok = d.StrOr(prev.ID)
		case 2:
			w.Created, ok = d.Int(64)
		case 3:
			w.Model, ok = d.StrOr(prev.Model)
		case 4:
			w.Choices = make([]chunkChoice, 0, 1)
			ok = d.Array(func() bool {
				w.Choices = append(w.Choices, chunkChoice{})
				return d.chunkChoice(&w.Choices[len(w.Choices)-1])
			})
		case 5:
			w.Usage = new(usage)
			ok = d.usage(w.Usage)
		case 6:
			w.SystemFingerprint, ok = d.StrOr(prev.SystemFingerprint)
		}
		return ok
	})
	return ok && d.End()
}

func (d *wireDec) chunkChoice(c *chunkChoice) bool {
	var s jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "index":
			n = 1
		case "delta":
			n = 2
		case "finish_reason":
			n = 3
		default:
			return d.Skip(3)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			c.Index, ok = d.Int32()
		case 2:
			ok = d.delta(&c.Delta)
		case 3:
			c.FinishReason, ok = d.optStr()
		}
		return ok
	})
}

func (d *wireDec) delta(m *delta) bool {
	var s jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "role":
			n = 1
		case "content":
			n = 2
		case "refusal":
			n = 3
		case "reasoning_content":
			n = 4
		case "reasoning":
			n = 5
		case "tool_calls":
			n = 6
		default:
			return d.Skip(4)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			m.Role, ok = d.Str()
		case 2:
			m.Content, ok = d.optStr()
		case 3:
			m.Refusal, ok = d.optStr()
		case 4:
			m.ReasoningContent, ok = d.optStr()
		case 5:
			m.Reasoning, ok = d.optStr()
		case 6:
			m.ToolCalls = make([]toolCallDelta, 0, 1)
			ok = d.Array(func() bool {
				m.ToolCalls = append(m.ToolCalls, toolCallDelta{})
				tc := &m.ToolCalls[len(m.ToolCalls)-1]
				return d.toolCall(&tc.Index, &tc.ID, &tc.Function.Name, &tc.Function.Arguments)
			})
		}
		return ok
	})
}

// toolCall decodes a tool call or a tool call delta (index is nil for a tool call; "type" is
// skipped for a delta).
func (d *wireDec) toolCall(index *int32, id, name, args *string) bool {
	var s jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "index":
			if index == nil {
				return d.Skip(5)
			}
			n = 1
		case "id":
			n = 2
		case "function":
			n = 3
		default:
			return d.Skip(5)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			*index, ok = d.Int32()
		case 2:
			*id, ok = d.Str()
		case 3:
			var fs jsonscan.Seen
			ok = d.Object(func(key []byte) bool {
				var n int
				var v *string
				switch string(key) {
				case "name":
					n, v = 1, name
				case "arguments":
					n, v = 2, args
				default:
					return d.Skip(6)
				}
				isNull, ok := d.Member(&fs, n)
				if !ok || isNull {
					return ok
				}
				*v, ok = d.Str()
				return ok
			})
		}
		return ok
	})
}

func (d *wireDec) usage(u *usage) bool {
	var s jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "prompt_tokens":
			n = 1
		case "completion_tokens":
			n = 2
		case "total_tokens":
			n = 3
		case "prompt_tokens_details":
			n = 4
		case "completion_tokens_details":
			n = 5
		default:
			return d.Skip(3)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			u.PromptTokens, ok = d.Int32()
		case 2:
			u.CompletionTokens, ok = d.Int32()
		case 3:
			u.TotalTokens, ok = d.Int32()
		case 4:
			u.PromptTokensDetails = &struct {
				CachedTokens int32 `json:"cached_tokens"`
				AudioTokens  int32 `json:"audio_tokens"`
			}{}
			p := u.PromptTokensDetails
			ok = d.int32s([]string{"cached_tokens", "audio_tokens"}, &p.CachedTokens, &p.AudioTokens)
		case 5:
			u.CompletionTokensDetails = &struct {
				ReasoningTokens          int32 `json:"reasoning_tokens"`
				AudioTokens              int32 `json:"audio_tokens"`
				AcceptedPredictionTokens int32 `json:"accepted_prediction_tokens"`
				RejectedPredictionTokens int32 `json:"rejected_prediction_tokens"`
			}{}
			c := u.CompletionTokensDetails
			ok = d.int32s(completionDetailKeys, &c.ReasoningTokens, &c.AudioTokens, &c.AcceptedPredictionTokens, &c.RejectedPredictionTokens)
		}
		return ok
	})
}

var completionDetailKeys = []string{"reasoning_tokens", "audio_tokens", "accepted_prediction_tokens", "rejected_prediction_tokens"}

// int32s decodes an object of int32 members named keys into vals.
func (d *wireDec) int32s(keys []string, vals ...*int32) bool {
	var s jsonscan.Seen
	return d.Object(func(key []byte) bool {
		for i, k := range keys {
			if string(key) == k {
				isNull, ok := d.Member(&s, i)
				if !ok || isNull {
					return ok
				}
				*vals[i], ok = d.Int32()
				return ok
			}
		}
		return d.Skip(4)
	})
}

// fastResponse decodes a blocking answer into w (which must be zero).
func fastResponse(data []byte, w *chatResponse) bool {
	d := &wireDec{}
	d.Reset(data)
	var s jsonscan.Seen
	ok := d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "id":
			n = 1
		case "created":
			n = 2
		case "model":
			n = 3
		case "choices":
			n = 4
		case "usage":
			n = 5
		case "system_fingerprint":
			n = 6
		case "service_tier":
			n = 7
		case "error":
			return false
		default:
			return d.Skip(1)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			w.ID, ok = d.Str()
		case 2:
			w.Created, ok = d.Int(64)
		case 3:
			w.Model, ok = d.Str()
		case 4:
			w.Choices = make([]choice, 0, 1)
			ok = d.Array(func() bool {
				w.Choices = append(w.Choices, choice{})
				return d.choice(&w.Choices[len(w.Choices)-1])
			})
		case 5:
			w.Usage = new(usage)
			ok = d.usage(w.Usage)
		case 6:
			w.SystemFingerprint, ok = d.Str()
		case 7:
			w.ServiceTier, ok = d.Str()
		}
		return ok
	})
	return ok && d.End()
}

func (d *wireDec) choice(c *choice) bool {
	var s jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "index":
			n = 1
		case "message":
			n = 2
		case "finish_reason":
			n = 3
		default:
			return d.Skip(3)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			c.Index, ok = d.Int32()
		case 2:
			ok = d.responseMessage(&c.Message)
		case 3:
			c.FinishReason, ok = d.Str()
		}
		return ok
	})
}

func (d *wireDec) responseMessage(m *responseMessage) bool {
	var s jsonscan.Seen
	return d.Object(func(key []byte) bool {
		var n int
		switch string(key) {
		case "content":
			n = 1
		case "refusal":
			n = 2
		case "reasoning_content":
			n = 3
		case "reasoning":
			n = 4
		case "tool_calls":
			n = 5
		default:
			return d.Skip(4)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			m.Content, ok = d.optStr()
		case 2:
			m.Refusal, ok = d.optStr()
		case 3:
			m.ReasoningContent, ok = d.optStr()
		case 4:
			m.Reasoning, ok = d.optStr()
		case 5:
			m.ToolCalls = make([]toolCall, 0, 1)
			ok = d.Array(func() bool {
				m.ToolCalls = append(m.ToolCalls, toolCall{})
				tc := &m.ToolCalls[len(m.ToolCalls)-1]
				return d.toolCallWithType(tc)
			})
		}
		return ok
	})
}

// toolCallWithType decodes a complete tool call (with its "type").
func (d *wireDec) toolCallWithType(tc *toolCall) bool {
	var s jsonscan.Seen
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
			return d.Skip(5)
		}
		isNull, ok := d.Member(&s, n)
		if !ok || isNull {
			return ok
		}
		switch n {
		case 1:
			tc.ID, ok = d.Str()
		case 2:
			tc.Type, ok = d.Str()
		case 3:
			var fs jsonscan.Seen
			ok = d.Object(func(key []byte) bool {
				var n int
				var v *string
				switch string(key) {
				case "name":
					n, v = 1, &tc.Function.Name
				case "arguments":
					n, v = 2, &tc.Function.Arguments
				default:
					return d.Skip(6)
				}
				isNull, ok := d.Member(&fs, n)
				if !ok || isNull {
					return ok
				}
				*v, ok = d.Str()
				return ok
			})
		}
		return ok
	})
}

// decodeChunkJSON decodes a stream event, by the fast path when it covers the event (prev as for
// fastChunk).
func decodeChunkJSON(data []byte, w, prev *chunk) error {
	if fastChunk(data, w, prev) {
		return nil
	}
	*w = chunk{}
	return json.Unmarshal(data, w)
}

// decodeResponseJSON decodes a blocking answer, by the fast path when it covers it.
func decodeResponseJSON(data []byte, w *chatResponse) error {
	if fastResponse(data, w) {
		return nil
	}
	*w = chatResponse{}
	return json.Unmarshal(data, w)
}

// --- encoding ---------------------------------------------------------------------------------

// appendChatRequest appends w's JSON as wireutil.PostJSON's encoder writes it, newline included.
// It declines (false) on what that encoder would reject or write differently: a NaN or infinite
// number, a raw schema that is not plain valid JSON, an unexpected dynamic type.
func appendChatRequest(b []byte, w *chatRequest) ([]byte, bool) {
	ok := true
	b = append(b, `{"model":`...)
	b = appendStr(b, w.Model)
	b = append(b, `,"messages":`...)
	if w.Messages == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range w.Messages {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendMessage(b, &w.Messages[i]); !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	if b, ok = appendOptFloat(b, `,"temperature":`, w.Temperature); !ok {
		return b, false
	}
	if b, ok = appendOptFloat(b, `,"top_p":`, w.TopP); !ok {
		return b, false
	}
	b = appendOptInt32(b, `,"max_tokens":`, w.MaxTokens)
	b = appendOptInt32(b, `,"max_completion_tokens":`, w.MaxCompletionTokens)
	if len(w.Stop) > 0 {
		b = append(b, `,"stop":[`...)
		for i, s := range w.Stop {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStr(b, s)
		}
		b = append(b, ']')
	}
	if b, ok = appendOptFloat(b, `,"presence_penalty":`, w.PresencePenalty); !ok {
		return b, false
	}
	if b, ok = appendOptFloat(b, `,"frequency_penalty":`, w.FrequencyPenalty); !ok {
		return b, false
	}
	if w.Seed != nil {
		b = append(b, `,"seed":`...)
		b = strconv.AppendInt(b, *w.Seed, 10)
	}
	b = appendOptInt32(b, `,"n":`, w.N)
	if rf := w.ResponseFormat; rf != nil {
		b = append(b, `,"response_format":{"type":`...)
		b = appendStr(b, rf.Type)
		if js := rf.JSONSchema; js != nil {
			b = append(b, `,"json_schema":{"name":`...)
			b = appendStr(b, js.Name)
			b = appendOmitStr(b, `,"description":`, js.Description)
			if len(js.Schema) > 0 {
				b = append(b, `,"schema":`...)
				if b, ok = appendRaw(b, js.Schema); !ok {
					return b, false
				}
			}
			b = appendOptBool(b, `,"strict":`, js.Strict)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = appendOmitStr(b, `,"user":`, w.User)
	if len(w.Tools) > 0 {
		b = append(b, `,"tools":[`...)
		for i := range w.Tools {
			t := &w.Tools[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"type":`...)
			b = appendStr(b, t.Type)
			b = append(b, `,"function":{"name":`...)
			b = appendStr(b, t.Function.Name)
			b = appendOmitStr(b, `,"description":`, t.Function.Description)
			if len(t.Function.Parameters) > 0 {
				b = append(b, `,"parameters":`...)
				if b, ok = appendRaw(b, t.Function.Parameters); !ok {
					return b, false
				}
			}
			b = appendOptBool(b, `,"strict":`, t.Function.Strict)
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	switch tc := w.ToolChoice.(type) {
	case nil:
	case string:
		b = append(b, `,"tool_choice":`...)
		b = appendStr(b, tc)
	case *namedToolChoice:
		if tc == nil {
			return b, false
		}
		b = append(b, `,"tool_choice":{"type":`...)
		b = appendStr(b, tc.Type)
		b = append(b, `,"function":{"name":`...)
		b = appendStr(b, tc.Function.Name)
		b = append(b, "}}"...)
	default:
		return b, false
	}
	b = appendOptBool(b, `,"parallel_tool_calls":`, w.ParallelToolCalls)
	b = appendOmitStr(b, `,"reasoning_effort":`, w.ReasoningEffort)
	if w.Stream {
		b = append(b, `,"stream":true`...)
	}
	if w.StreamOptions != nil {
		b = append(b, `,"stream_options":{"include_usage":`...)
		b = strconv.AppendBool(b, w.StreamOptions.IncludeUsage)
		b = append(b, '}')
	}
	return append(b, "}\n"...), true
}

func appendMessage(b []byte, m *message) ([]byte, bool) {
	b = append(b, `{"role":`...)
	b = appendStr(b, m.Role)
	b = append(b, `,"content":`...)
	switch c := m.Content.(type) {
	case nil:
		b = append(b, "null"...)
	case string:
		b = appendStr(b, c)
	case []contentPart:
		if c == nil {
			return b, false
		}
		b = append(b, '[')
		for i := range c {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPart(b, &c[i])
		}
		b = append(b, ']')
	default:
		return b, false
	}
	b = appendOmitStr(b, `,"name":`, m.Name)
	if len(m.ToolCalls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for i := range m.ToolCalls {
			tc := &m.ToolCalls[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendStr(b, tc.ID)
			b = append(b, `,"type":`...)
			b = appendStr(b, tc.Type)
			b = append(b, `,"function":{"name":`...)
			b = appendStr(b, tc.Function.Name)
			b = append(b, `,"arguments":`...)
			b = appendStr(b, tc.Function.Arguments)
			b = append(b, "}}"...)
		}
		b = append(b, ']')
	}
	b = appendOmitStr(b, `,"tool_call_id":`, m.ToolCallID)
	return append(b, '}'), true
}

func appendPart(b []byte, p *contentPart) []byte {
	b = append(b, `{"type":`...)
	b = appendStr(b, p.Type)
	if p.Text != nil {
		b = append(b, `,"text":`...)
		b = appendStr(b, *p.Text)
	}
	if u := p.ImageURL; u != nil {
		b = append(b, `,"image_url":{"url":`...)
		b = appendStr(b, u.URL)
		b = appendOmitStr(b, `,"detail":`, u.Detail)
		b = append(b, '}')
	}
	if a := p.InputAudio; a != nil {
		b = append(b, `,"input_audio":{"data":`...)
		b = appendStr(b, a.Data)
		b = append(b, `,"format":`...)
		b = appendStr(b, a.Format)
		b = append(b, '}')
	}
	if f := p.File; f != nil {
		b = append(b, `,"file":{`...)
		n := len(b)
		b = appendOmitStr(b, `,"file_data":`, f.FileData)
		b = appendOmitStr(b, `,"file_id":`, f.FileID)
		b = appendOmitStr(b, `,"filename":`, f.Filename)
		if len(b) > n { // drop the first member's comma
			b = append(b[:n], b[n+1:]...)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendOmitStr(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendStr(append(b, key...), s)
}

func appendOptInt32(b []byte, key string, v *int32) []byte {
	if v == nil {
		return b
	}
	return strconv.AppendInt(append(b, key...), int64(*v), 10)
}

func appendOptBool(b []byte, key string, v *bool) []byte {
	if v == nil {
		return b
	}
	return strconv.AppendBool(append(b, key...), *v)
}

// appendOptFloat writes a float64 like encoding/json (ES6 number formatting); NaN and infinities
// decline (encoding/json rejects them).
func appendOptFloat(b []byte, key string, v *float64) ([]byte, bool) {
	if v == nil {
		return b, true
	}
	f := *v
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	b = append(b, key...)
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 → e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendRaw writes a raw JSON value compacted, as encoding/json writes a json.RawMessage. Only
// values the strict scanner accepts are written; others decline.
func appendRaw(b []byte, raw []byte) ([]byte, bool) {
	var s jsonscan.Scanner
	s.Reset(raw)
	if !s.Skip(1) || !s.End() {
		return b, false
	}
	in := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case in && c == '\\':
			b = append(b, c, raw[i+1])
			i++
			continue
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			continue
		}
		b = append(b, c)
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendStr writes s as a JSON string the way encoding/json does with HTML escaping off: control
// characters escaped (\b \f \n \r \t by name), invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// encodeChatJSON returns the request body for w: the fast encoder's, or encoding/json's when it
// declines (then also its error).
func encodeChatJSON(w *chatRequest) ([]byte, error) {
	if b, ok := appendChatRequest(make([]byte, 0, 1024), w); ok {
		return b, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
