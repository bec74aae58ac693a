package gateway

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/errmap"
)

// The fuzz targets in this file build responses from fuzzed fields and compare the hand-written
// encoders (through codec.Marshal, as the gateway calls them) with encoding/json encoding the
// same value as a plain Go struct that states OpenAI's shape. The comparison is semantic: both
// outputs are decoded into `any` with numbers kept exact, so escaping choices (\u0008 or \b)
// and float spelling (1e-07 or 1e-7) do not matter, but every string, number, null and key does.

// encodeSeeds are strings that exercise escaping: quotes, control characters, HTML, line and
// paragraph separators, invalid and truncated UTF-8, an encoded U+FFFD, NUL, DEL, emoji.
var encodeSeeds = []string{"", "plain", `q"b\s`, "nl\n cr\r tab\t", "\x00\x01\x1f\x7f\b\f", "<html>&", "ls\u2028ps\u2029",
	"a\xffb", "\xe6\x97", "\ufffd", "café 日本 🎉", `{"city":"Paris"}`, "\xed\xa0\x80"}

// fuzzStrings is the list of strings a fuzz input supplies to build a response.
type fuzzStrings [6]string

func (s fuzzStrings) at(i int) string { return s[i%len(s)] }

// optString returns the i-th string when bit i of flags is set, else nil.
func (s fuzzStrings) opt(flags uint32, i int) *string {
	if flags&(1<<i) == 0 {
		return nil
	}
	v := s.at(i)
	return &v
}

// checkSameJSON fails t unless got is valid, single-line JSON in valid UTF-8 that means the same
// as encoding/json's encoding of want.
func checkSameJSON(t *testing.T, got []byte, want any) {
	t.Helper()
	if !utf8.Valid(got) {
		t.Fatalf("output is not valid UTF-8: %q", got)
	}
	if i := bytes.IndexAny(got, "\r\n"); i >= 0 {
		t.Fatalf("raw line break at %d would split the SSE event: %q", i, got)
	}
	js, err := json.Marshal(want)
	if err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	g, err := decodeExact(got)
	if err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	w, err := decodeExact(js)
	if err != nil {
		t.Fatalf("encoding/json output is not JSON: %v", err)
	}
	if reflect.DeepEqual(w, g) { // cmp.Diff is slow; it only explains a difference
		return
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Fatalf("encoder differs from encoding/json (-encoding/json +encoder):\n%s\n encoder: %s\nencoding/json: %s", d, got, js)
	}
}

// exactNumber is a JSON number as an exact rational ("774884040000000" and "7.7488404e+14" are
// the same number; large integers stay exact).
type exactNumber string

// decodeExact decodes JSON into any, with numbers as exactNumber.
func decodeExact(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, &json.SyntaxError{Offset: d.InputOffset()}
	}
	return exactNumbers(v), nil
}

func exactNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(t)); ok {
			return exactNumber(r.RatString())
		}
		return exactNumber("invalid " + t)
	case []any:
		for i := range t {
			t[i] = exactNumbers(t[i])
		}
	case map[string]any:
		for k := range t {
			t[k] = exactNumbers(t[k])
		}
	}
	return v
}

func marshalOK(t *testing.T, v any) []byte {
	t.Helper()
	b, err := newCodec().Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%T): %v", v, err)
	}
	return b
}

// FuzzAppendString compares appendString with encoding/json for any string.
func FuzzAppendString(f *testing.F) {
	for _, s := range encodeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendString(nil, s)
		checkSameJSON(t, got, s)
		if bytes.Contains(got, []byte("\u2028")) || bytes.Contains(got, []byte("\u2029")) {
			t.Fatalf("unescaped line or paragraph separator: %q", got)
		}
	})
}

// The reference shapes, as encoding/json writes them.

