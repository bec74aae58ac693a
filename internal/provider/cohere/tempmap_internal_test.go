package cohere

import (
	"context"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
)

// TestTemperatureMapping: clamp (the default) keeps a value and cuts it at 1; linear halves it.
func TestTemperatureMapping(t *testing.T) {
	for _, tc := range []struct {
		mode      string
		in, want  float64
		warnCount int
	}{
		{"", 0.7, 0.7, 0}, {"", 1.4, 1, 1}, {provider.TemperatureLinear, 1.4, 0.7, 0}, {provider.TemperatureLinear, 0.7, 0.35, 0},
	} {
		ctx, warnings := llm.WithWarnings(context.Background())
		in := tc.in
		w, err := encodeChat(ctx, &llm.ChatRequest{Model: "m", Temperature: &in,
			Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "x")}}, tc.mode, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := *w.Temperature; got < tc.want-1e-9 || got > tc.want+1e-9 {
			t.Errorf("mapping %q, temperature %g: sent %g, want %g", tc.mode, tc.in, got, tc.want)
		}
		if n := len(warnings.List()); n != tc.warnCount {
			t.Errorf("mapping %q, temperature %g: %d warnings, want %d", tc.mode, tc.in, n, tc.warnCount)
		}
	}
	if _, err := NewWithClient(provider.Config{Name: "c", Type: "cohere", APIKey: "k", TemperatureMapping: "cubic"}, nil); err == nil {
		t.Error("an unknown temperature_mapping was accepted")
	}
}

func TestRerankModels(t *testing.T) {
	p, err := NewWithClient(provider.Config{Name: "c", Type: "cohere", APIKey: "k",
		Models: []string{"command-a-03-2025", "rerank-v3.5", "embed-v4.0", "rerank-multilingual-v3.0"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var _ llm.RerankModelLister = p
	if got := p.RerankModels(); len(got) != 2 || got[0] != "rerank-v3.5" || got[1] != "rerank-multilingual-v3.0" {
		t.Errorf("RerankModels = %q", got)
	}
}
