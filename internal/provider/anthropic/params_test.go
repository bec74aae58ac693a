package anthropic_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/anthropic"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

const okAnswer = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}`

// capture is a loopback upstream answering every request with status and body, keeping the
// requests it saw.
type capture struct {
	srv    *httptest.Server
	body   chan []byte
	header chan http.Header
	path   chan string
}

func newCapture(t *testing.T, status int, contentType, answer string) *capture {
	t.Helper()
	c := &capture{body: make(chan []byte, 8), header: make(chan http.Header, 8), path: make(chan string, 8)}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.body <- b
		c.header <- r.Header.Clone()
		c.path <- r.URL.Path
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func newProvider(t *testing.T, cfg provider.Config) llm.Provider {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "claude"
	}
	p, err := anthropic.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// send runs req through a capturing upstream and returns the native request as generic JSON,
// the warnings and the error.
func send(t *testing.T, req llm.ChatRequest) (map[string]any, []string, error) {
	t.Helper()
	return sendWith(t, provider.Config{}, req)
}

// sendWith is send through a provider configured like cfg (BaseURL and APIKey are set here).
func sendWith(t *testing.T, cfg provider.Config, req llm.ChatRequest) (map[string]any, []string, error) {
	t.Helper()
	if req.Messages == nil {
		req.Messages = []llm.Message{llm.TextMessage(llm.RoleUser, "x")}
	}
	req.Model = "claude-sonnet-4-5"
	up := newCapture(t, 200, "application/json", okAnswer)
	cfg.BaseURL, cfg.APIKey = up.srv.URL, "k"
	p := newProvider(t, cfg)
	ctx, warnings := llm.WithWarnings(context.Background())
	if _, err := p.Chat(ctx, &req); err != nil {
		select {
		case <-up.body:
			t.Error("the upstream was called for a refused request")
		default:
		}
		return nil, warnings.List(), err
	}
	var got map[string]any
	if err := json.Unmarshal(<-up.body, &got); err != nil {
		t.Fatal(err)
	}
	return got, warnings.List(), nil
}

// at returns the value at a dotted path of a JSON object ("tool_choice.type"); numeric segments
// index arrays.
func at(v any, path string) any {
	for _, seg := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[seg]
		case []any:
			i := 0
			for _, c := range seg {
				i = i*10 + int(c-'0')
			}
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// expect is what one canonical request must produce: values at paths of the native request
// ("" for absent), warnings containing the given substrings, or a parameter-class error.
type expect struct {
	mapping string // the provider's temperature_mapping
	req     llm.ChatRequest
	values  map[string]string
	warn    []string
	reject  bool
}

func (e expect) check(t *testing.T) {
	t.Helper()
	got, warnings, err := sendWith(t, provider.Config{TemperatureMapping: e.mapping}, e.req)
	if e.reject {
		providertest.WantError(t, err, llm.KindInvalidArgument, "")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range e.values {
		v := at(got, path)
		if want == "" {
			if v != nil {
				t.Errorf("%s = %v, want absent", path, v)
			}
			continue
		}
		if w := jsonValue(t, want); !reflect.DeepEqual(v, w) {
			t.Errorf("%s = %#v, want %s", path, v, want)
		}
	}
	if len(warnings) != len(e.warn) {
		t.Errorf("warnings = %q, want %d containing %q", warnings, len(e.warn), e.warn)
		return
	}
	for i, w := range e.warn {
		if !strings.Contains(warnings[i], w) {
			t.Errorf("warning %q lacks %q", warnings[i], w)
		}
	}
}

// each runs several expectations for one rule as subtests.
func each(cases map[string]expect) providertest.ParamCheck {
	return func(t *testing.T, _ provider.ParamRule) {
		for name, c := range cases {
			t.Run(name, c.check)
		}
	}
}

func userParts(parts ...llm.Part) []llm.Message {
	return []llm.Message{{Role: llm.RoleUser, ContentIsParts: true, Content: parts}}
}

// TestParamRules exercises every rule of ParamRules: the native request, the warning of a drop,
// the error of a reject.
func TestParamRules(t *testing.T) {
	schema := json.RawMessage(`{"type":"object","properties":{"a":{"type":"string"}}}`)
	tools := []llm.Tool{{Name: "f", Description: "does f", Parameters: schema}}
	checks := map[string]providertest.ParamCheck{
		"temperature": each(map[string]expect{
			"in range":          {req: llm.ChatRequest{Temperature: llm.Ptr(0.7)}, values: map[string]string{"temperature": "0.7"}},
			"clamped":           {req: llm.ChatRequest{Temperature: llm.Ptr(1.6)}, values: map[string]string{"temperature": "1"}, warn: []string{"temperature 1.6 was clamped to 1"}},
			"clamp, explicit":   {mapping: "clamp", req: llm.ChatRequest{Temperature: llm.Ptr(1.6)}, values: map[string]string{"temperature": "1"}, warn: []string{"temperature 1.6 was clamped to 1"}},
			"linear":            {mapping: "linear", req: llm.ChatRequest{Temperature: llm.Ptr(0.7)}, values: map[string]string{"temperature": "0.35"}},
			"linear, top":       {mapping: "linear", req: llm.ChatRequest{Temperature: llm.Ptr(2.0)}, values: map[string]string{"temperature": "1"}},
			"linear, zero":      {mapping: "linear", req: llm.ChatRequest{Temperature: llm.Ptr(0.0)}, values: map[string]string{"temperature": "0"}},
			"linear, thinking":  {mapping: "linear", req: llm.ChatRequest{Temperature: llm.Ptr(0.5), ReasoningEffort: "low"}, values: map[string]string{"temperature": ""}, warn: []string{"temperature was dropped"}},
			"dropped, thinking": {req: llm.ChatRequest{Temperature: llm.Ptr(0.5), ReasoningEffort: "low"}, values: map[string]string{"temperature": ""}, warn: []string{"temperature was dropped"}},
		}),
		"top_p": each(map[string]expect{
			"alone":            {req: llm.ChatRequest{TopP: llm.Ptr(0.9)}, values: map[string]string{"top_p": "0.9"}},
			"with temperature": {req: llm.ChatRequest{TopP: llm.Ptr(0.9), Temperature: llm.Ptr(0.2)}, values: map[string]string{"top_p": "", "temperature": "0.2"}, warn: []string{"top_p was dropped"}},
		}),
		"max_tokens": each(map[string]expect{
			"given":   {req: llm.ChatRequest{MaxTokens: llm.Ptr[int32](77)}, values: map[string]string{"max_tokens": "77"}},
			"default": {req: llm.ChatRequest{}, values: map[string]string{"max_tokens": "4096"}},
			"zero":    {req: llm.ChatRequest{MaxTokens: llm.Ptr[int32](0)}, reject: true},
		}),
		"stop": each(map[string]expect{
			"list": {req: llm.ChatRequest{Stop: []string{"a", "b"}}, values: map[string]string{"stop_sequences": `["a","b"]`}},
		}),
		"presence_penalty": each(map[string]expect{
			"dropped": {req: llm.ChatRequest{PresencePenalty: llm.Ptr(0.5)}, values: map[string]string{"presence_penalty": ""}, warn: []string{"presence_penalty"}},
		}),
		"frequency_penalty": each(map[string]expect{
			"dropped": {req: llm.ChatRequest{FrequencyPenalty: llm.Ptr(0.5)}, values: map[string]string{"frequency_penalty": ""}, warn: []string{"frequency_penalty"}},
		}),
		"seed": each(map[string]expect{
			"dropped": {req: llm.ChatRequest{Seed: llm.Ptr[int64](7)}, values: map[string]string{"seed": ""}, warn: []string{"seed"}},
		}),
		"n": each(map[string]expect{
			"one":      {req: llm.ChatRequest{N: llm.Ptr[int32](1)}, values: map[string]string{"n": ""}},
			"rejected": {req: llm.ChatRequest{N: llm.Ptr[int32](2)}, reject: true},
		}),
		"response_format": each(map[string]expect{
			"json_schema": {req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_schema", SchemaName: "x", Schema: schema}},
				values: map[string]string{"output_config.format": `{"type":"json_schema","schema":` + string(schema) + `}`}},
			"json_object": {req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_object"}}, values: map[string]string{"output_config": ""}, warn: []string{"json_object"}},
			"text":        {req: llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "text"}}, values: map[string]string{"output_config": ""}},
		}),
		"tools": each(map[string]expect{
			"function": {req: llm.ChatRequest{Tools: []llm.Tool{{Name: "f", Description: "does f", Parameters: schema, Strict: llm.Ptr(true)}, {Name: "g"}}},
				values: map[string]string{"tools": `[{"name":"f","description":"does f","input_schema":` + string(schema) + `,"strict":true},{"name":"g","input_schema":{"type":"object"}}]`, "tool_choice": ""}},
			"stand-ins for the history": {req: llm.ChatRequest{Messages: []llm.Message{llm.TextMessage("user", "x"),
				{Role: "assistant", ToolCalls: []llm.ToolCall{{ID: "t1", Name: "f", Arguments: `{}`}}}, {Role: "tool", ToolCallID: "t1", Content: []llm.Part{{Type: "text", Text: "r"}}}}},
				values: map[string]string{"tools": `[{"name":"f","input_schema":{"type":"object"}}]`, "tool_choice": `{"type":"none"}`}},
		}),
		"tool_choice": each(map[string]expect{
			"auto":                   {req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "auto"}}, values: map[string]string{"tool_choice": `{"type":"auto"}`}},
			"required":               {req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "required"}}, values: map[string]string{"tool_choice": `{"type":"any"}`}},
			"none":                   {req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "none"}}, values: map[string]string{"tool_choice": `{"type":"none"}`}},
			"named":                  {req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "f"}}, values: map[string]string{"tool_choice": `{"type":"tool","name":"f"}`}},
			"unknown":                {req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "sometimes"}}, reject: true},
			"required with thinking": {req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "required"}, ReasoningEffort: "low"}, reject: true},
		}),
		"parallel_tool_calls": each(map[string]expect{
			"false, no choice":    {req: llm.ChatRequest{Tools: tools, ParallelToolCalls: llm.Ptr(false)}, values: map[string]string{"tool_choice": `{"type":"auto","disable_parallel_tool_use":true}`}},
			"false, named":        {req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "function", Name: "f"}, ParallelToolCalls: llm.Ptr(false)}, values: map[string]string{"tool_choice": `{"type":"tool","name":"f","disable_parallel_tool_use":true}`}},
			"false, none":         {req: llm.ChatRequest{Tools: tools, ToolChoice: &llm.ToolChoice{Mode: "none"}, ParallelToolCalls: llm.Ptr(false)}, values: map[string]string{"tool_choice": `{"type":"none"}`}},
			"true is the default": {req: llm.ChatRequest{Tools: tools, ParallelToolCalls: llm.Ptr(true)}, values: map[string]string{"tool_choice": ""}},
		}),
		"user": each(map[string]expect{
			"metadata": {req: llm.ChatRequest{User: "u-9"}, values: map[string]string{"metadata": `{"user_id":"u-9"}`, "user": ""}},
		}),
		"reasoning_effort": each(map[string]expect{
			"none":              {req: llm.ChatRequest{ReasoningEffort: "none"}, values: map[string]string{"thinking": "", "max_tokens": "4096"}},
			"medium, default":   {req: llm.ChatRequest{ReasoningEffort: "medium"}, values: map[string]string{"thinking": `{"type":"enabled","budget_tokens":8192}`, "max_tokens": "12288"}},
			"high, max_tokens":  {req: llm.ChatRequest{ReasoningEffort: "high", MaxTokens: llm.Ptr[int32](20000)}, values: map[string]string{"thinking.budget_tokens": "16384", "max_tokens": "20000"}},
			"cut to max_tokens": {req: llm.ChatRequest{ReasoningEffort: "high", MaxTokens: llm.Ptr[int32](5000)}, values: map[string]string{"thinking.budget_tokens": "4999"}, warn: []string{"reduced from 16384 to 4999"}},
			"no room":           {req: llm.ChatRequest{ReasoningEffort: "low", MaxTokens: llm.Ptr[int32](1000)}, values: map[string]string{"thinking": "", "max_tokens": "1000"}, warn: []string{"reasoning_effort was dropped"}},
			"unknown":           {req: llm.ChatRequest{ReasoningEffort: "extreme"}, reject: true},
		}),
		"image_url": each(map[string]expect{
			"data url": {req: llm.ChatRequest{Messages: userParts(llm.Part{Type: llm.PartImageURL, ImageURL: "data:image/png;base64,iVBORw0KGgo=", ImageDetail: "high"})},
				values: map[string]string{"messages.0.content.0": `{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}`}},
			"https": {req: llm.ChatRequest{Messages: userParts(llm.Part{Type: llm.PartImageURL, ImageURL: "https://x.test/a.jpg"})},
				values: map[string]string{"messages.0.content.0": `{"type":"image","source":{"type":"url","url":"https://x.test/a.jpg"}}`}},
			"bmp":     {req: llm.ChatRequest{Messages: userParts(llm.Part{Type: llm.PartImageURL, ImageURL: "data:image/bmp;base64,Qk0="})}, reject: true},
			"ftp url": {req: llm.ChatRequest{Messages: userParts(llm.Part{Type: llm.PartImageURL, ImageURL: "ftp://x.test/a.png"})}, reject: true},
		}),
		"input_audio": each(map[string]expect{
			"rejected": {req: llm.ChatRequest{Messages: userParts(llm.Part{Type: llm.PartInputAudio, AudioData: "UklGRg==", AudioFormat: "wav"})}, reject: true},
		}),
		"file": each(map[string]expect{
			"pdf": {req: llm.ChatRequest{Messages: userParts(llm.Part{Type: llm.PartFile, FileData: "data:application/pdf;base64,JVBERi0=", FileName: "a.pdf"})},
				values: map[string]string{"messages.0.content.0": `{"type":"document","title":"a.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}`}},
			"text": {req: llm.ChatRequest{Messages: userParts(llm.Part{Type: llm.PartFile, FileData: "data:text/plain;base64,aGVsbG8="})},
				values: map[string]string{"messages.0.content.0": `{"type":"document","source":{"type":"text","media_type":"text/plain","data":"hello"}}`}},
			"file id": {req: llm.ChatRequest{Messages: userParts(llm.Part{Type: llm.PartFile, FileID: "file-1"})}, reject: true},
		}),
		"embeddings.dimensions": func(t *testing.T, _ provider.ParamRule) {
			if _, ok := newProvider(t, provider.Config{}).(llm.Embedder); ok {
				t.Error("the Anthropic provider is an llm.Embedder; the server would send it embedding requests")
			}
		},
	}
	providertest.CheckParamRules(t, anthropic.ParamRules(), checks)
}
