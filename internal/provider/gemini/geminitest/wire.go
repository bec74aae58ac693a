// Package geminitest is the upstream side of the Gemini API for tests: a providertest.Wire
// that renders canonical answers in the native protocol and reads the adapter's native requests
// back. It is written independently of the gemini adapter, so a misreading is not mirrored; the
// conformance suite and providertest.NewUpstream (end-to-end tests) both use it.
package geminitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// Wire speaks the Gemini API for the conformance suite. It is written from the API's
// documentation and protos, independently of the adapter: requests are read as generic JSON,
// answers written as literal JSON objects.
type Wire struct {
	mu      sync.Mutex
	streams map[io.Writer]*wireStream
}

// wireStream holds what a streamed answer has not written yet: Gemini sends each function
// call whole, and the finishReason together with the last usageMetadata.
type wireStream struct {
	calls  map[int32]*llm.ToolCall
	finish map[string]any // the pending last event
}

func NewWire() *Wire { return &Wire{streams: map[io.Writer]*wireStream{}} }

type obj = map[string]any

func (g *Wire) Decode(r *http.Request, body []byte) (*providertest.Call, error) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1beta/models/")
	if !ok || r.Method != http.MethodPost {
		return nil, fmt.Errorf("unexpected %s %s", r.Method, r.URL.Path)
	}
	model, method, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, fmt.Errorf("no method in %s", r.URL.Path)
	}
	var m obj
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	switch method {
	case "generateContent", "streamGenerateContent":
		stream := method == "streamGenerateContent"
		if stream && r.URL.Query().Get("alt") != "sse" {
			return nil, fmt.Errorf("stream without alt=sse: %s", r.URL.RawQuery)
		}
		req, err := decodeGenerate(model, m)
		return &providertest.Call{Op: "chat", Stream: stream, Chat: req}, err
	case "embedContent":
		req := &llm.EmbeddingRequest{Model: model, Texts: []string{embedText(m)}, Dimensions: int32Field(m, "outputDimensionality")}
		return &providertest.Call{Op: "embed", Embed: req}, nil
	case "batchEmbedContents":
		req := &llm.EmbeddingRequest{Model: model}
		for _, x := range list(m["requests"]) {
			item := x.(obj)
			if item["model"] != "models/"+model {
				return nil, fmt.Errorf("batch item model %v, want models/%s", item["model"], model)
			}
			req.Texts = append(req.Texts, embedText(item))
			req.Dimensions = int32Field(item, "outputDimensionality")
		}
		return &providertest.Call{Op: "embed", Embed: req}, nil
	}
	return nil, fmt.Errorf("unknown method %q", method)
}

func decodeGenerate(model string, m obj) (*llm.ChatRequest, error) {
	req := &llm.ChatRequest{Model: model}
	if si, ok := m["systemInstruction"].(obj); ok {
		var texts []string
		for _, p := range list(si["parts"]) {
			texts = append(texts, p.(obj)["text"].(string))
		}
		req.Messages = append(req.Messages, llm.TextMessage(llm.RoleSystem, strings.Join(texts, "\n")))
	}
	for _, c := range list(m["contents"]) {
		turn := c.(obj)
		switch turn["role"] {
		case "user":
			user := llm.Message{Role: llm.RoleUser}
			for _, x := range list(turn["parts"]) {
				p := x.(obj)
				switch {
				case p["functionResponse"] != nil:
					fr := p["functionResponse"].(obj)
					resp := fr["response"].(obj)
					text, ok := resp["result"].(string)
					if !ok || len(resp) != 1 {
						b, _ := json.Marshal(resp)
						text = string(b)
					}
					id, _ := fr["id"].(string)
					req.Messages = append(req.Messages, llm.Message{Role: llm.RoleTool, ToolCallID: id, Name: fr["name"].(string), Content: []llm.Part{{Type: llm.PartText, Text: text}}})
				case p["text"] != nil:
					user.Content = append(user.Content, llm.Part{Type: llm.PartText, Text: p["text"].(string)})
				case p["inlineData"] != nil:
					d := p["inlineData"].(obj)
					user.Content = append(user.Content, llm.Part{Type: llm.PartImageURL, ImageURL: "data:" + d["mimeType"].(string) + ";base64," + d["data"].(string)})
					user.ContentIsParts = true
				case p["fileData"] != nil:
					user.Content = append(user.Content, llm.Part{Type: llm.PartImageURL, ImageURL: p["fileData"].(obj)["fileUri"].(string)})
					user.ContentIsParts = true
				default:
					return nil, fmt.Errorf("unexpected user part %v", p)
				}
			}
			if len(user.Content) > 0 {
				user.ContentIsParts = user.ContentIsParts || len(user.Content) > 1
				req.Messages = append(req.Messages, user)
			}
		case "model":
			msg := llm.Message{Role: llm.RoleAssistant}
			for _, x := range list(turn["parts"]) {
				p := x.(obj)
				if fc, ok := p["functionCall"].(obj); ok {
					args, _ := json.Marshal(fc["args"])
					id, _ := fc["id"].(string)
					msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: id, Name: fc["name"].(string), Arguments: string(args)})
				} else if t, ok := p["text"].(string); ok {
					msg.Content = append(msg.Content, llm.Part{Type: llm.PartText, Text: t})
				}
			}
			req.Messages = append(req.Messages, msg)
		default:
			return nil, fmt.Errorf("unexpected role %v", turn["role"])
		}
	}
	if gc, ok := m["generationConfig"].(obj); ok {
		req.Temperature = floatField(gc, "temperature")
		req.TopP = floatField(gc, "topP")
		req.MaxTokens = int32Field(gc, "maxOutputTokens")
		req.N = int32Field(gc, "candidateCount")
		for _, s := range list(gc["stopSequences"]) {
			req.Stop = append(req.Stop, s.(string))
		}
	}
	for _, t := range list(m["tools"]) {
		for _, x := range list(t.(obj)["functionDeclarations"]) {
			d := x.(obj)
			tool := llm.Tool{Name: d["name"].(string)}
			tool.Description, _ = d["description"].(string)
			if s, ok := d["parametersJsonSchema"]; ok {
				tool.Parameters, _ = json.Marshal(s)
			}
			req.Tools = append(req.Tools, tool)
		}
	}
	if tc, ok := m["toolConfig"].(obj); ok {
		fc := tc["functionCallingConfig"].(obj)
		modes := map[string]string{"AUTO": "auto", "NONE": "none", "ANY": "required"}
		req.ToolChoice = &llm.ToolChoice{Mode: modes[fc["mode"].(string)]}
		if names := list(fc["allowedFunctionNames"]); len(names) == 1 {
			req.ToolChoice = &llm.ToolChoice{Mode: "function", Name: names[0].(string)}
		}
	}
	return req, nil
}

