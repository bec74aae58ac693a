package e2e

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/switchyard/switchyard/internal/app"
	"github.com/switchyard/switchyard/internal/provider/anthropic/anthropictest"
	"github.com/switchyard/switchyard/internal/provider/azure/azuretest"
	"github.com/switchyard/switchyard/internal/provider/bedrock/bedrocktest"
	"github.com/switchyard/switchyard/internal/provider/cohere/coheretest"
	"github.com/switchyard/switchyard/internal/provider/gemini/geminitest"
	"github.com/switchyard/switchyard/internal/provider/kserve/kservetest"
	"github.com/switchyard/switchyard/internal/provider/ollama/ollamatest"
	"github.com/switchyard/switchyard/internal/provider/openai/openaitest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// nativeCase is one provider adapter behind the gateway, as provider "native" answering through
// the aliases "chat" and "emb", with a loopback upstream speaking its native protocol.
type nativeCase struct {
	name string
	// provider starts the native upstream, answering with opts, and returns the provider's
	// config entry (a YAML flow mapping named "native").
	provider    func(t *testing.T, opts ...providertest.UpstreamOption) string
	chat, embed string // upstream model names; embed is "" when the protocol has no embeddings API
	noTools     bool   // the protocol has no tool calls: the gateway answers 400
	noReasoning bool   // the protocol carries no reasoning content
}

// httpNative is the config entry of an HTTP adapter of type typ pointed at a providertest
// upstream speaking wire; path is appended to the upstream's URL.
func httpNative(typ string, wire providertest.Wire, path, extra string) func(t *testing.T, opts ...providertest.UpstreamOption) string {
	return func(t *testing.T, opts ...providertest.UpstreamOption) string {
		up := providertest.NewUpstream(t, wire, opts...)
		return fmt.Sprintf(`{name: native, type: %s, base_url: %q, api_key: %q%s}`, typ, up.URL+path, upstreamKey, extra)
	}
}

func nativeCases() []nativeCase {
	return []nativeCase{
		{name: "openai", chat: "gpt-4o", embed: "text-embedding-3-small",
			provider: httpNative("openai", openaitest.Wire{}, "/v1", "")},
		{name: "azure", chat: "gpt-4o", embed: "text-embedding-3-small",
			provider: httpNative("azure", azuretest.Wire{}, "", "")},
		{name: "anthropic", chat: "claude-sonnet-4-5",
			provider: httpNative("anthropic", &anthropictest.Wire{}, "", "")},
		{name: "gemini", chat: "gemini-2.5-flash", embed: "gemini-embedding-001",
			provider: httpNative("gemini", geminitest.NewWire(), "/v1beta", "")},
		{name: "cohere", chat: "command-a-03-2025", embed: "embed-v4.0",
			provider: httpNative("cohere", coheretest.NewWire(), "", "")},
		// Bedrock's fake checks every request's SigV4 signature against these credentials.
		{name: "bedrock", chat: "anthropic.claude-3-5-haiku-20241022-v1:0", embed: "cohere.embed-english-v3",
			provider: func(t *testing.T, opts ...providertest.UpstreamOption) string {
				up := providertest.NewUpstream(t, bedrocktest.Wire{}, opts...)
				return fmt.Sprintf(`{name: native, type: bedrock, base_url: %q, options: {region: %s, access_key_id: %s, secret_access_key: %s}}`,
					up.URL, bedrocktest.Region, bedrocktest.AccessKeyID, bedrocktest.SecretAccessKey)
			}},
		{name: "ollama", chat: "llama3.2", embed: "nomic-embed-text",
			provider: httpNative("ollama", &ollamatest.Wire{}, "", ", options: {num_ctx: '8192'}")},
		{name: "kserve", chat: "ensemble", embed: "bge", noTools: true, noReasoning: true,
			provider: func(t *testing.T, _ ...providertest.UpstreamOption) string {
				addr := kservetest.Start(t, kservetest.NewModel(providertest.EmbeddingVector))
				return fmt.Sprintf(`{name: native, type: kserve, base_url: %q, options: {completion_tokens_output: %s, retry_backoff: 1ms}}`,
					addr, kservetest.TokensOutput)
			}},
		// Two Switchyards chained: the SDK talks to this gateway (B), whose "grpc" provider calls
		// gateway A's gRPC API with A's client key; A serves an OpenAI upstream as its provider
		// "native", so B's upstream model names are A's "native/<model>".
		{name: "grpc", chat: "native/gpt-4o", embed: "native/text-embedding-3-small",
			provider: func(t *testing.T, opts ...providertest.UpstreamOption) string {
				a := startYAML(t, nativeGatewayYAML(httpNative("openai", openaitest.Wire{}, "/v1", "")(t, opts...), "", ""))
				return fmt.Sprintf(`{name: native, type: grpc, base_url: %q, api_key: %q, options: {retry_backoff: 1ms}}`, a.GRPCAddr(), clientKey)
			}},
	}
}

