package azure

import (
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/openai"
)

// ParamRules are the openai adapter's rules (Azure speaks the same body), with Azure's notes:
// the deployment's model and the api-version decide what the service accepts, and its 400
// comes back as a parameter-class error.
func ParamRules() []provider.ParamRule {
	rules := openai.ParamRules()
	notes := map[string]string{
		"max_tokens":       "max_tokens when the client sent it; dated api-versions before 2024-09-01-preview know only max_tokens",
		"seed":             "preview api-versions and newer models",
		"reasoning_effort": "reasoning deployments only",
		"input_audio":      "audio deployments; not in the 2024-10-21 schema",
		"file":             "newer api-versions only",
	}
	for i := range rules {
		if n, ok := notes[rules[i].Param]; ok {
			rules[i].Note = n
		}
	}
	return rules
}