func embedText(m obj) string {
	parts := list(m["content"].(obj)["parts"])
	if len(parts) == 0 {
		return ""
	}
	t, _ := parts[0].(obj)["text"].(string)
	return t
}

func list(v any) []any { l, _ := v.([]any); return l }

func floatField(m obj, k string) *float64 {
	if f, ok := m[k].(float64); ok {
		return &f
	}
	return nil
}

func int32Field(m obj, k string) *int32 {
	if f, ok := m[k].(float64); ok {
		return llm.Ptr(int32(f))
	}
	return nil
}

var nativeFinish = map[string]string{
	llm.FinishStop: "STOP", llm.FinishToolCalls: "STOP", llm.FinishLength: "MAX_TOKENS", llm.FinishContentFilter: "SAFETY",
}

func usageMetadata(u *llm.Usage) obj {
	return obj{
		"promptTokenCount": u.PromptTokens, "candidatesTokenCount": u.CompletionTokens - u.ReasoningTokens,
		"thoughtsTokenCount": u.ReasoningTokens, "cachedContentTokenCount": u.CachedTokens, "totalTokenCount": u.TotalTokens,
		"promptTokensDetails": []obj{{"modality": "TEXT", "tokenCount": u.PromptTokens}},
	}
}

func callPart(tc llm.ToolCall) obj {
	var args any
	if err := json.Unmarshal([]byte(tc.Arguments), &args); err != nil {
		panic(err)
	}
	return obj{"functionCall": obj{"id": tc.ID, "name": tc.Name, "args": args}}
}

func (g *Wire) WriteChat(w http.ResponseWriter, resp *llm.ChatResponse) {
	var cands []obj
	for _, ch := range resp.Choices {
		var parts []obj
		if ch.ReasoningContent != nil {
			parts = append(parts, obj{"text": *ch.ReasoningContent, "thought": true})
		}
		if ch.Content != nil {
			parts = append(parts, obj{"text": *ch.Content})
		}
		for _, tc := range ch.ToolCalls {
			parts = append(parts, callPart(tc))
		}
		cands = append(cands, obj{"content": obj{"role": "model", "parts": parts}, "finishReason": nativeFinish[ch.FinishReason], "index": ch.Index})
	}
	answer := obj{"candidates": cands, "modelVersion": resp.Model, "responseId": "mJ0kaZ3yLbKt1dkP0e2XmAk"}
	if resp.Usage != nil {
		answer["usageMetadata"] = usageMetadata(resp.Usage)
	}
	writeJSON(w, http.StatusOK, answer)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	b, _ := json.MarshalIndent(v, "", "  ")
	w.Write(b)
}

func (g *Wire) StartStream(w http.ResponseWriter) {
	g.mu.Lock()
	g.streams[w] = &wireStream{calls: map[int32]*llm.ToolCall{}}
	g.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
}

func (g *Wire) state(w io.Writer) *wireStream {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.streams[w]
}