// nativeGatewayYAML is a gateway config with API-key auth, one provider entry and the aliases
// "chat" and, when embed is set, "emb" to native/<model>.
func nativeGatewayYAML(provider, chat, embed string) string {
	aliases := ""
	if chat != "" {
		aliases = fmt.Sprintf("aliases:\n  chat: native/%s\n", chat)
		if embed != "" {
			aliases += fmt.Sprintf("  emb: native/%s\n", embed)
		}
	}
	return fmt.Sprintf(`
server:
  http_addr: 127.0.0.1:0
  grpc_addr: 127.0.0.1:0
  admin_addr: 127.0.0.1:0
auth:
  mode: api_key
  api_keys:
    - {name: e2e, key: %q, tenant: e2e}
providers:
  - %s
%s`, clientKey, provider, aliases)
}

// TestAdapters runs the same OpenAI SDK assertions against each adapter behind the gateway: the
// answers must not tell which provider gave them.
func TestAdapters(t *testing.T) {
	for _, nc := range nativeCases() {
		t.Run(nc.name, func(t *testing.T) {
			entry := nc.provider(t)
			g := &gateway{Instance: startYAML(t, nativeGatewayYAML(entry, nc.chat, nc.embed))}
			c := g.sdk(clientKey)
			for _, check := range []struct {
				name string
				fn   func(t *testing.T)
			}{
				{"chat", func(t *testing.T) { adapterChat(t, c, "chat") }},
				{"stream with usage", func(t *testing.T) { adapterStream(t, c, "chat") }},
				{"tool call and result", func(t *testing.T) { adapterTools(t, c, nc.noTools) }},
				{"tool call streamed", func(t *testing.T) { adapterToolsStreamed(t, c, nc.noTools) }},
				{"embeddings", func(t *testing.T) { adapterEmbeddings(t, c, "emb", nc.embed == "") }},
				{"models", func(t *testing.T) { adapterModels(t, c, nc) }},
			} {
				t.Run(check.name, check.fn)
			}
		})
	}
}

func adapterChat(t *testing.T, c openai.Client, model string) {
	resp, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
		Model: model, Messages: userMsg("hello there"), MaxTokens: openai.Int(64), Temperature: openai.Float(0.3),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Message.Content != "pong: hello there" || resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices = %+v, want one \"pong: hello there\" finished by stop", resp.Choices)
	}
	u := resp.Usage
	if resp.Object != "chat.completion" || resp.ID == "" || u.CompletionTokens != 3 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("object=%q id=%q usage=%+v, want 3 completion tokens adding up", resp.Object, resp.ID, u)
	}
}

func adapterStream(t *testing.T, c openai.Client, model string) {
	s := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model: model, Messages: userMsg("stream these words please"),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for s.Next() {
		acc.AddChunk(s.Current())
		chunks++
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := acc.Choices[0].Message.Content, "pong: stream these words please"; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
	u := acc.Usage
	if chunks < 4 || acc.Choices[0].FinishReason != "stop" || u.CompletionTokens != 5 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("chunks=%d finish=%q usage=%+v, want several chunks, stop and 5 completion tokens adding up", chunks, acc.Choices[0].FinishReason, u)
	}
}

// wantToolsRejected checks the answer of a provider whose protocol has no tool calls.
func wantToolsRejected(t *testing.T, err error) {
	t.Helper()
	if e := wantAPIError(t, err, 400, "invalid_request_error"); e != nil && !strings.Contains(strings.ToLower(e.Message), "tool") {
		t.Errorf("message %q does not say that tools are the problem", e.Message)
	}
}

