package kserve

import (
	"fmt"
	"strconv"
	"strings"
)

// Option keys this package reads from provider.Config.Options, each also settable per model as
// "<model>/<key>" (Triton model names contain no "/").
const (
	optTemplate         = "prompt_template"
	optTextInput        = "text_input"
	optTextOutput       = "text_output"
	optMaxTokensInput   = "max_tokens_input"
	optTemperatureInput = "temperature_input"
	optTopPInput        = "top_p_input"
	optStopInput        = "stop_input"
	optStreamInput      = "stream_input"
	optSeedInput        = "seed_input"
	optPresenceInput    = "presence_penalty_input"
	optFrequencyInput   = "frequency_penalty_input"
	optTokensOutput     = "completion_tokens_output"
	optDefaultMaxTokens = "default_max_tokens"
	optStripPrompt      = "strip_prompt"
	optEmbedInput       = "embedding_input"
	optEmbedOutput      = "embedding_output"
	optModelVersion     = "model_version"
)

var ownOptions = []string{optTemplate, optTextInput, optTextOutput, optMaxTokensInput, optTemperatureInput, optTopPInput,
	optStopInput, optStreamInput, optSeedInput, optPresenceInput, optFrequencyInput, optTokensOutput, optDefaultMaxTokens,
	optStripPrompt, optEmbedInput, optEmbedOutput, optModelVersion}

// DefaultMaxTokens is sent as max_tokens when the request sets none (TensorRT-LLM requires it).
const DefaultMaxTokens = 1024

// modelConfig is the tensor mapping and prompt template of one model. An empty tensor name
// means the model has no such input: the parameter is dropped with a warning.
type modelConfig struct {
	template                                             string
	textIn, textOut                                      string
	maxTokensIn, temperatureIn, topPIn, stopIn, streamIn string
	seedIn, presenceIn, frequencyIn                      string
	tokensOut                                            string
	defaultMaxTokens                                     int32
	stripPrompt                                          bool
	embedIn, embedOut                                    string
	version                                              string
}

// defaults are TensorRT-LLM's ensemble model's tensor names.
func defaults() modelConfig {
	return modelConfig{
		template: templatePlain, textIn: "text_input", textOut: "text_output", maxTokensIn: "max_tokens",
		temperatureIn: "temperature", topPIn: "top_p", stopIn: "stop_words", streamIn: "stream",
		defaultMaxTokens: DefaultMaxTokens, stripPrompt: true, embedIn: "text_input", embedOut: "embedding",
	}
}

// set applies one option to c.
func (c *modelConfig) set(key, v string) error {
	v = strings.TrimSpace(v)
	switch key {
	case optTemplate:
		if _, ok := templates[v]; !ok {
			return fmt.Errorf("unknown template %q (known: %s)", v, templateNames())
		}
		c.template = v
	case optTextInput:
		c.textIn = v
	case optTextOutput:
		c.textOut = v
	case optMaxTokensInput:
		c.maxTokensIn = v
	case optTemperatureInput:
		c.temperatureIn = v
	case optTopPInput:
		c.topPIn = v
	case optStopInput:
		c.stopIn = v
	case optStreamInput:
		c.streamIn = v
	case optSeedInput:
		c.seedIn = v
	case optPresenceInput:
		c.presenceIn = v
	case optFrequencyInput:
		c.frequencyIn = v
	case optTokensOutput:
		c.tokensOut = v
	case optDefaultMaxTokens:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			return fmt.Errorf("want a positive integer")
		}
		c.defaultMaxTokens = int32(n)
	case optStripPrompt:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return err
		}
		c.stripPrompt = b
	case optEmbedInput:
		c.embedIn = v
	case optEmbedOutput:
		c.embedOut = v
	case optModelVersion:
		c.version = v
	default:
		return fmt.Errorf("unknown option")
	}
	if (key == optTextInput || key == optTextOutput) && v == "" {
		return fmt.Errorf("must not be empty")
	}
	return nil
}

// configs holds the base configuration and the per-model ones.
type configs struct {
	base     modelConfig
	perModel map[string]modelConfig
}

func (cs *configs) of(model string) *modelConfig {
	if c, ok := cs.perModel[model]; ok {
		return &c
	}
	return &cs.base
}

// parseConfigs reads this package's options (the connection options are grpcupstream's).
func parseConfigs(opts map[string]string) (configs, error) {
	cs := configs{base: defaults(), perModel: map[string]modelConfig{}}
	scoped := map[string]map[string]string{}
	for k, v := range opts {
		model, key, ok := strings.Cut(k, "/")
		if !ok {
			key, model = k, ""
		}
		if !isOwn(key) {
			continue // a connection option, validated by grpcupstream.Dial
		}
		if model == "" {
			if err := cs.base.set(key, v); err != nil {
				return cs, fmt.Errorf("option %s=%q: %w", k, v, err)
			}
			continue
		}
		if scoped[model] == nil {
			scoped[model] = map[string]string{}
		}
		scoped[model][key] = v
	}
	for model, kv := range scoped {
		c := cs.base
		for key, v := range kv {
			if err := c.set(key, v); err != nil {
				return cs, fmt.Errorf("option %s/%s=%q: %w", model, key, v, err)
			}
		}
		cs.perModel[model] = c
	}
	return cs, nil
}

func isOwn(key string) bool {
	for _, o := range ownOptions {
		if o == key {
			return true
		}
	}
	return false
}
