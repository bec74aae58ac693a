package e2e

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// sdk returns the official OpenAI Go SDK pointed at the gateway, with SDK retries off so every
// error the gateway answers is seen as it is.
func (g *gateway) sdk(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(g.restURL()+"/v1/"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

func userMsg(s string) []openai.ChatCompletionMessageParamUnion {
	return []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage(s)}
}

var weatherTool = openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
	Name:        "get_weather",
	Description: openai.String("Current weather for a city."),
	Parameters: shared.FunctionParameters{
		"type":       "object",
		"properties": map[string]any{"city": map[string]any{"type": "string"}},
		"required":   []string{"city"},
	},
})

func TestSDKChat(t *testing.T) {
	g := startGateway(t, "")
	c := g.sdk(clientKey)

	t.Run("alias to the OpenAI-compatible upstream", func(t *testing.T) {
		resp, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
			Model: "chat", Messages: userMsg("hello there"), MaxTokens: openai.Int(16), Temperature: openai.Float(0.3),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != "pong: hello there" {
			t.Errorf("content = %q", got)
		}
		if resp.Choices[0].FinishReason != "stop" || resp.Usage.TotalTokens != 13 || resp.Object != "chat.completion" {
			t.Errorf("finish=%q usage=%d object=%q", resp.Choices[0].FinishReason, resp.Usage.TotalTokens, resp.Object)
		}
		up := g.up.last()
		if up.Authorization != "Bearer "+upstreamKey {
			t.Errorf("upstream saw Authorization %q, want the provider's key, never the client's", up.Authorization)
		}
		if up.Body["model"] != "gpt-ok" || up.Body["max_tokens"] != 16.0 || up.Body["temperature"] != 0.3 {
			t.Errorf("upstream body = %v", up.Body)
		}
	})

	t.Run("mock echo", func(t *testing.T) {
		resp, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "mock/echo", Messages: userMsg("ping from the sdk")})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != "ping from the sdk" {
			t.Errorf("content = %q", got)
		}
	})

	t.Run("stream with usage", func(t *testing.T) {
		for _, model := range []string{"chat", "mock/echo"} {
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
				t.Fatalf("%s: %v", model, err)
			}
			want := "stream these words please"
			if model == "chat" {
				want = "pong: " + want
			}
			if got := acc.Choices[0].Message.Content; got != want {
				t.Errorf("%s: content = %q, want %q", model, got, want)
			}
			if chunks < 3 || acc.Usage.TotalTokens == 0 || acc.Choices[0].FinishReason != "stop" {
				t.Errorf("%s: chunks=%d usage=%+v finish=%q", model, chunks, acc.Usage, acc.Choices[0].FinishReason)
			}
		}
	})
}

func TestSDKToolCalls(t *testing.T) {
	g := startGateway(t, "")
	c := g.sdk(clientKey)
	for _, model := range []string{"mock/tools", "up/gpt-tools"} {
		t.Run(model+" blocking", func(t *testing.T) {
			resp, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
				Model: model, Messages: userMsg("weather in Paris?"), Tools: []openai.ChatCompletionToolUnionParam{weatherTool},
				ToolChoice: openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("auto")},
			})
			if err != nil {
				t.Fatal(err)
			}
			calls := resp.Choices[0].Message.ToolCalls
			if len(calls) != 1 || calls[0].Function.Name != "get_weather" || calls[0].ID == "" || resp.Choices[0].FinishReason != "tool_calls" {
				t.Fatalf("tool calls = %+v finish=%q", calls, resp.Choices[0].FinishReason)
			}
			var args map[string]any
			if err := json.Unmarshal([]byte(calls[0].Function.Arguments), &args); err != nil {
				t.Errorf("arguments %q are not a JSON object: %v", calls[0].Function.Arguments, err)
			}
			// The follow-up turn with the tool result goes through too.
			follow, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
				Model: model, Tools: []openai.ChatCompletionToolUnionParam{weatherTool},
				Messages: append(userMsg("weather in Paris?"), resp.Choices[0].Message.ToParam(),
					openai.ToolMessage(`{"temperature_c":18}`, calls[0].ID)),
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(follow.Choices) != 1 {
				t.Errorf("follow-up choices = %d", len(follow.Choices))
			}
		})
		t.Run(model+" streamed", func(t *testing.T) {
			s := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
				Model: model, Messages: userMsg("weather in Paris?"), Tools: []openai.ChatCompletionToolUnionParam{weatherTool},
			})
			var acc openai.ChatCompletionAccumulator
			var finished []openai.FinishedChatCompletionToolCall
			for s.Next() {
				acc.AddChunk(s.Current())
				if tc, ok := acc.JustFinishedToolCall(); ok {
					finished = append(finished, tc)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatal(err)
			}
			if len(finished) != 1 || finished[0].Name != "get_weather" || !json.Valid([]byte(finished[0].Arguments)) {
				t.Fatalf("finished tool calls = %+v", finished)
			}
			if acc.Choices[0].FinishReason != "tool_calls" || acc.Choices[0].Message.ToolCalls[0].ID == "" {
				t.Errorf("accumulated = %+v", acc.Choices[0])
			}
		})
	}
}

