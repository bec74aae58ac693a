package kserve

import (
	"slices"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
)

// Prompt templates (Options["prompt_template"]).
const (
	// templatePlain: system and developer texts first, each followed by a blank line, then one
	// "User: <text>" or "Assistant: <text>" line per turn, and a final "Assistant:".
	templatePlain = "plain"
	// templateChatML: "<|im_start|>{role}\n{text}<|im_end|>\n" per message, then
	// "<|im_start|>assistant\n" (Qwen, many fine-tunes).
	templateChatML = "chatml"
	// templateLlama3: "<|begin_of_text|>", then
	// "<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>" per message, then the
	// assistant header (Llama 3.x).
	templateLlama3 = "llama3"
	// templateRaw: the message texts joined by "\n", without roles, for completion models and
	// models whose server applies its own chat template.
	templateRaw = "raw"
)

var templates = map[string]func([]llm.Message) string{
	templatePlain:  renderPlain,
	templateChatML: renderChatML,
	templateLlama3: renderLlama3,
	templateRaw:    renderRaw,
}

func templateNames() string {
	names := make([]string, 0, len(templates))
	for n := range templates {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// role maps developer to system; other roles are kept.
func role(m *llm.Message) string {
	if m.Role == llm.RoleDeveloper {
		return llm.RoleSystem
	}
	return m.Role
}

func renderPlain(msgs []llm.Message) string {
	var b strings.Builder
	for i := range msgs {
		if role(&msgs[i]) == llm.RoleSystem {
			b.WriteString(msgs[i].Text())
			b.WriteString("\n\n")
		}
	}
	for i := range msgs {
		switch role(&msgs[i]) {
		case llm.RoleUser:
			b.WriteString("User: ")
		case llm.RoleAssistant:
			b.WriteString("Assistant: ")
		default:
			continue
		}
		b.WriteString(msgs[i].Text())
		b.WriteString("\n")
	}
	b.WriteString("Assistant:")
	return b.String()
}

func renderChatML(msgs []llm.Message) string {
	var b strings.Builder
	for i := range msgs {
		b.WriteString("<|im_start|>" + role(&msgs[i]) + "\n" + msgs[i].Text() + "<|im_end|>\n")
	}
	b.WriteString("<|im_start|>assistant\n")
	return b.String()
}

func renderLlama3(msgs []llm.Message) string {
	var b strings.Builder
	b.WriteString("<|begin_of_text|>")
	for i := range msgs {
		b.WriteString("<|start_header_id|>" + role(&msgs[i]) + "<|end_header_id|>\n\n" + msgs[i].Text() + "<|eot_id|>")
	}
	b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	return b.String()
}

func renderRaw(msgs []llm.Message) string {
	texts := make([]string, len(msgs))
	for i := range msgs {
		texts[i] = msgs[i].Text()
	}
	return strings.Join(texts, "\n")
}
