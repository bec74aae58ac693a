package bedrock_test

import (
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/bedrock"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// TestNoCredentials: a credential chain that finds nothing is an authentication error, not an
// unreachable upstream (which the router would retry and count against the breaker).
func TestNoCredentials(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	p, err := bedrock.New(provider.Config{Name: "aws", BaseURL: "http://127.0.0.1:1", Options: map[string]string{"region": "us-east-1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Chat(t.Context(), &llm.ChatRequest{Model: model, Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "x")}})
	providertest.WantError(t, err, llm.KindUnauthenticated, "aws")
}