func writeEvent(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "data: %s\r\n\r\n", b) // Gemini ends SSE lines with CRLF
}

func (g *Wire) WriteChunk(w io.Writer, c *llm.Chunk) {
	st := g.state(w)
	if c.Usage != nil && len(c.Choices) == 0 {
		if st.finish != nil {
			st.finish["usageMetadata"] = usageMetadata(c.Usage)
			writeEvent(w, st.finish)
			st.finish = nil
			return
		}
		writeEvent(w, obj{"usageMetadata": usageMetadata(c.Usage), "modelVersion": c.Model})
		return
	}
	for _, ch := range c.Choices {
		for _, d := range ch.ToolCalls {
			tc := st.calls[d.Index]
			if tc == nil {
				tc = &llm.ToolCall{}
				st.calls[d.Index] = tc
			}
			tc.ID += d.ID
			tc.Name += d.Name
			tc.Arguments += d.Arguments
		}
		var parts []obj
		if ch.ReasoningContent != nil {
			parts = append(parts, obj{"text": *ch.ReasoningContent, "thought": true})
		}
		if ch.Content != nil {
			parts = append(parts, obj{"text": *ch.Content})
		}
		if ch.FinishReason != "" {
			idx := make([]int32, 0, len(st.calls))
			for i := range st.calls {
				idx = append(idx, i)
			}
			slices.Sort(idx)
			for _, i := range idx {
				parts = append(parts, callPart(*st.calls[i]))
			}
			if len(parts) == 0 {
				parts = append(parts, obj{"text": ""})
			}
			st.finish = obj{"candidates": []obj{{"content": obj{"role": "model", "parts": parts}, "finishReason": nativeFinish[ch.FinishReason], "index": ch.Index}},
				"modelVersion": c.Model, "responseId": "nJ0kaZ3yLbKt1dkP0e2XmAk"}
			continue
		}
		if len(parts) > 0 {
			writeEvent(w, obj{"candidates": []obj{{"content": obj{"role": "model", "parts": parts}, "index": ch.Index}},
				"usageMetadata": obj{"promptTokenCount": 21, "totalTokenCount": 21}, "modelVersion": c.Model, "responseId": "nJ0kaZ3yLbKt1dkP0e2XmAk"})
		}
	}
}

// rpcStatus names google.rpc codes by HTTP status, as the Gemini API pairs them.
var rpcStatus = map[int]string{
	400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
	429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

func statusBody(e *providertest.UpstreamError, code int) obj {
	status := rpcStatus[code]
	if e.Type != "" && strings.ToUpper(e.Type) == e.Type {
		status = e.Type // a google.rpc code given by the case
	}
	st := obj{"code": code, "message": e.Message, "status": status}
	if e.Code != "" {
		st["details"] = []obj{{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": e.Code, "domain": "googleapis.com",
			"metadata": obj{"service": "generativelanguage.googleapis.com"}}}
	}
	return obj{"error": st}
}

func (g *Wire) WriteStreamError(w io.Writer, e *providertest.UpstreamError) {
	code := e.Status
	if code == 0 {
		code = 500
	}
	writeEvent(w, statusBody(e, code))
}

func (g *Wire) EndStream(w io.Writer) {
	st := g.state(w)
	if st != nil && st.finish != nil {
		writeEvent(w, st.finish)
		st.finish = nil
	}
	g.mu.Lock()
	delete(g.streams, w)
	g.mu.Unlock()
}

func (g *Wire) WriteEmbeddings(w http.ResponseWriter, resp *llm.EmbeddingResponse, order []int) {
	// batchEmbedContents answers positionally, so order cannot be expressed.
	if len(resp.Vectors) == 1 {
		writeJSON(w, http.StatusOK, obj{"embedding": obj{"values": resp.Vectors[0]}})
		return
	}
	var embs []obj
	for _, v := range resp.Vectors {
		embs = append(embs, obj{"values": v})
	}
	writeJSON(w, http.StatusOK, obj{"embeddings": embs})
}

// googleErrorPage is the HTML a Google front end answers with when the request never reached
// the API (too large, bad gateway).
const googleErrorPage = `<!DOCTYPE html>
<html lang=en>
  <meta charset=utf-8>
  <title>Error %d (%s)!!1</title>
  <p><b>%d.</b> <ins>That’s an error.</ins>
  <p>%s  <ins>That’s all we know.</ins>
`

func (g *Wire) WriteError(w http.ResponseWriter, e *providertest.UpstreamError) {
	for k, v := range e.Header {
		w.Header()[k] = v
	}
	switch e.Status {
	case 413, 502, 529:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(e.Status)
		fmt.Fprintf(w, googleErrorPage, e.Status, http.StatusText(e.Status), e.Status, e.Message)
		return
	}
	writeJSON(w, e.Status, statusBody(e, e.Status))
}