func TestSDKEmbeddings(t *testing.T) {
	g := startGateway(t, "")
	c := g.sdk(clientKey)
	inputs := []string{"alpha", "bravo charlie", "delta echo foxtrot"}

	t.Run("float, in input order", func(t *testing.T) {
		resp, err := c.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
			Model: "up/emb", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != len(inputs) {
			t.Fatalf("got %d vectors", len(resp.Data))
		}
		for i, d := range resp.Data {
			want := vectorFor(inputs[i])
			if d.Index != int64(i) || !slices.Equal(d.Embedding, want) {
				t.Errorf("data[%d] = index %d %v, want %v", i, d.Index, d.Embedding, want)
			}
		}
		if resp.Usage.PromptTokens != 9 || resp.Model == "" {
			t.Errorf("usage=%+v model=%q", resp.Usage, resp.Model)
		}
	})

	t.Run("base64 equals float", func(t *testing.T) {
		float, err := c.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
			Model: "mock/embed", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatFloat,
		})
		if err != nil {
			t.Fatal(err)
		}
		b64, err := c.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
			Model: "mock/embed", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: inputs},
			EncodingFormat: openai.EmbeddingNewParamsEncodingFormatBase64,
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range inputs {
			var s string
			if err := json.Unmarshal([]byte(b64.Data[i].JSON.Embedding.Raw()), &s); err != nil {
				t.Fatalf("base64 embedding %d is not a string: %s", i, b64.Data[i].JSON.Embedding.Raw())
			}
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(raw)/4)
			for j := range got {
				got[j] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			}
			want := make([]float32, len(float.Data[i].Embedding))
			for j, f := range float.Data[i].Embedding {
				want[j] = float32(f) // the float answer is the shortest decimal that rounds to the same float32
			}
			if len(got) == 0 || !slices.Equal(got, want) {
				t.Errorf("input %d: base64 decodes to %v, float answer is %v", i, got, float.Data[i].Embedding)
			}
		}
	})
}

func TestSDKModels(t *testing.T) {
	g := startGateway(t, "")
	c := g.sdk(clientKey)
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	for _, want := range []string{"mock/echo", "mock/tools", "mock/embed", "chat"} {
		if !slices.Contains(ids, want) {
			t.Errorf("models %v lack %q", ids, want)
		}
	}
	m, err := c.Models.Get(t.Context(), "mock/echo")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "mock/echo" || m.OwnedBy != "mock" || m.Created == 0 {
		t.Errorf("model = %+v", m)
	}
	_, err = c.Models.Get(t.Context(), "nope/missing")
	wantAPIError(t, err, 404, "invalid_request_error")
}

// TestSDKErrors checks what the SDK sees for the gateway's own errors and for upstream faults.
func TestSDKErrors(t *testing.T) {
	g := startGateway(t, "")
	chat := func(key, model string) error {
		c := g.sdk(key)
		_, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: model, Messages: userMsg("hi")})
		return err
	}
	before := g.up.count()
	wantAPIError(t, chat("sk-wrong", "chat"), 401, "authentication_error")
	wantAPIError(t, chat("", "chat"), 401, "authentication_error")
	if n := g.up.count(); n != before {
		t.Errorf("unauthenticated requests reached the upstream %d times", n-before)
	}
	wantAPIError(t, chat(clientKey, "nope/missing"), 404, "invalid_request_error")
	wantAPIError(t, chat(clientKey, "up/err-401"), 401, "authentication_error")
	e := wantAPIError(t, chat(clientKey, "up/err-429"), 429, "rate_limit_error")
	if e != nil && e.Response.Header.Get("Retry-After") != "7" {
		t.Errorf("Retry-After = %q, want the upstream's 7", e.Response.Header.Get("Retry-After"))
	}
	e = wantAPIError(t, chat(clientKey, "up/err-500"), 502, "api_error")
	if e != nil && strings.Contains(e.Message, "The server had an error") {
		t.Errorf("upstream's raw message leaked to the client: %q", e.Message)
	}
	c := g.sdk(clientKey)
	_, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
		Model: "mock/echo", Messages: userMsg("hi"), Temperature: openai.Float(3)})
	if e := wantAPIError(t, err, 400, "invalid_request_error"); e != nil && e.Param != "temperature" {
		t.Errorf("param = %q, want temperature", e.Param)
	}
}

func wantAPIError(t *testing.T, err error, status int, typ string) *openai.Error {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) {
		t.Errorf("err = %v, want an *openai.Error with status %d", err, status)
		return nil
	}
	if e.StatusCode != status || e.Type != typ || e.Message == "" {
		t.Errorf("got status %d type %q message %q, want %d %q", e.StatusCode, e.Type, e.Message, status, typ)
	}
	return e
}
