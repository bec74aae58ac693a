package provider

import "fmt"

// ParamRule documents how an adapter converts one canonical request parameter to its native
// protocol. The rules of every adapter form the parameter conversion matrix in docs/providers.md,
// which a test regenerates and compares; each adapter's own tests check each of its rules.
// Each adapter package publishes its rules as `func ParamRules() []provider.ParamRule`.
type ParamRule struct {
	Param  string // canonical name, as in the OpenAI request: "temperature", "max_tokens", ...
	Native string // native name ("generationConfig.temperature"); empty when dropped or rejected
	Range  string // accepted native range or values, e.g. "0–1"; empty if not applicable
	Action ParamAction
	Note   string // the conversion rule in a few words
}

// ParamAction is what an adapter does with a canonical parameter.
type ParamAction string

// Actions. Drop records a warning on the request (llm.Warn), which reaches the client in the
// x-switchyard-warning header; Reject answers a parameter-class error.
const (
	ParamPass   ParamAction = "pass"   // sent as is, same name
	ParamRename ParamAction = "rename" // sent under another name or shape
	ParamClamp  ParamAction = "clamp"  // limited to the native range
	ParamDrop   ParamAction = "drop"   // not sent; a warning is recorded
	ParamReject ParamAction = "reject" // refused with KindInvalidArgument
)

// Temperature mappings (Config.TemperatureMapping). "" is TemperatureClamp.
const (
	TemperatureClamp  = "clamp"
	TemperatureLinear = "linear"
)

// OpenAIMaxTemperature is the top of the canonical (OpenAI) temperature range, 0–2.
const OpenAIMaxTemperature = 2.0

// ValidateTemperatureMapping reports an unknown temperature_mapping value.
func ValidateTemperatureMapping(mode string) error {
	switch mode {
	case "", TemperatureClamp, TemperatureLinear:
		return nil
	}
	return fmt.Errorf("temperature_mapping: %q is not clamp or linear", mode)
}

// MapTemperature converts a canonical temperature t (OpenAI's 0–2) into a native range
// 0–nativeMax under mode: TemperatureClamp (or "") keeps t and cuts it into the range;
// TemperatureLinear scales it, t × nativeMax / 2, then cuts it into the range. clamped reports
// that the range cut changed the value (the caller warns); the linear scaling itself is the
// configured conversion and is not a warning.
func MapTemperature(mode string, t, nativeMax float64) (v float64, clamped bool) {
	v = t
	if mode == TemperatureLinear {
		v = t * nativeMax / OpenAIMaxTemperature
	}
	c := min(max(v, 0), nativeMax)
	return c, c != v
}

// CanonicalParams lists the canonical parameters every adapter documents, in matrix order.
var CanonicalParams = []string{
	"temperature", "top_p", "max_tokens", "stop", "presence_penalty", "frequency_penalty", "seed", "n",
	"response_format", "tools", "tool_choice", "parallel_tool_calls", "user", "reasoning_effort",
	"image_url", "input_audio", "file", "embeddings.dimensions",
}
