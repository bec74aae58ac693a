package openai

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
)

// BenchmarkEncodeDecode measures the adapter's own CPU per blocking request: encoding a typical
// chat request and decoding a typical answer (no network).
func BenchmarkEncodeDecode(b *testing.B) {
	req := &llm.ChatRequest{
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
	answer := []byte(`{"id":"chatcmpl-abc","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Your order 12345 shipped on Monday and is expected to arrive tomorrow. I'm sorry for the delay.","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":61,"completion_tokens":24,"total_tokens":85,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":"fp_0ba0d124f1"}`)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(encodeChat(req, false)); err != nil {
			b.Fatal(err)
		}
		var w chatResponse
		if err := json.Unmarshal(answer, &w); err != nil {
			b.Fatal(err)
		}
		_ = decodeResponse(&w)
	}
}

// BenchmarkStreamChunk measures parsing SSE content events into llm.Chunks, 1000 per op.
func BenchmarkStreamChunk(b *testing.B) {
	event := []byte(`data: {"id":"chatcmpl-abc","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" tomorrow"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"aB3"}` + "\n\n")
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
