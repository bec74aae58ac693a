package grpcupstream

import "github.com/switchyard/switchyard/internal/provider"

// ParamRules documents how the adapter converts each canonical parameter: the upstream speaks
// Switchyard's own API, so every parameter is sent as is, in the field of the same name, and the
// upstream validates it (its INVALID_ARGUMENT comes back as a parameter-class error).
func ParamRules() []provider.ParamRule {
	pass := func(param, native, note string) provider.ParamRule {
		return provider.ParamRule{Param: param, Native: native, Action: provider.ParamPass, Note: note}
	}
	return []provider.ParamRule{
		pass("temperature", "temperature", ""),
		pass("top_p", "top_p", ""),
		{Param: "max_tokens", Native: "max_completion_tokens", Action: provider.ParamRename,
			Note: "max_tokens when the client sent max_tokens"},
		pass("stop", "stop", ""),
		pass("presence_penalty", "presence_penalty", ""),
		pass("frequency_penalty", "frequency_penalty", ""),
		pass("seed", "seed", ""),
		pass("n", "n", ""),
		pass("response_format", "response_format", "json_schema kept whole"),
		pass("tools", "tools", ""),
		pass("tool_choice", "tool_choice", ""),
		pass("parallel_tool_calls", "parallel_tool_calls", ""),
		pass("user", "user", ""),
		pass("reasoning_effort", "reasoning_effort", ""),
		pass("image_url", "image_url", "detail kept"),
		pass("input_audio", "input_audio", ""),
		pass("file", "file", ""),
		pass("embeddings.dimensions", "dimensions", ""),
	}
}
