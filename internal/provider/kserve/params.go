package kserve

import "github.com/switchyard/switchyard/internal/provider"

// ParamRules documents how the adapter converts each canonical parameter into input tensors
// (default names: TensorRT-LLM's ensemble; each is configurable, see the package documentation).
// Parameters whose tensor is not configured are dropped with a warning; what the protocol cannot
// express (tools, images, several choices, structured output) is refused.
func ParamRules() []provider.ParamRule {
	drop := func(param, note string) provider.ParamRule {
		return provider.ParamRule{Param: param, Action: provider.ParamDrop, Note: note}
	}
	reject := func(param, note string) provider.ParamRule {
		return provider.ParamRule{Param: param, Action: provider.ParamReject, Note: note}
	}
	return []provider.ParamRule{
		{Param: "temperature", Native: "temperature", Range: "FP32 tensor", Action: provider.ParamRename, Note: "tensor temperature_input"},
		{Param: "top_p", Native: "top_p", Range: "FP32 tensor", Action: provider.ParamRename, Note: "tensor top_p_input"},
		{Param: "max_tokens", Native: "max_tokens", Range: "INT32 tensor", Action: provider.ParamRename,
			Note: "tensor max_tokens_input; default_max_tokens (1024) when unset"},
		{Param: "stop", Native: "stop_words", Range: "BYTES tensor [1, n]", Action: provider.ParamRename, Note: "tensor stop_input"},
		drop("presence_penalty", "sent as an FP32 tensor when presence_penalty_input is set"),
		drop("frequency_penalty", "sent as an FP32 tensor when frequency_penalty_input is set"),
		drop("seed", "sent as a UINT64 tensor when seed_input is set"),
		reject("n", "n > 1; one choice per request"),
		reject("response_format", "json_object and json_schema; text is accepted"),
		reject("tools", "the protocol has no tool calls"),
		reject("tool_choice", "required and named functions; none and auto are accepted"),
		drop("parallel_tool_calls", ""),
		drop("user", ""),
		drop("reasoning_effort", ""),
		reject("image_url", "text-only prompt"),
		reject("input_audio", "text-only prompt"),
		reject("file", "text-only prompt"),
		reject("embeddings.dimensions", "the model's output size is fixed"),
	}
}
