package anthropic_test

import (
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/anthropic"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// FuzzAnswer feeds arbitrary upstream answers to the message, stream and error decoders (see
// providertest.FuzzAnswers), seeded from testdata.
func FuzzAnswer(f *testing.F) {
	providertest.FuzzAnswers(f, providertest.AnswerFuzz{
		Name: "fz",
		New: func(a *providertest.Answers) (llm.Provider, error) {
			return anthropic.NewWithClient(provider.Config{Name: "fz", BaseURL: "http://upstream.test"}, a.Client())
		},
		Seeds: []string{"*.json", "*.html", "*.sse"},
		Bodies: []string{
			`{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"redacted_thinking","data":"d"},{"type":"text","text":"hi"},{"type":"tool_use","id":"tu","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4,"cache_read_input_tokens":1}}`,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		},
	})
}