type refUsage struct {
	PromptTokens        int32 `json:"prompt_tokens"`
	CompletionTokens    int32 `json:"completion_tokens"`
	TotalTokens         int32 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int32 `json:"cached_tokens"`
		AudioTokens  int32 `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int32 `json:"reasoning_tokens"`
		AudioTokens              int32 `json:"audio_tokens"`
		AcceptedPredictionTokens int32 `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int32 `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

func refUsageOf(u *pb.Usage) *refUsage {
	if u == nil {
		return nil
	}
	r := &refUsage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	r.PromptTokensDetails.CachedTokens = u.GetPromptTokensDetails().GetCachedTokens()
	r.PromptTokensDetails.AudioTokens = u.GetPromptTokensDetails().GetAudioTokens()
	c := u.GetCompletionTokensDetails()
	r.CompletionTokensDetails.ReasoningTokens = c.GetReasoningTokens()
	r.CompletionTokensDetails.AudioTokens = c.GetAudioTokens()
	r.CompletionTokensDetails.AcceptedPredictionTokens = c.GetAcceptedPredictionTokens()
	r.CompletionTokensDetails.RejectedPredictionTokens = c.GetRejectedPredictionTokens()
	return r
}

// fuzzUsage builds a usage from n, with detail objects as flags bits 8 and 9 say; nil without bit 7.
func fuzzUsage(flags uint32, n int32) *pb.Usage {
	if flags&(1<<7) == 0 {
		return nil
	}
	u := &pb.Usage{PromptTokens: n, CompletionTokens: -n, TotalTokens: n ^ 0x5555}
	if flags&(1<<8) != 0 {
		u.PromptTokensDetails = &pb.PromptTokensDetails{CachedTokens: n >> 1, AudioTokens: math.MaxInt32}
	}
	if flags&(1<<9) != 0 {
		u.CompletionTokensDetails = &pb.CompletionTokensDetails{ReasoningTokens: n >> 2, AudioTokens: math.MinInt32, AcceptedPredictionTokens: 1, RejectedPredictionTokens: n}
	}
	return u
}

// nullIfEmpty is how the encoders write finish_reason and system_fingerprint.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type refFunction struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type refToolCall struct {
	ID       string      `json:"id"`
	Type     string      `json:"type"`
	Function refFunction `json:"function"`
}

type refMessage struct {
	Role               string        `json:"role"`
	Content            *string       `json:"content"`
	Refusal            *string       `json:"refusal"`
	ToolCalls          []refToolCall `json:"tool_calls,omitempty"`
	ReasoningContent   *string       `json:"reasoning_content,omitempty"`
	ReasoningSignature string        `json:"reasoning_signature,omitempty"`
}

type refChoice struct {
	Index        int32      `json:"index"`
	Message      refMessage `json:"message"`
	FinishReason *string    `json:"finish_reason"`
	Logprobs     *struct{}  `json:"logprobs"`
}

type refChatCompletion struct {
	ID                string      `json:"id"`
	Object            string      `json:"object"`
	Created           int64       `json:"created"`
	Model             string      `json:"model"`
	Choices           []refChoice `json:"choices"`
	Usage             *refUsage   `json:"usage"`
	SystemFingerprint *string     `json:"system_fingerprint"`
	ServiceTier       string      `json:"service_tier,omitempty"`
}

func refChatCompletionOf(r *pb.CreateChatCompletionResponse) refChatCompletion {
	out := refChatCompletion{ID: r.Id, Object: orDefault(r.Object, "chat.completion"), Created: r.Created, Model: r.Model,
		Choices: []refChoice{}, Usage: refUsageOf(r.Usage), SystemFingerprint: nullIfEmpty(r.SystemFingerprint), ServiceTier: r.ServiceTier}
	for _, c := range r.Choices {
		m := c.GetMessage()
		rm := refMessage{Role: orDefault(m.GetRole(), "assistant"), ReasoningSignature: m.GetReasoningSignature()}
		if m != nil {
			rm.Content, rm.Refusal, rm.ReasoningContent = m.Content, m.Refusal, m.ReasoningContent
		}
		for _, tc := range m.GetToolCalls() {
			rm.ToolCalls = append(rm.ToolCalls, refToolCall{ID: tc.Id, Type: orDefault(tc.Type, "function"),
				Function: refFunction{Name: tc.GetFunction().GetName(), Arguments: tc.GetFunction().GetArguments()}})
		}
		out.Choices = append(out.Choices, refChoice{Index: c.Index, Message: rm, FinishReason: nullIfEmpty(c.FinishReason)})
	}
	return out
}

// FuzzEncodeChatCompletion compares the chat.completion encoder with encoding/json. flags choose
// which optional parts are present (see fuzzStrings.opt and fuzzUsage; bit 10: a nil message,
// bit 11: a second choice, bit 12: tool calls).
func FuzzEncodeChatCompletion(f *testing.F) {
	for i, s := range encodeSeeds {
		f.Add(s, "chatcmpl-1", "gpt-4o", "stop", "", "call_1", int64(1700000000), int32(i), uint32(0xffff)>>(i%16))
	}
	f.Add("hi", "", "", "", "", "", int64(math.MinInt64), int32(math.MaxInt32), uint32(1<<10|1<<11))
	f.Fuzz(func(t *testing.T, s0, s1, s2, s3, s4, s5 string, created int64, n int32, flags uint32) {
		s := fuzzStrings{s0, s1, s2, s3, s4, s5}
		r := &pb.CreateChatCompletionResponse{Id: s.at(1), Object: s.at(4), Created: created, Model: s.at(2),
			Usage: fuzzUsage(flags, n), SystemFingerprint: s.at(3), ServiceTier: s.at(5)}
		msg := &pb.AssistantMessage{Role: s.at(4), Content: s.opt(flags, 0), Refusal: s.opt(flags, 1),
			ReasoningContent: s.opt(flags, 2), ReasoningSignature: s.at(3)}
		if flags&(1<<12) != 0 {
			msg.ToolCalls = []*pb.ToolCall{{Id: s.at(5), Type: s.at(4), Function: &pb.FunctionCall{Name: s.at(2), Arguments: s.at(0)}}, {Id: s.at(1)}}
		}
		if flags&(1<<10) != 0 {
			msg = nil
		}
		r.Choices = []*pb.Choice{{Index: n, Message: msg, FinishReason: s.at(3)}}
		if flags&(1<<11) != 0 {
			r.Choices = append(r.Choices, &pb.Choice{Index: -n, Message: &pb.AssistantMessage{Content: proto.String(s.at(1))}})
		}
		checkSameJSON(t, marshalOK(t, r), refChatCompletionOf(r))
	})
}

type refFunctionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type refToolCallDelta struct {
	Index    int32            `json:"index"`
	ID       string           `json:"id,omitempty"`
	Type     string           `json:"type,omitempty"`
	Function refFunctionDelta `json:"function"`
}

type refDelta struct {
	Role               string             `json:"role,omitempty"`
	Content            *string            `json:"content,omitempty"`
	ReasoningContent   *string            `json:"reasoning_content,omitempty"`
	ReasoningSignature string             `json:"reasoning_signature,omitempty"`
	Refusal            *string            `json:"refusal,omitempty"`
	ToolCalls          []refToolCallDelta `json:"tool_calls,omitempty"`
}

type refChunkChoice struct {
	Index        int32    `json:"index"`
	Delta        refDelta `json:"delta"`
	FinishReason *string  `json:"finish_reason"`
}

type refChunk struct {
	ID                string           `json:"id"`
	Object            string           `json:"object"`
	Created           int64            `json:"created"`
	Model             string           `json:"model"`
	Choices           []refChunkChoice `json:"choices"`
	SystemFingerprint string           `json:"system_fingerprint,omitempty"`
	Usage             *refUsage        `json:"usage,omitempty"`
}

func refChunkOf(r *pb.StreamChatCompletionResponse) refChunk {
	out := refChunk{ID: r.Id, Object: orDefault(r.Object, "chat.completion.chunk"), Created: r.Created, Model: r.Model,
		Choices: []refChunkChoice{}, SystemFingerprint: r.SystemFingerprint, Usage: refUsageOf(r.Usage)}
	for _, c := range r.Choices {
		d := c.GetDelta()
		rd := refDelta{Role: d.GetRole(), ReasoningSignature: d.GetReasoningSignature()}
		if d != nil {
			rd.Content, rd.ReasoningContent, rd.Refusal = d.Content, d.ReasoningContent, d.Refusal
		}
		for _, tc := range d.GetToolCalls() {
			rd.ToolCalls = append(rd.ToolCalls, refToolCallDelta{Index: tc.Index, ID: tc.Id, Type: tc.Type,
				Function: refFunctionDelta{Name: tc.GetFunction().GetName(), Arguments: tc.GetFunction().GetArguments()}})
		}
		out.Choices = append(out.Choices, refChunkChoice{Index: c.Index, Delta: rd, FinishReason: nullIfEmpty(c.FinishReason)})
	}
	return out
}

// FuzzEncodeChunk compares the chat.completion.chunk encoder, with its SSE framing, with
// encoding/json. flags as for FuzzEncodeChatCompletion (bit 10: a nil delta, bit 11: no
// choices, bit 12: tool call deltas).
func FuzzEncodeChunk(f *testing.F) {
	for i, s := range encodeSeeds {
		f.Add(s, "chatcmpl-1", "gpt-4o", "", "assistant", "call_1", int64(1700000000), int32(i), uint32(0xffff)>>(i%16))
	}
	f.Fuzz(func(t *testing.T, s0, s1, s2, s3, s4, s5 string, created int64, n int32, flags uint32) {
		s := fuzzStrings{s0, s1, s2, s3, s4, s5}
		r := &pb.StreamChatCompletionResponse{Id: s.at(1), Object: s.at(5), Created: created, Model: s.at(2),
			Usage: fuzzUsage(flags, n), SystemFingerprint: s.at(3)}
		d := &pb.Delta{Role: s.at(4), Content: s.opt(flags, 0), ReasoningContent: s.opt(flags, 1),
			ReasoningSignature: s.at(5), Refusal: s.opt(flags, 2)}
		if flags&(1<<12) != 0 {
			d.ToolCalls = []*pb.ToolCallDelta{{Index: n, Id: s.at(5), Type: s.at(4), Function: &pb.FunctionCall{Name: s.at(2), Arguments: s.at(0)}}, {Index: -1}}
		}
		if flags&(1<<10) != 0 {
			d = nil
		}
		if flags&(1<<11) == 0 {
			r.Choices = []*pb.ChunkChoice{{Index: n, Delta: d, FinishReason: s.at(3)}}
		}
		got := marshalOK(t, map[string]any{"result": r})
		body, ok := bytes.CutPrefix(got, []byte(ssePrefix))
		if !ok {
			t.Fatalf("stream event without %q: %q", ssePrefix, got)
		}
		checkSameJSON(t, body, refChunkOf(r))
	})
}

type refEmbedding struct {
	Object    string `json:"object"`
	Index     int32  `json:"index"`
	Embedding any    `json:"embedding"` // []float32, or the base64 string of the bytes
}

type refEmbeddings struct {
	Object string         `json:"object"`
	Data   []refEmbedding `json:"data"`
	Model  string         `json:"model"`
	Usage  struct {
		PromptTokens int32 `json:"prompt_tokens"`
		TotalTokens  int32 `json:"total_tokens"`
	} `json:"usage"`
}

// finite is the encoder's rule for values JSON cannot carry: NaN and infinities are written as 0.
func finite(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, f := range v {
		if !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) {
			out[i] = f
		}
	}
	return out
}

func refEmbeddingsOf(r *pb.CreateEmbeddingResponse) refEmbeddings {
	out := refEmbeddings{Object: orDefault(r.Object, "list"), Data: []refEmbedding{}, Model: r.Model}
	out.Usage.PromptTokens, out.Usage.TotalTokens = r.GetUsage().GetPromptTokens(), r.GetUsage().GetTotalTokens()
	for _, e := range r.Data {
		re := refEmbedding{Object: orDefault(e.Object, "embedding"), Index: e.Index, Embedding: finite(e.Embedding)}
		if len(e.EmbeddingBytes) > 0 {
			re.Embedding = e.EmbeddingBytes // encoding/json writes []byte as base64
		}
		out.Data = append(out.Data, re)
	}
	return out
}

// FuzzEncodeEmbeddings compares the embeddings encoder with encoding/json. vec is read as
// little-endian float32s (so NaN, infinities, subnormals and -0 occur); with asBytes it is
// also sent as embedding_bytes (base64).
func FuzzEncodeEmbeddings(f *testing.F) {
	le := func(fs ...float32) []byte {
		b := make([]byte, 0, 4*len(fs))
		for _, v := range fs {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		return b
	}
	f.Add("text-embedding-3-small", "", le(0.1, -2, 1e-7, float32(math.NaN()), float32(math.Inf(-1)), math.MaxFloat32, math.SmallestNonzeroFloat32), false, int32(3))
	f.Add("e\u2028", "list", le(1, 2), true, int32(-1))
	f.Fuzz(func(t *testing.T, model, object string, vec []byte, asBytes bool, n int32) {
		floats := make([]float32, len(vec)/4)
		for i := range floats {
			floats[i] = math.Float32frombits(binary.LittleEndian.Uint32(vec[4*i:]))
		}
		r := &pb.CreateEmbeddingResponse{Object: object, Model: model, Usage: &pb.EmbeddingUsage{PromptTokens: n, TotalTokens: n * 2},
			Data: []*pb.Embedding{{Object: object, Index: n, Embedding: floats}, {Index: 1}}}
		if asBytes {
			r.Data[0].EmbeddingBytes = vec
		}
		checkSameJSON(t, marshalOK(t, r), refEmbeddingsOf(r))
	})
}

type refModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	Target  string `json:"target,omitempty"`
}

// FuzzEncodeModels compares the model and model list encoders with encoding/json.
func FuzzEncodeModels(f *testing.F) {
	for _, s := range encodeSeeds {
		f.Add("openai/gpt-4o", s, "", "switchyard", int64(1700000000))
	}
	f.Fuzz(func(t *testing.T, id, object, target, owner string, created int64) {
		m := &pb.Model{Id: id, Object: object, Created: created, OwnedBy: owner, Target: target}
		ref := refModel{ID: id, Object: orDefault(object, "model"), Created: created, OwnedBy: owner, Target: target}
		checkSameJSON(t, marshalOK(t, m), ref)
		list := &pb.ListModelsResponse{Object: target, Data: []*pb.Model{m, {}}}
		refList := struct {
			Object string     `json:"object"`
			Data   []refModel `json:"data"`
		}{orDefault(target, "list"), []refModel{ref, {Object: "model"}}}
		checkSameJSON(t, marshalOK(t, list), refList)
		checkSameJSON(t, marshalOK(t, &pb.ListModelsResponse{}), map[string]any{"object": "list", "data": []any{}})
	})
}

// FuzzEncodeStreamError compares the stream error event (a gRPC status mapped by errmap, as the
// gateway sends it after the stream started) with encoding/json of errmap's OpenAI error body.
// With info, the status carries Switchyard's ErrorInfo with the fuzzed metadata.
func FuzzEncodeStreamError(f *testing.F) {
	for _, s := range encodeSeeds {
		f.Add(uint32(codes.InvalidArgument), s, "INVALID_ARGUMENT", "invalid_request_error", "messages[0].content", "", "400", true)
	}
	f.Add(uint32(codes.Unavailable), "upstream\nbroke", "", "", "", "", "", false)
	f.Fuzz(func(t *testing.T, code uint32, msg, reason, typ, param, ecode, httpStatus string, info bool) {
		st := status.New(codes.Code(code%20), msg)
		if info {
			md := map[string]string{errmap.MetaType: typ, errmap.MetaParam: param, errmap.MetaCode: ecode, errmap.MetaHTTPStatus: httpStatus}
			if d, err := st.WithDetails(&errdetails.ErrorInfo{Domain: errmap.Domain, Reason: reason, Metadata: md}); err == nil {
				st = d
			}
		}
		got := marshalOK(t, map[string]proto.Message{"error": st.Proto()})
		body, ok := bytes.CutPrefix(got, []byte(ssePrefix))
		if !ok {
			t.Fatalf("stream event without %q: %q", ssePrefix, got)
		}
		checkSameJSON(t, body, errmap.FromStatus(status.FromProto(st.Proto())).Body)
	})
}
