package bedrock_test

import (
	"bytes"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/bedrock"
	"github.com/switchyard/switchyard/internal/provider/bedrock/bedrocktest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// FuzzAnswer feeds arbitrary upstream answers to the SDK's Converse, ConverseStream and
// InvokeModel decoders and the adapter's conversions (see providertest.FuzzAnswers), seeded
// with a Converse answer, an event stream and error bodies.
func FuzzAnswer(f *testing.F) {
	var es bytes.Buffer
	bedrocktest.WriteEvent(&es, "messageStart", map[string]any{"role": "assistant"})
	bedrocktest.WriteEvent(&es, "contentBlockStart", map[string]any{"contentBlockIndex": 1, "start": map[string]any{"toolUse": map[string]any{"toolUseId": "t1", "name": "f"}}})
	bedrocktest.WriteEvent(&es, "contentBlockDelta", map[string]any{"contentBlockIndex": 1, "delta": map[string]any{"toolUse": map[string]any{"input": `{"a":`}}})
	bedrocktest.WriteEvent(&es, "contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"text": "hi"}})
	bedrocktest.WriteEvent(&es, "messageStop", map[string]any{"stopReason": "tool_use"})
	bedrocktest.WriteEvent(&es, "metadata", map[string]any{"usage": map[string]any{"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}})
	bedrocktest.WriteException(&es, "throttlingException", "slow down")
	cfg := testConfig()
	cfg.Name = "fz"
	providertest.FuzzAnswers(f, providertest.AnswerFuzz{
		Name: "fz",
		New: func(a *providertest.Answers) (llm.Provider, error) {
			cfg.BaseURL = a.URL()
			return bedrock.New(cfg)
		},
		Bodies: []string{
			`{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"t","signature":"s"}}},{"text":"hi"},{"toolUse":{"toolUseId":"tu","name":"f","input":{"a":1}}}]}},"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7,"cacheReadInputTokens":1},"metrics":{"latencyMs":5}}`,
			`{"__type":"com.amazon.bedrock#ThrottlingException","message":"Too many requests"}`,
			`{"message":"The provided model identifier is invalid."}`,
			`{"embedding":[0.1,0.2],"inputTextTokenCount":2}`,
			es.String(),
		},
	})
}
