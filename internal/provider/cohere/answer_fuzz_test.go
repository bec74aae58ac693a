package cohere_test

import (
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/cohere"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// FuzzAnswer feeds arbitrary upstream answers to the response, stream, embeddings and error
// decoders (see providertest.FuzzAnswers), seeded from testdata.
func FuzzAnswer(f *testing.F) {
	providertest.FuzzAnswers(f, providertest.AnswerFuzz{
		Name: "fz",
		New: func(a *providertest.Answers) (llm.Provider, error) {
			return cohere.NewWithClient(provider.Config{Name: "fz", BaseURL: "http://upstream.test", APIKey: "k"}, a.Client())
		},
		Seeds: []string{"*.json", "*.sse"},
		Bodies: []string{
			`{"id":"e","embeddings":{"float":[[0.5,-1]]},"meta":{"billed_units":{"input_tokens":1}}}`,
			`{"id":"e","embeddings":{"float":[[1],[2,3]]}}`,
			`{"results":[{"index":0,"relevance_score":0.5}],"meta":{"billed_units":{"search_units":1}}}`,
			"data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TIMEOUT\"}}\n\n",
			"data: [DONE]\n\n",
		},
	})
}
