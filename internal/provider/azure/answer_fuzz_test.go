package azure_test

import (
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/azure"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// FuzzAnswer feeds arbitrary upstream answers to the adapter (see providertest.FuzzAnswers)
// through a loopback server, since the adapter builds its own HTTP client; seeded from testdata.
func FuzzAnswer(f *testing.F) {
	providertest.FuzzAnswers(f, providertest.AnswerFuzz{
		Name: "az",
		New: func(a *providertest.Answers) (llm.Provider, error) {
			return azure.New(provider.Config{Name: "az", BaseURL: a.URL(), APIKey: "k"})
		},
		Seeds: []string{"*.json", "*.sse"},
	})
}
