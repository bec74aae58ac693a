package ollama

import "github.com/switchyard/switchyard/internal/provider"

// ParamRules documents how the adapter converts each canonical parameter to /api/chat and
// /api/embed. Sampling options go into "options"; ranges are not checked by Ollama beyond its
// own parsing, so values are passed as they are.
func ParamRules() []provider.ParamRule {
	return []provider.ParamRule{
		{Param: "temperature", Native: "options.temperature", Range: "≥0", Action: provider.ParamRename},
		{Param: "top_p", Native: "options.top_p", Range: "0–1", Action: provider.ParamRename},
		{Param: "max_tokens", Native: "options.num_predict", Range: "≥1 (−1 unlimited)", Action: provider.ParamRename},
		{Param: "stop", Native: "options.stop", Range: "strings", Action: provider.ParamRename},
		{Param: "presence_penalty", Native: "options.presence_penalty", Action: provider.ParamRename},
		{Param: "frequency_penalty", Native: "options.frequency_penalty", Action: provider.ParamRename},
		{Param: "seed", Native: "options.seed", Action: provider.ParamRename},
		{Param: "n", Action: provider.ParamDrop, Note: "one choice only; warned when n > 1"},
		{Param: "response_format", Native: "format", Range: `"json" or a JSON schema object`, Action: provider.ParamRename,
			Note: `json_object → "json"; json_schema → the schema; text → omitted`},
		{Param: "tools", Native: "tools", Range: "function tools", Action: provider.ParamPass,
			Note: "calls come back whole with object arguments, re-encoded as a JSON string; ids generated when absent"},
		{Param: "tool_choice", Action: provider.ParamDrop,
			Note: `"auto" is the default; "none" omits the tools; "required" and named functions are warned`},
		{Param: "parallel_tool_calls", Action: provider.ParamDrop, Note: "warned when false"},
		{Param: "user", Action: provider.ParamDrop, Note: "no end-user field"},
		{Param: "reasoning_effort", Native: "think", Range: "false, low, medium, high, max", Action: provider.ParamRename,
			Note: "none → false; minimal → low; xhigh → max; thinking returned as reasoning_content"},
		{Param: "image_url", Native: "messages[].images", Range: "data: URLs (base64)", Action: provider.ParamRename,
			Note: "sent as bare base64; http(s) URLs rejected (not fetched)"},
		{Param: "input_audio", Action: provider.ParamReject, Note: "no audio input"},
		{Param: "file", Action: provider.ParamReject, Note: "no file input"},
		{Param: "embeddings.dimensions", Native: "dimensions", Action: provider.ParamPass},
	}
}
