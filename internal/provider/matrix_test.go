package provider_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/anthropic"
	"github.com/switchyard/switchyard/internal/provider/azure"
	"github.com/switchyard/switchyard/internal/provider/bedrock"
	"github.com/switchyard/switchyard/internal/provider/cohere"
	"github.com/switchyard/switchyard/internal/provider/gemini"
	"github.com/switchyard/switchyard/internal/provider/grpcupstream"
	"github.com/switchyard/switchyard/internal/provider/kserve"
	"github.com/switchyard/switchyard/internal/provider/matrix"
	"github.com/switchyard/switchyard/internal/provider/ollama"
	"github.com/switchyard/switchyard/internal/provider/openai"
)

var update = flag.Bool("update", false, "rewrite the parameter matrix in docs/providers.md")

// columns are the matrix's providers, in column order. Add a line per adapter package.
var columns = []matrix.Column{
	{Name: "openai", Rules: openai.ParamRules()},
	{Name: "azure", Rules: azure.ParamRules()},
	{Name: "anthropic", Rules: anthropic.ParamRules()},
	{Name: "gemini", Rules: gemini.ParamRules()},
	{Name: "cohere", Rules: cohere.ParamRules()},
	{Name: "bedrock", Rules: bedrock.ParamRules()},
	{Name: "ollama", Rules: ollama.ParamRules()},
	{Name: "grpc", Rules: grpcupstream.ParamRules()},
	{Name: "kserve", Rules: kserve.ParamRules()},
}

const docPath = "../../docs/providers.md"

// TestParamMatrix fails when docs/providers.md's parameter matrix differs from the adapters'
// ParamRules, or when an adapter's rules miss a canonical parameter. Run with -update to
// rewrite the table.
func TestParamMatrix(t *testing.T) {
	table, err := matrix.Table(columns)
	if err != nil {
		t.Fatalf("parameter rules: %v", err)
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := matrix.Splice(string(doc), table)
	if err != nil {
		t.Fatalf("%s: %v", docPath, err)
	}
	if *update {
		if err := os.WriteFile(docPath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != string(doc) {
		t.Errorf("%s is stale; run go test ./internal/provider/ -run TestParamMatrix -update\n%s", docPath, lineDiff(string(doc), want))
	}
}

// lineDiff lists the lines that differ between got and want, by position.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			b.WriteString("- " + gl + "\n+ " + wl + "\n")
		}
	}
	return b.String()
}

// TestTemperatureMappingRules: every adapter whose temperature range is bounded and differs from
// OpenAI's 0–2 clamps or scales it under temperature_mapping, and its matrix cell states both
// rules (its own tests check each; see anthropic's TestParamRules).
func TestTemperatureMappingRules(t *testing.T) {
	for _, c := range columns {
		for _, r := range c.Rules {
			if r.Param != "temperature" || r.Action != provider.ParamClamp || r.Range == "0–2" {
				continue
			}
			if !strings.Contains(r.Note, "temperature_mapping clamp (default)") || !strings.Contains(r.Note, "linear:") {
				t.Errorf("%s: temperature range %s differs from OpenAI's 0–2: its rule must state both temperature_mapping rules (\"temperature_mapping clamp (default): …; linear: …\"), got %q", c.Name, r.Range, r.Note)
			}
		}
	}
}

func TestMapTemperature(t *testing.T) {
	cases := []struct {
		mode        string
		t, max      float64
		want        float64
		wantClamped bool
	}{
		{"", 0.7, 1, 0.7, false},
		{"clamp", 0.7, 1, 0.7, false},
		{"clamp", 1.6, 1, 1, true},
		{"clamp", -0.5, 1, 0, true},
		{"linear", 0.7, 1, 0.35, false},
		{"linear", 2, 1, 1, false},
		{"linear", 0, 1, 0, false},
		{"linear", 1.2, 2, 1.2, false}, // a 0–2 upstream: identity
		{"linear", 3, 1, 1, true},      // outside 0–2 (the edge refuses it; adapters still cut it)
	}
	for _, c := range cases {
		got, clamped := provider.MapTemperature(c.mode, c.t, c.max)
		if got != c.want || clamped != c.wantClamped {
			t.Errorf("MapTemperature(%q, %v, %v) = %v, %v; want %v, %v", c.mode, c.t, c.max, got, clamped, c.want, c.wantClamped)
		}
	}
	for _, m := range []string{"", "clamp", "linear"} {
		if err := provider.ValidateTemperatureMapping(m); err != nil {
			t.Errorf("ValidateTemperatureMapping(%q) = %v", m, err)
		}
	}
	if err := provider.ValidateTemperatureMapping("log"); err == nil || !strings.Contains(err.Error(), `"log" is not clamp or linear`) {
		t.Errorf("ValidateTemperatureMapping(log) = %v", err)
	}
}