func adapterTools(t *testing.T, c openai.Client, rejected bool) {
	tools := []openai.ChatCompletionToolUnionParam{weatherTool}
	resp, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: userMsg("Paris"), Tools: tools,
		ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")},
	})
	if rejected {
		wantToolsRejected(t, err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.Choices[0].Message.ToolCalls
	if len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].ID == "" || resp.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("tool calls = %+v finish=%q, want one get_weather call", calls, resp.Choices[0].FinishReason)
	}
	wantCityArgs(t, calls[0].Function.Arguments)

	follow, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
		Model: "chat", Tools: tools,
		Messages: append(userMsg("Paris"), resp.Choices[0].Message.ToParam(), openai.ToolMessage(`{"temperature_c":18}`, calls[0].ID)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The upstream answers "tool said: <the result it received>": the result made the trip.
	if got := follow.Choices[0].Message.Content; !strings.HasPrefix(got, "tool said: ") || !strings.Contains(got, "temperature_c") || !strings.Contains(got, "18") {
		t.Errorf("follow-up content = %q, want the upstream to have seen the tool result", got)
	}
	if follow.Choices[0].FinishReason != "stop" || len(follow.Choices[0].Message.ToolCalls) != 0 {
		t.Errorf("follow-up finish=%q calls=%d, want a text answer", follow.Choices[0].FinishReason, len(follow.Choices[0].Message.ToolCalls))
	}
}

func wantCityArgs(t *testing.T, raw string) {
	t.Helper()
	var args map[string]string
	if err := json.Unmarshal([]byte(raw), &args); err != nil || args["city"] != "Paris" {
		t.Errorf("arguments %q, want {\"city\":\"Paris\"} (err %v)", raw, err)
	}
}

func adapterToolsStreamed(t *testing.T, c openai.Client, rejected bool) {
	s := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: userMsg("Paris"), Tools: []openai.ChatCompletionToolUnionParam{weatherTool},
	})
	var acc openai.ChatCompletionAccumulator
	var finished []openai.FinishedChatCompletionToolCall
	for s.Next() {
		acc.AddChunk(s.Current())
		if tc, ok := acc.JustFinishedToolCall(); ok {
			finished = append(finished, tc)
		}
	}
	if rejected {
		wantToolsRejected(t, s.Err())
		return
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(finished) != 1 || finished[0].Name != "get_weather" {
		t.Fatalf("finished tool calls = %+v, want one get_weather call", finished)
	}
	wantCityArgs(t, finished[0].Arguments)
	if acc.Choices[0].FinishReason != "tool_calls" || acc.Choices[0].Message.ToolCalls[0].ID == "" {
		t.Errorf("accumulated = %+v, want finish tool_calls and a call id", acc.Choices[0])
	}
}

func adapterEmbeddings(t *testing.T, c openai.Client, model string, none bool) {
	inputs := []string{"alpha", "bravo charlie", "delta echo foxtrot"}
	embed := func(format openai.EmbeddingNewParamsEncodingFormat) (*openai.CreateEmbeddingResponse, error) {
		return c.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
			Model: model, Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs}, EncodingFormat: format,
		})
	}
	if none {
		// No embeddings API: "emb" is no alias, and the provider's own name is refused clearly.
		_, err := c.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
			Model: "native/any", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
		})
		if e := wantAPIError(t, err, 400, "invalid_request_error"); e != nil && !strings.Contains(strings.ToLower(e.Message), "embedding") {
			t.Errorf("message %q does not say that embeddings are the problem", e.Message)
		}
		return
	}
	float, err := embed(openai.EmbeddingNewParamsEncodingFormatFloat)
	if err != nil {
		t.Fatal(err)
	}
	b64, err := embed(openai.EmbeddingNewParamsEncodingFormatBase64)
	if err != nil {
		t.Fatal(err)
	}
	if len(float.Data) != len(inputs) || len(b64.Data) != len(inputs) || float.Model == "" {
		t.Fatalf("got %d float and %d base64 vectors, model %q; want %d each", len(float.Data), len(b64.Data), float.Model, len(inputs))
	}
	for i, in := range inputs {
		want := providertest.EmbeddingVector(in)
		d := float.Data[i]
		got := make([]float32, len(d.Embedding))
		for j, f := range d.Embedding {
			got[j] = float32(f)
		}
		if d.Index != int64(i) || !slices.Equal(got, want) {
			t.Errorf("float data[%d] = index %d %v, want %v", i, d.Index, d.Embedding, want)
		}
		dec := base64Floats(t, b64.Data[i].JSON.Embedding.Raw())
		if b64.Data[i].Index != int64(i) || !slices.Equal(dec, want) {
			t.Errorf("base64 data[%d] = index %d %v, want %v", i, b64.Data[i].Index, dec, want)
		}
	}
}

