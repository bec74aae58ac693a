package openai

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
)

var benchRequest = &llm.ChatRequest{
	Model: "gpt-4o-mini",
	Messages: []llm.Message{
		llm.TextMessage(llm.RoleSystem, "You are a helpful assistant for a customer support team."),
		llm.TextMessage(llm.RoleUser, "What is the status of order 12345? It was supposed to arrive yesterday."),
	},
	Temperature: llm.Ptr(0.7),
	MaxTokens:   llm.Ptr[int32](256),
	Tools: []llm.Tool{{Name: "lookup_order", Description: "Find an order by id.",
		Parameters: []byte(`{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`)}},
}

const benchAnswer = `{"id":"chatcmpl-abc","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Your order 12345 shipped on Monday and is expected to arrive tomorrow. I'm sorry for the delay.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":61,"completion_tokens":24,"total_tokens":85,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_0ba0d124f1"}`

const benchEvent = `{"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" tomorrow"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"aB3"}`

// BenchmarkEncodeDecode measures the adapter's own CPU per blocking request: encoding a typical
// chat request and decoding a typical answer (no network). encoding_json is the path the fast
// encoder and decoder replaced, kept as the baseline.
func BenchmarkEncodeDecode(b *testing.B) {
	answer := []byte(benchAnswer)
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var buf bytes.Buffer // a new buffer per request, as wireutil.PostJSON has
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(encodeChat(benchRequest, false)); err != nil {
				b.Fatal(err)
			}
			var w chatResponse
			if err := json.Unmarshal(answer, &w); err != nil {
				b.Fatal(err)
			}
			_ = decodeResponse(&w)
		}
	})
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeChatJSON(encodeChat(benchRequest, false)); err != nil {
				b.Fatal(err)
			}
			var w chatResponse
			if err := decodeResponseJSON(answer, &w); err != nil {
				b.Fatal(err)
			}
			_ = decodeResponse(&w)
		}
	})
}

// BenchmarkChunkDecode compares decoding one stream event with encoding/json and the fast path.
func BenchmarkChunkDecode(b *testing.B) {
	event := []byte(benchEvent)
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var w chunk
			if err := json.Unmarshal(event, &w); err != nil {
				b.Fatal(err)
			}
			_ = decodeChunk(&w)
		}
	})
	b.Run("fast", func(b *testing.B) {
		var prev chunk // as a stream keeps it
		b.ReportAllocs()
		for b.Loop() {
			var w chunk
			if err := decodeChunkJSON(event, &w, &prev); err != nil {
				b.Fatal(err)
			}
			prev = chunk{ID: w.ID, Model: w.Model, SystemFingerprint: w.SystemFingerprint}
			_ = decodeChunk(&w)
		}
	})
}

// BenchmarkStreamChunk measures parsing SSE content events into llm.Chunks, 1000 per op.
func BenchmarkStreamChunk(b *testing.B) {
	event := []byte("data: " + benchEvent + "\n\n")
	body := bytes.Repeat(event, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		s := newTestStream(string(body))
		for range 1000 {
			if _, err := s.Recv(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
