package providertest

import (
	"testing"

	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/matrix"
)

// ParamCheck exercises one parameter rule: it sends the canonical parameter and asserts the
// native request, the llm.Warn warning of a drop, or the KindInvalidArgument error of a reject.
type ParamCheck func(t *testing.T, rule provider.ParamRule)

// CheckParamRules runs checks[rule.Param] for every rule, each as a subtest named after the
// parameter. It fails when rules do not cover every canonical parameter exactly once
// (matrix.Validate), when a rule has no check, and when a check has no rule; so every cell of
// the parameter matrix is tested.
func CheckParamRules(t *testing.T, rules []provider.ParamRule, checks map[string]ParamCheck) {
	t.Helper()
	if err := matrix.Validate(rules); err != nil {
		t.Errorf("ParamRules: %v", err)
	}
	ruled := map[string]bool{}
	for _, r := range rules {
		ruled[r.Param] = true
		check, ok := checks[r.Param]
		if !ok {
			t.Errorf("no check for the rule of %q", r.Param)
			continue
		}
		t.Run(r.Param, func(t *testing.T) { check(t, r) })
	}
	for p := range checks {
		if !ruled[p] {
			t.Errorf("check for %q, which has no rule", p)
		}
	}
}
