package openai

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchyard/switchyard/internal/jsonscan"
	"github.com/switchyard/switchyard/internal/llm"
)

// wireSeeds are answers and stream events in the shapes upstreams send, and edge cases.
var wireSeeds = []string{
	benchAnswer, benchEvent,
	`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{\"a\":\"\\u00e9\"}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"completion_tokens_details":{"reasoning_tokens":1}}}`,
	`{"choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"r","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}],"usage":{}}`,
	`{"choices":[],"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":2,"audio_tokens":null}},"prompt_filter_results":[{"x":[1,2.5e3,true,false,null]}]}`,
	`{"ID":"upper"}`, `{"id":"a","id":"b"}`, `{"created":1.5}`, `{"created":"1"}`, `{"choices":[{"index":2147483648}]}`,
	`{"choices":[null]}`, `{"choices":{}}`, `{"error":{"message":"m"}}`, `{"error":null,"id":"x"}`, `{"id":"\ud800"}`, `{"id":"\ud83d\ude00é"}`,
	`{"choices":[{"delta":{"content":"a\u0000\n"}}]} `, `{"choices":[{"delta":{"content":5}}]}`, `null`, `[]`, `{"id":"x"}x`, `{"usage":null,"choices":null}`,
	`{"choices":[{"message":{"content":"x","refusal":"no","reasoning_content":"rc"},"finish_reason":"stop","logprobs":null}],"service_tier":"default","system_fingerprint":"fp"}`,
}

// FuzzFastWire checks the adapter's fast decoders against encoding/json: whenever a fast decoder
// accepts an answer or event, encoding/json decodes it without error into the same wire struct
// (slices compared empty-equals-nil, which the conversion to llm types cannot tell apart either).
func FuzzFastWire(f *testing.F) {
	for _, s := range wireSeeds {
		f.Add([]byte(s))
	}
	if sse, err := os.ReadFile("testdata/stream_tool_calls.sse"); err == nil {
		for _, line := range strings.Split(string(sse), "\n") {
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				f.Add([]byte(data))
			}
		}
	}
	opts := cmpopts.EquateEmpty()
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		var fc, jc chunk
		prev := &chunk{ID: "chatcmpl-abc", Model: "m", SystemFingerprint: "fp"}
		if fastChunk(data, &fc, prev) {
			if err := json.Unmarshal(data, &jc); err != nil {
				t.Fatalf("fast chunk decoder accepted %s, encoding/json: %v", data, err)
			}
			if d := cmp.Diff(jc, fc, opts); d != "" {
				t.Fatalf("chunk decoders differ on %s (-json +fast):\n%s", data, d)
			}
		}
		var fr, jr chatResponse
		if fastResponse(data, &fr) {
			if err := json.Unmarshal(data, &jr); err != nil {
				t.Fatalf("fast answer decoder accepted %s, encoding/json: %v", data, err)
			}
			if d := cmp.Diff(jr, fr, opts); d != "" {
				t.Fatalf("answer decoders differ on %s (-json +fast):\n%s", data, d)
			}
		}
		if !bytes.Equal(data, orig) {
			t.Fatal("a decoder changed its input")
		}
	})
}

