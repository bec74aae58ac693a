package ollama_test

import (
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/ollama"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// FuzzAnswer feeds arbitrary upstream answers to the chat, NDJSON stream, embeddings and error
// decoders (see providertest.FuzzAnswers), seeded from testdata.
func FuzzAnswer(f *testing.F) {
	providertest.FuzzAnswers(f, providertest.AnswerFuzz{
		Name: "fz",
		New: func(a *providertest.Answers) (llm.Provider, error) {
			return ollama.NewWithClient(provider.Config{Name: "fz", BaseURL: "http://upstream.test"}, a.Client())
		},
		Seeds: []string{"*.json", "*.ndjson"},
		Bodies: []string{
			`{"model":"m","embeddings":[[0.5,-1],[1e-7,2]],"prompt_eval_count":2}`,
			`{"error":"model failed"}`,
		},
	})
}
