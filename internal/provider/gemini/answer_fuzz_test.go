package gemini_test

import (
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/gemini"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// FuzzAnswer feeds arbitrary upstream answers to the response, stream, embeddings and
// google.rpc.Status decoders (see providertest.FuzzAnswers), seeded from testdata.
func FuzzAnswer(f *testing.F) {
	providertest.FuzzAnswers(f, providertest.AnswerFuzz{
		Name: "fz",
		New: func(a *providertest.Answers) (llm.Provider, error) {
			return gemini.NewWithClient(provider.Config{Name: "fz", BaseURL: "http://upstream.test/v1beta"}, a.Client())
		},
		Seeds: []string{"*.json", "*.sse"},
		Bodies: []string{
			`{"embedding":{"values":[0.5,-1]}}`,
			`{"embeddings":[{"values":[1]},{"values":[2,3]}]}`,
			`{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"},{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"PerDay"}]}]}}`,
		},
	})
}
