package openai_test

import (
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/openai"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// FuzzAnswer feeds arbitrary upstream answers to the chat, stream, embeddings and error
// decoders (see providertest.FuzzAnswers), seeded from testdata.
func FuzzAnswer(f *testing.F) {
	providertest.FuzzAnswers(f, providertest.AnswerFuzz{
		Name: "fz",
		New: func(a *providertest.Answers) (llm.Provider, error) {
			return openai.NewWithClient(provider.Config{Name: "fz", BaseURL: "http://upstream.test/v1"}, a.Client())
		},
		Seeds: []string{"*.json", "*.html", "*.sse"},
		Bodies: []string{
			`{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3,"completion_tokens_details":{"reasoning_tokens":1}}}`,
			`{"object":"list","data":[{"object":"embedding","index":1,"embedding":[0.5,-1]},{"object":"embedding","index":0,"embedding":[1e-7,2]}],"model":"m","usage":{"prompt_tokens":2,"total_tokens":2}}`,
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\ndata: [DONE]\n\n",
			"event: error\ndata: {\"error\":{\"message\":\"m\",\"type\":\"server_error\",\"code\":500}}\n\n",
		},
	})
}