// FuzzFastEncode checks the fast request encoder against the encoder of wireutil.PostJSON: for
// requests built from the fuzzer's strings, numbers and schema bytes it writes the same bytes
// whenever it does not decline, and it declines only on what encoding/json rejects.
func FuzzFastEncode(f *testing.F) {
	f.Add("hello", "sys <b>&</b>\u2028", []byte(`{"type": "object", "properties": {"id": {"type":"string"}}}`), 0.7, uint16(0))
	f.Add("caf\xe9\x00\t\"\\", "", []byte(` [1, "a b", {"k" : null}] `), 1e-7, uint16(0xffff))
	f.Add("", "x", []byte(`{bad`), math.Inf(1), uint16(0x5555))
	f.Add("日本", "\xed\xa0\xbd", []byte(`"\u00e9"`), 1e21, uint16(0xaaaa))
	f.Fuzz(func(t *testing.T, s1, s2 string, raw []byte, fl float64, bits uint16) {
		on := func(i int) bool { return bits&(1<<i) != 0 }
		req := &llm.ChatRequest{Model: s1, User: s2, ReasoningEffort: s2, LegacyMaxTokensName: on(0)}
		req.Messages = []llm.Message{llm.TextMessage("system", s1), {Role: "user", ContentIsParts: on(1), Content: []llm.Part{
			{Type: llm.PartText, Text: s2}, {Type: llm.PartImageURL, ImageURL: s1, ImageDetail: s2},
			{Type: llm.PartInputAudio, AudioData: s2, AudioFormat: "wav"}, {Type: llm.PartFile, FileData: s1, FileID: s2},
		}}}
		if on(2) {
			req.Messages = append(req.Messages, llm.Message{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: s1, Name: s2, Arguments: s1}}},
				llm.Message{Role: "tool", ToolCallID: s1, Name: s2, Content: []llm.Part{{Type: llm.PartText, Text: s1}}})
		}
		n32 := int32(binary.LittleEndian.Uint16([]byte{byte(bits), byte(bits >> 8)})) - 1000
		if on(3) {
			req.Temperature, req.TopP, req.PresencePenalty, req.FrequencyPenalty = &fl, llm.Ptr(-fl), llm.Ptr(fl*3), llm.Ptr(0.0)
		}
		if on(4) {
			req.MaxTokens, req.N, req.Seed = &n32, &n32, llm.Ptr(int64(n32)<<40)
		}
		if on(5) {
			req.Stop = []string{s1, s2}
		}
		if on(6) {
			req.Tools = []llm.Tool{{Name: s1, Description: s2, Parameters: raw, Strict: llm.Ptr(on(7))}, {Name: s2}}
		}
		switch {
		case on(8):
			req.ToolChoice = &llm.ToolChoice{Mode: "function", Name: s1}
		case on(9):
			req.ToolChoice = &llm.ToolChoice{Mode: s2}
		}
		if on(10) {
			req.ResponseFormat = &llm.ResponseFormat{Type: "json_schema", SchemaName: s1, SchemaDescription: s2, Schema: raw, Strict: llm.Ptr(on(11))}
		} else if on(12) {
			req.ResponseFormat = &llm.ResponseFormat{Type: s1}
		}
		if on(13) {
			req.ParallelToolCalls = llm.Ptr(on(14))
		}
		w := encodeChat(req, on(15))
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		jerr := enc.Encode(w)
		got, ok := appendChatRequest(nil, w)
		switch {
		case ok && jerr != nil:
			t.Fatalf("fast encoder wrote %s, encoding/json fails: %v", got, jerr)
		case ok && !bytes.Equal(got, want.Bytes()):
			t.Fatalf("encoders differ:\n json %s\n fast %s", want.Bytes(), got)
		case !ok && jerr == nil && !math.IsNaN(fl) && !math.IsInf(fl, 0) && plainRaw(raw):
			t.Fatalf("fast encoder declined a plain request: %s", want.Bytes())
		}
	})
}

// TestFastWireCovers checks that typical answers, events and requests take the fast paths.
func TestFastWireCovers(t *testing.T) {
	for _, s := range []string{benchEvent, wireSeeds[3], wireSeeds[4]} {
		if !fastChunk([]byte(s), new(chunk), nil) {
			t.Errorf("event takes the encoding/json path: %s", s)
		}
	}
	for _, s := range []string{benchAnswer, wireSeeds[2], wireSeeds[len(wireSeeds)-1]} {
		if !fastResponse([]byte(s), new(chatResponse)) {
			t.Errorf("answer takes the encoding/json path: %s", s)
		}
	}
	if _, ok := appendChatRequest(nil, encodeChat(benchRequest, true)); !ok {
		t.Error("the bench request takes the encoding/json path")
	}
}

// plainRaw reports whether raw is JSON the strict scanner must take: ASCII, no \u escapes, and
// shallow (jsonscan.MaxDepth).
func plainRaw(raw []byte) bool {
	for _, c := range raw {
		if c >= 0x80 {
			return false
		}
	}
	return json.Valid(raw) && !bytes.Contains(raw, []byte(`\u`)) && bytes.Count(raw, []byte("["))+bytes.Count(raw, []byte("{")) < jsonscan.MaxDepth
}
