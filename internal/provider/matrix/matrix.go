// Package matrix renders the parameter conversion matrix of docs/providers.md from the
// adapters' ParamRules, and checks that a rule list covers every canonical parameter.
package matrix

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/internal/provider"
)

// Column is one provider's rules, as one column of the matrix.
type Column struct {
	Name  string // provider type, e.g. "openai"
	Rules []provider.ParamRule
}

// Validate reports every problem with rules: a canonical parameter (provider.CanonicalParams)
// without a rule, a rule for an unknown parameter, a parameter ruled twice, an unknown action,
// or a pass/rename/clamp rule without a native name.
func Validate(rules []provider.ParamRule) error {
	var errs []error
	seen := map[string]bool{}
	for _, r := range rules {
		switch {
		case !slices.Contains(provider.CanonicalParams, r.Param):
			errs = append(errs, fmt.Errorf("rule for unknown parameter %q", r.Param))
		case seen[r.Param]:
			errs = append(errs, fmt.Errorf("parameter %q ruled twice", r.Param))
		}
		seen[r.Param] = true
		switch r.Action {
		case provider.ParamPass, provider.ParamRename, provider.ParamClamp:
			if r.Native == "" {
				errs = append(errs, fmt.Errorf("parameter %q: action %s without a native name", r.Param, r.Action))
			}
		case provider.ParamDrop, provider.ParamReject:
		default:
			errs = append(errs, fmt.Errorf("parameter %q: unknown action %q", r.Param, r.Action))
		}
	}
	for _, p := range provider.CanonicalParams {
		if !seen[p] {
			errs = append(errs, fmt.Errorf("no rule for canonical parameter %q", p))
		}
	}
	return errors.Join(errs...)
}

// Begin and End delimit the generated table in docs/providers.md; text outside them is kept.
const (
	Begin = "<!-- BEGIN GENERATED PARAMETER MATRIX (go test ./internal/provider/ -run TestParamMatrix -update) -->"
	End   = "<!-- END GENERATED PARAMETER MATRIX -->"
)

// Table renders the matrix as a Markdown table: one row per canonical parameter, one column per
// provider in the given order, each cell "native — range — action — note" (empty parts left
// out). It fails if a column's rules do not Validate.
func Table(cols []Column) (string, error) {
	var errs []error
	byParam := make([]map[string]provider.ParamRule, len(cols))
	for i, c := range cols {
		if err := Validate(c.Rules); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.Name, err))
		}
		byParam[i] = map[string]provider.ParamRule{}
		for _, r := range c.Rules {
			byParam[i][r.Param] = r
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| parameter |")
	for _, c := range cols {
		b.WriteString(" " + c.Name + " |")
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat("---|", len(cols)))
	b.WriteString("\n")
	for _, p := range provider.CanonicalParams {
		b.WriteString("| `" + p + "` |")
		for i := range cols {
			b.WriteString(" " + cell(byParam[i][p]) + " |")
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

func cell(r provider.ParamRule) string {
	var parts []string
	if r.Native != "" {
		parts = append(parts, "`"+r.Native+"`")
	}
	if r.Range != "" {
		parts = append(parts, r.Range)
	}
	parts = append(parts, "**"+string(r.Action)+"**")
	if r.Note != "" {
		parts = append(parts, r.Note)
	}
	return escape(strings.Join(parts, " — "))
}

// escape keeps a cell on one table cell: pipes and line breaks would break the row.
func escape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Splice replaces the text between Begin and End in doc with table. It fails if the markers are
// missing or out of order.
func Splice(doc, table string) (string, error) {
	i := strings.Index(doc, Begin)
	j := strings.Index(doc, End)
	if i < 0 || j < i {
		return "", fmt.Errorf("matrix markers %q … %q missing or out of order", Begin, End)
	}
	return doc[:i+len(Begin)] + "\n" + table + doc[j:], nil
}
