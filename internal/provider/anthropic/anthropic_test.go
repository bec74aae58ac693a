package anthropic_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/anthropic"
	"github.com/switchyard/switchyard/internal/provider/anthropic/anthropictest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

func TestConformance(t *testing.T) {
	providertest.Run(t, providertest.Harness{
		New:    anthropic.New,
		Config: provider.Config{Name: "claude", Type: "anthropic", APIKey: "sk-ant-test"},
		Model:  "claude-sonnet-4-5",
		Wire:   &anthropictest.Wire{},
		ErrorCases: []providertest.ErrorCase{
			{Name: "529 stream", Stream: true, Err: providertest.UpstreamError{Status: 529, Type: "overloaded_error", Message: "Overloaded"}, Want: llm.KindRateLimited},
			{Name: "402 billing", Err: providertest.UpstreamError{Status: 402, Type: "billing_error", Message: "Your credit balance is too low to access the Anthropic API."}, Want: llm.KindQuotaExceeded, WantCode: "insufficient_quota"},
			{Name: "400 prompt too long", Err: providertest.UpstreamError{Status: 400, Type: "invalid_request_error", Message: "prompt is too long: 208537 tokens > 200000 maximum"}, Want: llm.KindBusiness, WantCode: "context_length_exceeded"},
			{Name: "400 context limit", Err: providertest.UpstreamError{Status: 400, Type: "invalid_request_error", Message: "input length and `max_tokens` exceed context limit: 188240 + 21333 > 200000, decrease input length or `max_tokens` and try again"}, Want: llm.KindBusiness, WantCode: "context_length_exceeded"},
			{Name: "404 not_found_error", Err: providertest.UpstreamError{Status: 404, Type: "not_found_error", Message: "model: claude-nope"}, Want: llm.KindNotFound, WantCode: "model_not_found"},
			{Name: "413 request_too_large", Err: providertest.UpstreamError{Status: 413, Type: "request_too_large", Message: "Request exceeds the maximum allowed number of bytes."}, Want: llm.KindTooLarge},
			{Name: "500 api_error", Err: providertest.UpstreamError{Status: 500, Type: "api_error", Message: "Internal server error"}, Want: llm.KindUpstream},
			{Name: "504 timeout_error", Err: providertest.UpstreamError{Status: 504, Type: "timeout_error", Message: "Request timed out"}, Want: llm.KindTimeout},
			{Name: "429 retry-after and ratelimit headers", Err: providertest.UpstreamError{Status: 429, Type: "rate_limit_error",
				Message: "This request would exceed the rate limit for your organization of 50 requests per minute.",
				Header: http.Header{"Retry-After": {"30"}, "Anthropic-Ratelimit-Requests-Limit": {"50"}, "Anthropic-Ratelimit-Requests-Remaining": {"0"},
					"Anthropic-Ratelimit-Requests-Reset": {"2026-01-01T12:00:30Z"}}}, Want: llm.KindRateLimited, WantRetryAfter: 30 * time.Second},
		},
		// Anthropic has no embeddings endpoint: the provider is not an llm.Embedder.
		Skip: []string{"embeddings_order"},
	})
}
