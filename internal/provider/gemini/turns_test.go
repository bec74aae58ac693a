package gemini_test

import (
	"context"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// TestStreamFixtures replays Gemini SSE transcripts (CRLF line ends, no terminator).
func TestStreamFixtures(t *testing.T) {
	cases := []struct {
		file                    string
		content, reasoning      string
		calls                   int
		finish                  string
		usage                   *llm.Usage
		wantErr                 llm.Kind
		wantCode                string
		errAfterContent, hasErr bool
	}{
		{file: "stream_thoughts_text.sse", content: "Hello! How can I help today?", reasoning: "**Greeting the user**\n\nThe user said hi; a short greeting fits.",
			finish: llm.FinishStop, usage: &llm.Usage{PromptTokens: 8, CompletionTokens: 39, TotalTokens: 47, ReasoningTokens: 30}},
		{file: "stream_function_calls.sse", calls: 2, finish: llm.FinishToolCalls,
			usage: &llm.Usage{PromptTokens: 61, CompletionTokens: 170, TotalTokens: 231, ReasoningTokens: 130}},
		{file: "stream_error_after_200.sse", content: "Once upon a time", hasErr: true, wantErr: llm.KindUnavailable},
		{file: "stream_prompt_blocked.sse", hasErr: true, wantErr: llm.KindBusiness, wantCode: "content_filter"},
		{file: "stream_truncated.sse", content: "Once upon", hasErr: true, wantErr: llm.KindUpstream},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			up := newCapture(t, 200, "text/event-stream", fixture(t, c.file))
			st, err := up.provider(t, provider.Config{}).ChatStream(context.Background(), &llm.ChatRequest{Model: "gemini-2.5-flash", Messages: userMsg("hi")})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			a, err := providertest.Collect(st)
			if c.hasErr {
				if e := providertest.WantError(t, err, c.wantErr, "gem"); e.Code != c.wantCode {
					t.Errorf("Code = %q, want %q", e.Code, c.wantCode)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if a.Content != c.content || a.Reasoning != c.reasoning || len(a.ToolCalls) != c.calls || a.FinishReason != c.finish {
				t.Errorf("assembled content %q reasoning %q calls %d finish %q", a.Content, a.Reasoning, len(a.ToolCalls), a.FinishReason)
			}
			if !reflect.DeepEqual(a.Usage, c.usage) {
				t.Errorf("usage = %+v, want %+v", a.Usage, c.usage)
			}
		})
	}
}

var idChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// TestThoughtSignatureRoundTrip: calls without Gemini ids get stable ids, the thought
// signature rides in the first call's id, blocking and streamed answers agree, and the next
// turn sends the signature back on its functionCall part with the responses named and
// matched by id.
func TestThoughtSignatureRoundTrip(t *testing.T) {
	sig := strings.TrimSpace(fixture(t, "signature.txt"))
	up := newCapture(t, 200, "application/json", fixture(t, "response_function_calls.json"))
	p := up.provider(t, provider.Config{})
	req := &llm.ChatRequest{Model: "gemini-3-pro-preview", Messages: userMsg("Weather in Paris and Tokyo?")}
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	<-up.body
	ch := resp.Choices[0]
	if ch.FinishReason != llm.FinishToolCalls || len(ch.ToolCalls) != 2 || ch.Content != nil {
		t.Fatalf("choice = %+v", ch)
	}
	calls := ch.ToolCalls
	if !strings.Contains(calls[0].ID, "__ts_") || strings.Contains(calls[1].ID, "__ts_") || calls[0].ID == calls[1].ID {
		t.Errorf("ids %q, %q: want the signature on the first only", calls[0].ID, calls[1].ID)
	}
	for _, c := range calls {
		if !idChars.MatchString(c.ID) || !strings.HasPrefix(c.ID, "call_") {
			t.Errorf("id %q is not a plain call id", c.ID)
		}
	}
	if calls[0].Arguments != `{"city":"Paris","unit":"c"}` {
		t.Errorf("arguments = %s", calls[0].Arguments)
	}

	again, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	<-up.body
	if !reflect.DeepEqual(again.Choices[0].ToolCalls, calls) {
		t.Errorf("ids differ between two decodings of one answer: %+v", again.Choices[0].ToolCalls)
	}
	sup := newCapture(t, 200, "text/event-stream", fixture(t, "stream_function_calls.sse"))
	st, err := sup.provider(t, provider.Config{}).ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := providertest.Collect(st)
	if err != nil || !reflect.DeepEqual(a.ToolCalls, calls) {
		t.Errorf("streamed calls %+v (%v), want the blocking ones %+v", a.ToolCalls, err, calls)
	}

	next := newCapture(t, 200, "application/json", okAnswer)
	follow := &llm.ChatRequest{Model: "gemini-3-pro-preview", Messages: []llm.Message{
		llm.TextMessage(llm.RoleUser, "Weather in Paris and Tokyo?"),
		{Role: llm.RoleAssistant, ToolCalls: calls},
		{Role: llm.RoleTool, ToolCallID: calls[0].ID, Content: []llm.Part{{Type: llm.PartText, Text: `{"temp_c": 18}`}}},
		{Role: llm.RoleTool, ToolCallID: calls[1].ID, Content: []llm.Part{{Type: llm.PartText, Text: "sunny, 24°C"}}},
	}}
	if _, err := next.provider(t, provider.Config{}).Chat(context.Background(), follow); err != nil {
		t.Fatal(err)
	}
	sent := next.sent(t)
	baseID := func(id string) string { b, _, _ := strings.Cut(id, "__ts_"); return b }
	want := map[string]any{
		"contents.1.role":                              "model",
		"contents.1.parts.0.functionCall.id":           baseID(calls[0].ID),
		"contents.1.parts.0.functionCall.args.city":    "Paris",
		"contents.1.parts.0.thoughtSignature":          sig,
		"contents.1.parts.1.functionCall.id":           calls[1].ID,
		"contents.1.parts.1.thoughtSignature":          nil,
		"contents.2.role":                              "user",
		"contents.2.parts.0.functionResponse.id":       baseID(calls[0].ID),
		"contents.2.parts.0.functionResponse.name":     "get_weather",
		"contents.2.parts.0.functionResponse.response": map[string]any{"temp_c": 18.0},
		"contents.2.parts.1.functionResponse.name":     "get_weather",
		"contents.2.parts.1.functionResponse.response": map[string]any{"result": "sunny, 24°C"},
		"contents.3":                                nil,
		"contents.2.parts.1.functionResponse.id":    calls[1].ID,
		"contents.1.parts.0.functionCall.name":      "get_weather",
		"contents.1.parts.1.functionCall.args.city": "Tokyo",
		"contents.0.parts.0.text":                   "Weather in Paris and Tokyo?",
	}
	for path, w := range want {
		if got := lookup(sent, path); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", path, got, w)
		}
	}
}

