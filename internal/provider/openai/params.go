package openai

import "github.com/switchyard/switchyard/internal/provider"

// ParamRules documents how the adapter converts each canonical parameter: the canonical API is
// OpenAI's, so everything is sent as is, and the upstream validates ranges and model support
// (its 400 comes back as a parameter-class error). Ranges are OpenAI's.
func ParamRules() []provider.ParamRule {
	return []provider.ParamRule{
		{Param: "temperature", Native: "temperature", Range: "0–2", Action: provider.ParamPass},
		{Param: "top_p", Native: "top_p", Range: "0–1", Action: provider.ParamPass},
		{Param: "max_tokens", Native: "max_completion_tokens", Range: "≥1", Action: provider.ParamRename,
			Note: "max_tokens when the client sent max_tokens (older servers and api-versions know only that)"},
		{Param: "stop", Native: "stop", Range: "≤4 strings", Action: provider.ParamPass},
		{Param: "presence_penalty", Native: "presence_penalty", Range: "−2–2", Action: provider.ParamPass},
		{Param: "frequency_penalty", Native: "frequency_penalty", Range: "−2–2", Action: provider.ParamPass},
		{Param: "seed", Native: "seed", Action: provider.ParamPass},
		{Param: "n", Native: "n", Range: "1–128", Action: provider.ParamPass},
		{Param: "response_format", Native: "response_format", Range: "text, json_object, json_schema", Action: provider.ParamPass,
			Note: `json_schema.name defaults to "response"`},
		{Param: "tools", Native: "tools", Range: "function tools", Action: provider.ParamPass},
		{Param: "tool_choice", Native: "tool_choice", Range: "none, auto, required, named function", Action: provider.ParamPass},
		{Param: "parallel_tool_calls", Native: "parallel_tool_calls", Action: provider.ParamPass},
		{Param: "user", Native: "user", Action: provider.ParamPass},
		{Param: "reasoning_effort", Native: "reasoning_effort", Range: "model-dependent", Action: provider.ParamPass},
		{Param: "image_url", Native: "image_url", Range: "http(s) or data: URL", Action: provider.ParamPass, Note: "detail kept"},
		{Param: "input_audio", Native: "input_audio", Range: "wav, mp3", Action: provider.ParamPass},
		{Param: "file", Native: "file", Action: provider.ParamPass},
		{Param: "embeddings.dimensions", Native: "dimensions", Action: provider.ParamPass, Note: "text-embedding-3 and later"},
	}
}