// base64Floats decodes an embedding sent with encoding_format base64: a JSON string holding
// little-endian float32 values.
func base64Floats(t *testing.T, raw string) []float32 {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("base64 embedding is not a JSON string: %s", raw)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("base64 embedding %q does not decode to float32 values (err %v)", s, err)
	}
	out := make([]float32, len(b)/4)
	for j := range out {
		out[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
	}
	return out
}

func adapterModels(t *testing.T, c openai.Client, nc nativeCase) {
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	want := []string{"chat"}
	if nc.embed != "" {
		want = append(want, "emb")
	}
	for _, w := range want {
		if !slices.Contains(ids, w) {
			t.Errorf("models %v lack %q", ids, w)
		}
	}
}

// TestAdaptersReasoning checks that reasoning an upstream sends reaches the SDK as
// reasoning_content, blocking and streamed, whichever protocol carried it.
func TestAdaptersReasoning(t *testing.T) {
	for _, nc := range nativeCases() {
		t.Run(nc.name, func(t *testing.T) {
			if nc.noReasoning {
				t.Skip("the protocol carries no reasoning")
			}
			g := &gateway{Instance: startYAML(t, nativeGatewayYAML(nc.provider(t, providertest.WithReasoning()), nc.chat, ""))}
			c := g.sdk(clientKey)
			const want = "Thinking about: hello there"
			resp, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "chat", Messages: userMsg("hello there")})
			if err != nil {
				t.Fatal(err)
			}
			msg := resp.Choices[0].Message
			if got := rawString(t, msg.JSON.ExtraFields["reasoning_content"].Raw()); got != want || msg.Content != "pong: hello there" {
				t.Errorf("reasoning_content = %q content = %q, want %q and the answer", got, msg.Content, want)
			}
			s := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{Model: "chat", Messages: userMsg("hello there")})
			var reasoning, content strings.Builder
			for s.Next() {
				for _, ch := range s.Current().Choices {
					if r, ok := ch.Delta.JSON.ExtraFields["reasoning_content"]; ok {
						reasoning.WriteString(rawString(t, r.Raw()))
					}
					content.WriteString(ch.Delta.Content)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if reasoning.String() != want || content.String() != "pong: hello there" {
				t.Errorf("streamed reasoning = %q content = %q, want %q and the answer", reasoning.String(), content.String(), want)
			}
		})
	}
}

// rawString decodes a JSON string; "" for an absent field or null.
func rawString(t *testing.T, raw string) string {
	t.Helper()
	if raw == "" || raw == "null" {
		return ""
	}
	var s string
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Errorf("%s is not a JSON string: %v", raw, err)
	}
	return s
}

// TestExampleConfigSideBySide starts Switchyard with configs/switchyard.example.yaml, its OpenAI,
// Anthropic and Gemini providers pointed at native upstreams, and asks each alias through the SDK.
func TestExampleConfigSideBySide(t *testing.T) {
	env := map[string]string{"SWITCHYARD_API_KEY": clientKey, "OPENAI_API_KEY": upstreamKey, "ANTHROPIC_API_KEY": upstreamKey,
		"GEMINI_API_KEY": upstreamKey, "DEEPSEEK_API_KEY": upstreamKey}
	cfg, err := app.LoadConfig("../../configs/switchyard.example.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.HTTPAddr, cfg.Server.GRPCAddr, cfg.Server.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	upstreams := map[string]string{ // provider name → its native upstream's base URL
		"openai":    providertest.NewUpstream(t, openaitest.Wire{}).URL + "/v1",
		"anthropic": providertest.NewUpstream(t, &anthropictest.Wire{}).URL,
		"gemini":    providertest.NewUpstream(t, geminitest.NewWire()).URL + "/v1beta",
	}
	for i, p := range cfg.Providers {
		if u, ok := upstreams[p.Name]; ok {
			cfg.Providers[i].BaseURL = u
			delete(upstreams, p.Name)
		}
	}
	if len(upstreams) != 0 {
		t.Fatalf("the example config lacks providers %v", upstreams)
	}
	g := &gateway{Instance: startConfig(t, cfg)}
	c := g.sdk(clientKey)
	for _, alias := range []string{"default", "smart", "claude", "claude-fast", "gemini", "gemini-pro", "frontier"} {
		t.Run(alias, func(t *testing.T) {
			adapterChat(t, c, alias)
			adapterStream(t, c, alias)
		})
	}
	for _, alias := range []string{"embedding", "gemini-embedding"} {
		t.Run(alias, func(t *testing.T) { adapterEmbeddings(t, c, alias, false) })
	}
}
