package gateway

import (
	"encoding/base64"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/errmap"
)

// This file holds the hand-written JSON encoders for the responses on the hot path. They write
// OpenAI's exact shapes (protojson cannot: it writes int64 as strings, omits unset optional
// scalars and writes empty lists where OpenAI omits keys) and append into pooled buffers, so an
// answer costs one allocation: the copy handed to the HTTP layer.

// bufPool holds encoding buffers. Buffers that grew past maxPooledBuf are dropped, so one huge
// answer does not pin its memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const maxPooledBuf = 1 << 20

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxPooledBuf {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// encodeWith runs enc on a pooled buffer, prefixed with prefix, and returns a copy of the result.
func encodeWith(prefix string, enc func([]byte) []byte) []byte {
	bp := getBuf()
	b := append((*bp)[:0], prefix...)
	b = enc(b)
	out := make([]byte, len(b))
	copy(out, b)
	*bp = b
	putBuf(bp)
	return out
}

const hexDigits = "0123456789abcdef"

// safeASCII[c] is true for ASCII bytes that appear unescaped inside a JSON string.
var safeASCII = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as a JSON string: quotes and backslashes escaped, control characters as
// \n, \r, \t or \u00XX, U+2028 and U+2029 escaped (as encoding/json does), and each byte of
// invalid UTF-8 replaced by \ufffd.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if safeASCII[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendOptString appends *s as a JSON string, or null when s is nil.
func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendStringOrNull appends s as a JSON string, or null when s is empty.
func appendStringOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

// appendFloat32 appends f in the shortest form that round-trips as a float32. JSON has no NaN or
// infinities; they are written as 0.
func appendFloat32(b []byte, f float32) []byte {
	if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, float64(f), 'g', -1, 32)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// appendHead opens a chat completion or chunk object up to its choices array:
// {"id":…,"object":…,"created":…,"model":…,"choices":[
func appendHead(b []byte, id, object string, created int64, model string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"object":`...)
	b = appendString(b, object)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	return append(b, `,"choices":[`...)
}

// appendChatCompletion appends r as an OpenAI "chat.completion" object.
func appendChatCompletion(b []byte, r *pb.CreateChatCompletionResponse) []byte {
	b = appendHead(b, r.GetId(), orDefault(r.GetObject(), "chat.completion"), r.GetCreated(), r.GetModel())
	for i, c := range r.GetChoices() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(c.GetIndex()), 10)
		b = append(b, `,"message":`...)
		b = appendAssistantMessage(b, c.GetMessage())
		b = append(b, `,"finish_reason":`...)
		b = appendStringOrNull(b, c.GetFinishReason())
		b = append(b, `,"logprobs":null}`...)
	}
	b = append(b, `],"usage":`...)
	b = appendUsage(b, r.GetUsage())
	b = append(b, `,"system_fingerprint":`...)
	b = appendStringOrNull(b, r.GetSystemFingerprint())
	if t := r.GetServiceTier(); t != "" {
		b = append(b, `,"service_tier":`...)
		b = appendString(b, t)
	}
	return append(b, '}')
}

func appendAssistantMessage(b []byte, m *pb.AssistantMessage) []byte {
	b = append(b, `{"role":`...)
	b = appendString(b, orDefault(m.GetRole(), "assistant"))
	b = append(b, `,"content":`...)
	var content, refusal, reasoning *string
	if m != nil {
		content, refusal, reasoning = m.Content, m.Refusal, m.ReasoningContent
	}
	b = appendOptString(b, content)
	b = append(b, `,"refusal":`...)
	b = appendOptString(b, refusal)
	if calls := m.GetToolCalls(); len(calls) > 0 {
		b = append(b, `,"tool_calls":[`...)
		for i, tc := range calls {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendString(b, tc.GetId())
			b = append(b, `,"type":`...)
			b = appendString(b, orDefault(tc.GetType(), "function"))
			b = append(b, `,"function":{"name":`...)
			b = appendString(b, tc.GetFunction().GetName())
			b = append(b, `,"arguments":`...)
			b = appendString(b, tc.GetFunction().GetArguments())
			b = append(b, `}}`...)
		}
		b = append(b, ']')
	}
	if reasoning != nil {
		b = append(b, `,"reasoning_content":`...)
		b = appendString(b, *reasoning)
	}
	if sig := m.GetReasoningSignature(); sig != "" {
		b = append(b, `,"reasoning_signature":`...)
		b = appendString(b, sig)
	}
	return append(b, '}')
}

// appendUsage appends u with both detail objects (zeros when absent), or null when u is nil.
func appendUsage(b []byte, u *pb.Usage) []byte {
	if u == nil {
		return append(b, "null"...)
	}
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.GetPromptTokens()), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.GetCompletionTokens()), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.GetTotalTokens()), 10)
	p := u.GetPromptTokensDetails()
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = strconv.AppendInt(b, int64(p.GetCachedTokens()), 10)
	b = append(b, `,"audio_tokens":`...)
	b = strconv.AppendInt(b, int64(p.GetAudioTokens()), 10)
	c := u.GetCompletionTokensDetails()
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
	b = strconv.AppendInt(b, int64(c.GetReasoningTokens()), 10)
	b = append(b, `,"audio_tokens":`...)
	b = strconv.AppendInt(b, int64(c.GetAudioTokens()), 10)
	b = append(b, `,"accepted_prediction_tokens":`...)
	b = strconv.AppendInt(b, int64(c.GetAcceptedPredictionTokens()), 10)
	b = append(b, `,"rejected_prediction_tokens":`...)
	b = strconv.AppendInt(b, int64(c.GetRejectedPredictionTokens()), 10)
	return append(b, `}}`...)
}

// appendChunk appends r as an OpenAI "chat.completion.chunk" object. choices is always present
// (Dify fails on a chunk without it); usage only when set.
func appendChunk(b []byte, r *pb.StreamChatCompletionResponse) []byte {
	b = appendHead(b, r.GetId(), orDefault(r.GetObject(), "chat.completion.chunk"), r.GetCreated(), r.GetModel())
	for i, c := range r.GetChoices() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(c.GetIndex()), 10)
		b = append(b, `,"delta":`...)
		b = appendDelta(b, c.GetDelta())
		b = append(b, `,"finish_reason":`...)
		b = appendStringOrNull(b, c.GetFinishReason())
		b = append(b, '}')
	}
	b = append(b, ']')
	if fp := r.GetSystemFingerprint(); fp != "" {
		b = append(b, `,"system_fingerprint":`...)
		b = appendString(b, fp)
	}
	if u := r.GetUsage(); u != nil {
		b = append(b, `,"usage":`...)
		b = appendUsage(b, u)
	}
	return append(b, '}')
}

// appendDelta appends d with only the keys that are set. The first key written decides whether a
// comma is needed, so sep tracks it.
func appendDelta(b []byte, d *pb.Delta) []byte {
	b = append(b, '{')
	if d == nil {
		return append(b, '}')
	}
	sep := false
	key := func(b []byte, k string) []byte {
		if sep {
			b = append(b, ',')
		}
		sep = true
		return append(b, k...)
	}
	if d.Role != "" {
		b = key(b, `"role":`)
		b = appendString(b, d.Role)
	}
	if d.Content != nil {
		b = key(b, `"content":`)
		b = appendString(b, *d.Content)
	}
	if d.ReasoningContent != nil {
		b = key(b, `"reasoning_content":`)
		b = appendString(b, *d.ReasoningContent)
	}
	if d.ReasoningSignature != "" {
		b = key(b, `"reasoning_signature":`)
		b = appendString(b, d.ReasoningSignature)
	}
	if d.Refusal != nil {
		b = key(b, `"refusal":`)
		b = appendString(b, *d.Refusal)
	}
	if len(d.ToolCalls) > 0 {
		b = key(b, `"tool_calls":[`)
		for i, tc := range d.ToolCalls {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(tc.GetIndex()), 10)
			if id := tc.GetId(); id != "" {
				b = append(b, `,"id":`...)
				b = appendString(b, id)
			}
			if t := tc.GetType(); t != "" {
				b = append(b, `,"type":`...)
				b = appendString(b, t)
			}
			b = append(b, `,"function":{`...)
			if name := tc.GetFunction().GetName(); name != "" {
				b = append(b, `"name":`...)
				b = appendString(b, name)
				b = append(b, ',')
			}
			b = append(b, `"arguments":`...)
			b = appendString(b, tc.GetFunction().GetArguments())
			b = append(b, `}}`...)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendEmbeddings appends r as an OpenAI embeddings list, data in the order given. A vector in
// embedding_bytes (the client asked for base64) is written as a base64 string.
func appendEmbeddings(b []byte, r *pb.CreateEmbeddingResponse) []byte {
	b = append(b, `{"object":`...)
	b = appendString(b, orDefault(r.GetObject(), "list"))
	b = append(b, `,"data":[`...)
	for i, e := range r.GetData() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":`...)
		b = appendString(b, orDefault(e.GetObject(), "embedding"))
		b = append(b, `,"index":`...)
		b = strconv.AppendInt(b, int64(e.GetIndex()), 10)
		b = append(b, `,"embedding":`...)
		if raw := e.GetEmbeddingBytes(); len(raw) > 0 {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for j, f := range e.GetEmbedding() {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendFloat32(b, f)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	b = appendString(b, r.GetModel())
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(r.GetUsage().GetPromptTokens()), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(r.GetUsage().GetTotalTokens()), 10)
	return append(b, `}}`...)
}

// appendModel appends m as an OpenAI model object; target (Switchyard's alias target) and type
// ("rerank") only when set.
func appendModel(b []byte, m *pb.Model) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, m.GetId())
	b = append(b, `,"object":`...)
	b = appendString(b, orDefault(m.GetObject(), "model"))
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, m.GetCreated(), 10)
	b = append(b, `,"owned_by":`...)
	b = appendString(b, m.GetOwnedBy())
	if t := m.GetTarget(); t != "" {
		b = append(b, `,"target":`...)
		b = appendString(b, t)
	}
	if t := m.GetType(); t != "" {
		b = append(b, `,"type":`...)
		b = appendString(b, t)
	}
	return append(b, '}')
}

func appendModelList(b []byte, r *pb.ListModelsResponse) []byte {
	b = append(b, `{"object":`...)
	b = appendString(b, orDefault(r.GetObject(), "list"))
	b = append(b, `,"data":[`...)
	for i, m := range r.GetData() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendModel(b, m)
	}
	return append(b, `]}`...)
}

// appendError appends e as OpenAI's error body {"error":{"message","type","param","code"}}.
func appendError(b []byte, e errmap.OpenAIErrorDetail) []byte {
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, e.Message)
	b = append(b, `,"type":`...)
	b = appendString(b, e.Type)
	b = append(b, `,"param":`...)
	b = appendOptString(b, e.Param)
	b = append(b, `,"code":`...)
	b = appendOptString(b, e.Code)
	return append(b, `}}`...)
}
