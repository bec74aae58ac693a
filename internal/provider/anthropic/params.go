package anthropic

import "github.com/switchyard/switchyard/internal/provider"

// ParamRules documents how the adapter converts each canonical parameter to the Messages API.
// Drops record an llm.Warn warning; rejects answer KindInvalidArgument before any upstream call.
func ParamRules() []provider.ParamRule {
	return []provider.ParamRule{
		{Param: "temperature", Native: "temperature", Range: "0–1", Action: provider.ParamClamp,
			Note: "temperature_mapping clamp (default): clamped into 0–1 with a warning; linear: t × 0.5 (0–2 → 0–1); dropped with a warning when reasoning_effort turns thinking on"},
		{Param: "top_p", Native: "top_p", Range: "0–1", Action: provider.ParamPass,
			Note: "dropped with a warning when temperature is also set (newer models refuse both) or thinking is on"},
		{Param: "max_tokens", Native: "max_tokens", Range: "≥1", Action: provider.ParamPass,
			Note: "required upstream: option default_max_tokens (4096) when absent, plus the thinking budget when reasoning_effort is set"},
		{Param: "stop", Native: "stop_sequences", Action: provider.ParamRename},
		{Param: "presence_penalty", Action: provider.ParamDrop, Note: "not supported"},
		{Param: "frequency_penalty", Action: provider.ParamDrop, Note: "not supported"},
		{Param: "seed", Action: provider.ParamDrop, Note: "not supported"},
		{Param: "n", Range: "1", Action: provider.ParamReject, Note: "n>1 refused (one answer per request); n=1 accepted"},
		{Param: "response_format", Native: "output_config.format", Range: "json_schema", Action: provider.ParamRename,
			Note: "json_schema → {type: json_schema, schema}; json_object dropped with a warning; text omitted"},
		{Param: "tools", Native: "tools", Action: provider.ParamRename,
			Note: "{name, description, input_schema, strict}; stand-ins from the history's tool calls (with tool_choice none) when absent"},
		{Param: "tool_choice", Native: "tool_choice", Range: "auto, any, tool, none", Action: provider.ParamRename,
			Note: "auto → auto, required → any, named → tool, none → none; required or named refused with reasoning_effort"},
		{Param: "parallel_tool_calls", Native: "tool_choice.disable_parallel_tool_use", Action: provider.ParamRename,
			Note: "false → true on the tool_choice ({type: auto} when none given); true is the default"},
		{Param: "user", Native: "metadata.user_id", Action: provider.ParamRename},
		{Param: "reasoning_effort", Native: "thinking.budget_tokens", Range: "none, minimal, low, medium, high, xhigh", Action: provider.ParamRename,
			Note: "none → off; minimal 1024, low 2048, medium 8192, high 16384, xhigh 32768 tokens, cut below max_tokens (dropped with a warning when under 1024 fits)"},
		{Param: "image_url", Native: "image.source", Range: "jpeg, png, gif, webp", Action: provider.ParamRename,
			Note: "data: URL → base64 source, http(s) → url source; detail ignored"},
		{Param: "input_audio", Action: provider.ParamReject, Note: "no audio input"},
		{Param: "file", Native: "document.source", Range: "PDF, plain text", Action: provider.ParamRename,
			Note: "file_data data: URL → document block (file name as title); file_id refused"},
		{Param: "embeddings.dimensions", Action: provider.ParamReject, Note: "no embeddings endpoint: not an llm.Embedder"},
	}
}