func TestToolMessageWithoutCall(t *testing.T) {
	up := newCapture(t, 200, "application/json", okAnswer)
	cases := []struct {
		name    string
		msg     llm.Message
		wantErr bool
	}{
		{"unknown id", llm.Message{Role: llm.RoleTool, ToolCallID: "call_gone", Content: []llm.Part{{Type: llm.PartText, Text: "x"}}}, true},
		{"unknown id, named", llm.Message{Role: llm.RoleTool, ToolCallID: "call_gone", Name: "get_weather", Content: []llm.Part{{Type: llm.PartText, Text: "x"}}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := up.provider(t, provider.Config{}).Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "x"), c.msg}})
			if c.wantErr {
				providertest.WantError(t, err, llm.KindInvalidArgument, "")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := lookup(up.sent(t), "contents.0.parts.1.functionResponse.name"); got != "get_weather" {
				t.Errorf("functionResponse.name = %v", got)
			}
		})
	}
}

func TestFinishReasons(t *testing.T) {
	call := `{"functionCall":{"name":"f","args":{}}}`
	cases := []struct {
		native, part, want string
	}{
		{"STOP", `{"text":"x"}`, llm.FinishStop},
		{"STOP", call, llm.FinishToolCalls},
		{"MAX_TOKENS", `{"text":"x"}`, llm.FinishLength},
		{"SAFETY", `{"text":"x"}`, llm.FinishContentFilter},
		{"RECITATION", `{"text":"x"}`, llm.FinishContentFilter},
		{"BLOCKLIST", `{"text":"x"}`, llm.FinishContentFilter},
		{"PROHIBITED_CONTENT", `{"text":"x"}`, llm.FinishContentFilter},
		{"SPII", `{"text":"x"}`, llm.FinishContentFilter},
		{"IMAGE_SAFETY", `{"text":"x"}`, llm.FinishContentFilter},
		{"OTHER", `{"text":"x"}`, llm.FinishStop},
		{"LANGUAGE", `{"text":"x"}`, llm.FinishStop},
		{"MALFORMED_FUNCTION_CALL", `{"text":""}`, llm.FinishStop},
		{"TOO_MANY_TOOL_CALLS", call, llm.FinishToolCalls},
		{"FINISH_REASON_UNSPECIFIED", `{"text":"x"}`, llm.FinishStop},
	}
	for _, c := range cases {
		t.Run(c.native+"/"+c.want, func(t *testing.T) {
			answer := `{"candidates":[{"content":{"parts":[` + c.part + `],"role":"model"},"finishReason":"` + c.native + `","index":0}]}`
			up := newCapture(t, 200, "application/json", answer)
			resp, err := up.provider(t, provider.Config{}).Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: userMsg("x")})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Choices[0].FinishReason; got != c.want {
				t.Errorf("finish = %q, want %q", got, c.want)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	answer := `{"candidates":[{"content":{"parts":[{"text":"a"}],"role":"model"},"finishReason":"STOP","index":0},{"content":{"parts":[{"text":"b"}],"role":"model"},"finishReason":"MAX_TOKENS","index":1}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":2,"cachedContentTokenCount":1,"toolUsePromptTokenCount":3,"totalTokenCount":7}}`
	up := newCapture(t, 200, "application/json", answer)
	resp, err := up.provider(t, provider.Config{}).Chat(context.Background(), &llm.ChatRequest{Model: "gemini-2.5-flash", N: llm.Ptr[int32](2), Messages: userMsg("x")})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 2 || *resp.Choices[1].Content != "b" || resp.Choices[1].Index != 1 || resp.Choices[1].FinishReason != llm.FinishLength {
		t.Errorf("choices = %+v", resp.Choices)
	}
	if want := (llm.Usage{PromptTokens: 5, CompletionTokens: 2, TotalTokens: 7, CachedTokens: 1}); *resp.Usage != want {
		t.Errorf("usage = %+v, want %+v", *resp.Usage, want)
	}
	if resp.Model != "gemini-2.5-flash" {
		t.Errorf("model = %q (no modelVersion: the requested one)", resp.Model)
	}
}

func TestEmbed(t *testing.T) {
	cases := []struct {
		name     string
		texts    []string
		answer   string
		wantPath string
		want     [][]float32
		wantErr  llm.Kind
	}{
		{"one text", []string{"alpha"}, `{"embedding":{"values":[0.1,0.2]}}`, "/v1beta/models/gemini-embedding-001:embedContent", [][]float32{{0.1, 0.2}}, 0},
		{"batch in order", []string{"alpha", "beta", "gamma"}, `{"embeddings":[{"values":[1]},{"values":[2]},{"values":[3]}]}`, "/v1beta/models/gemini-embedding-001:batchEmbedContents", [][]float32{{1}, {2}, {3}}, 0},
		{"batch short", []string{"alpha", "beta"}, `{"embeddings":[{"values":[1]}]}`, "/v1beta/models/gemini-embedding-001:batchEmbedContents", nil, llm.KindUpstream},
		{"no embedding", []string{"alpha"}, `{}`, "/v1beta/models/gemini-embedding-001:embedContent", nil, llm.KindUpstream},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newCapture(t, 200, "application/json", c.answer)
			e := up.provider(t, provider.Config{Options: map[string]string{"embedding_task_type": "RETRIEVAL_DOCUMENT"}}).(llm.Embedder)
			resp, err := e.Embed(context.Background(), &llm.EmbeddingRequest{Model: "gemini-embedding-001", Texts: c.texts, Dimensions: llm.Ptr[int32](2)})
			if r := <-up.reqs; r.URL.Path != c.wantPath {
				t.Errorf("path = %s, want %s", r.URL.Path, c.wantPath)
			}
			sent := up.sent(t)
			if len(c.texts) > 1 {
				for i, text := range c.texts {
					item := lookup(sent, "requests."+string(rune('0'+i)))
					if lookup(item, "content.parts.0.text") != text || lookup(item, "model") != "models/gemini-embedding-001" ||
						lookup(item, "taskType") != "RETRIEVAL_DOCUMENT" || lookup(item, "outputDimensionality") != 2.0 {
						t.Errorf("batch item %d = %v", i, item)
					}
				}
			} else if lookup(sent, "taskType") != "RETRIEVAL_DOCUMENT" || lookup(sent, "content.parts.0.text") != c.texts[0] {
				t.Errorf("request = %v", sent)
			}
			if c.wantErr != 0 {
				providertest.WantError(t, err, c.wantErr, "gem")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(resp.Vectors, c.want) {
				t.Errorf("vectors = %v, want %v", resp.Vectors, c.want)
			}
		})
	}
	up := newCapture(t, 200, "application/json", `{}`)
	_, err := up.provider(t, provider.Config{}).(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: "m", Tokens: [][]int32{{1, 2}}})
	providertest.WantError(t, err, llm.KindInvalidArgument, "")
}
