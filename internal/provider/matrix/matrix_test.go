package matrix

import (
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/provider"
)

func fullRules() []provider.ParamRule {
	rules := make([]provider.ParamRule, len(provider.CanonicalParams))
	for i, p := range provider.CanonicalParams {
		rules[i] = provider.ParamRule{Param: p, Native: p, Action: provider.ParamPass}
	}
	return rules
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name    string
		edit    func([]provider.ParamRule) []provider.ParamRule
		wantErr string
	}{
		{"complete", func(r []provider.ParamRule) []provider.ParamRule { return r }, ""},
		{"missing", func(r []provider.ParamRule) []provider.ParamRule { return r[1:] }, `no rule for canonical parameter "temperature"`},
		{"twice", func(r []provider.ParamRule) []provider.ParamRule { return append(r, r[0]) }, `"temperature" ruled twice`},
		{"unknown param", func(r []provider.ParamRule) []provider.ParamRule {
			return append(r, provider.ParamRule{Param: "top_k", Action: provider.ParamDrop})
		}, `unknown parameter "top_k"`},
		{"unknown action", func(r []provider.ParamRule) []provider.ParamRule { r[0].Action = "mangle"; return r }, `unknown action "mangle"`},
		{"pass without native", func(r []provider.ParamRule) []provider.ParamRule { r[0].Native = ""; return r }, "without a native name"},
		{"drop without native", func(r []provider.ParamRule) []provider.ParamRule {
			r[0] = provider.ParamRule{Param: r[0].Param, Action: provider.ParamDrop}
			return r
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Validate(c.edit(fullRules()))
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("Validate = %v, want nil", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("Validate = %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
}

func TestTable(t *testing.T) {
	a := fullRules()
	a[0] = provider.ParamRule{Param: "temperature", Native: "options.temperature", Range: "0–1", Action: provider.ParamClamp, Note: "a|b"}
	b := fullRules()
	b[0] = provider.ParamRule{Param: "temperature", Action: provider.ParamDrop}
	got, err := Table([]Column{{"x", a}, {"y", b}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2+len(provider.CanonicalParams) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), 2+len(provider.CanonicalParams), got)
	}
	want := []string{
		"| parameter | x | y |",
		"|---|---|---|",
		"| `temperature` | `options.temperature` — 0–1 — **clamp** — a\\|b | **drop** |",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i, lines[i], w)
		}
	}
	if _, err := Table([]Column{{"x", a[1:]}}); err == nil || !strings.Contains(err.Error(), "x: ") {
		t.Errorf("Table with a missing rule = %v, want an error naming the column", err)
	}
}

func TestSplice(t *testing.T) {
	doc := "intro\n" + Begin + "\nold\n" + End + "\noutro\n"
	got, err := Splice(doc, "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n" + Begin + "\nnew\n" + End + "\noutro\n"; got != want {
		t.Errorf("Splice = %q, want %q", got, want)
	}
	if _, err := Splice("no markers", "x"); err == nil {
		t.Error("Splice without markers succeeded")
	}
}
