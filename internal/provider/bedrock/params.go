package bedrock

import "github.com/switchyard/switchyard/internal/provider"

// ParamRules documents how the adapter converts each canonical parameter to Converse (and
// InvokeModel for embeddings). Drops record an llm.Warn warning; rejects answer
// KindInvalidArgument before any upstream call.
func ParamRules() []provider.ParamRule {
	return []provider.ParamRule{
		{Param: "temperature", Native: "inferenceConfig.temperature", Range: "0–1", Action: provider.ParamClamp,
			Note: "temperature_mapping clamp (default): clamped into 0–1 with a warning (the range of Bedrock's chat models); linear: t × 0.5 (0–2 → 0–1)"},
		{Param: "top_p", Native: "inferenceConfig.topP", Range: "0–1", Action: provider.ParamRename},
		{Param: "max_tokens", Native: "inferenceConfig.maxTokens", Range: "≥1", Action: provider.ParamRename,
			Note: "omitted when absent (the model's default)"},
		{Param: "stop", Native: "inferenceConfig.stopSequences", Action: provider.ParamRename},
		{Param: "presence_penalty", Action: provider.ParamDrop, Note: "not in Converse"},
		{Param: "frequency_penalty", Action: provider.ParamDrop, Note: "not in Converse"},
		{Param: "seed", Action: provider.ParamDrop, Note: "not in Converse"},
		{Param: "n", Range: "1", Action: provider.ParamReject, Note: "n>1 refused (one answer per request); n=1 accepted"},
		{Param: "response_format", Action: provider.ParamDrop, Note: "json_object and json_schema dropped with a warning; text omitted"},
		{Param: "tools", Native: "toolConfig.tools[].toolSpec", Action: provider.ParamRename,
			Note: "{name, description, inputSchema.json, strict}; stand-ins from the history's tool calls when absent"},
		{Param: "tool_choice", Native: "toolConfig.toolChoice", Range: "auto, any, tool", Action: provider.ParamRename,
			Note: "auto → auto, required → any, named → tool; none leaves the tools out (auto with a warning when the history has tool calls)"},
		{Param: "parallel_tool_calls", Action: provider.ParamDrop, Note: "false dropped with a warning; true is the default"},
		{Param: "user", Action: provider.ParamDrop, Note: "not in Converse"},
		{Param: "reasoning_effort", Action: provider.ParamDrop,
			Note: "not in Converse (model-specific: option additional_model_request_fields); none accepted silently"},
		{Param: "image_url", Native: "image.source.bytes", Range: "png, jpeg, gif, webp", Action: provider.ParamRename,
			Note: "base64 data: URL decoded to bytes; http(s) URLs refused (Converse takes bytes); detail ignored"},
		{Param: "input_audio", Action: provider.ParamReject, Note: "no audio input"},
		{Param: "file", Action: provider.ParamReject, Note: "document blocks not mapped yet"},
		{Param: "embeddings.dimensions", Native: "dimensions", Range: "Titan v2: 256, 512, 1024", Action: provider.ParamPass,
			Note: "Titan embeddings (InvokeModel, one call per input); refused for cohere.embed-*"},
	}
}
