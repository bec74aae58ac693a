// Package bedrocktest is a fake Bedrock runtime for tests: a providertest.Wire written from the
// Bedrock API reference (Converse, ConverseStream, InvokeModel, the event-stream framing and the
// restJson1 error shape), not from the SDK's serializers, and a SigV4 check that recomputes each
// request's signature from a known secret.
package bedrocktest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// Test credentials and region.
const (
	AccessKeyID     = "AKIDEXAMPLE"
	SecretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	Region          = "us-east-1"
)

// CheckSigV4 recomputes the SigV4 signature of r (service "bedrock", the given region and
// credentials, the headers the request says it signed, the SHA-256 of body) and returns an error
// unless it equals the request's Authorization header.
func CheckSigV4(r *http.Request, body []byte, accessKey, secret, region string) error {
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return fmt.Errorf("authorization %q is not SigV4", auth)
	}
	var signed []string
	var scope string
	for _, f := range strings.Split(strings.TrimPrefix(auth, algo), ", ") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "Credential":
			scope = v
		case "SignedHeaders":
			signed = strings.Split(v, ";")
		}
	}
	if want := accessKey + "/"; !strings.HasPrefix(scope, want) || !strings.HasSuffix(scope, "/"+region+"/bedrock/aws4_request") {
		return fmt.Errorf("credential scope %q, want %s…/%s/bedrock/aws4_request", scope, want, region)
	}
	tm, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("x-amz-date: %v", err)
	}
	u, err := url.Parse("http://" + r.Host + r.RequestURI)
	if err != nil {
		return err
	}
	req := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}, ContentLength: r.ContentLength}
	for _, h := range signed {
		if h == "host" || h == "content-length" {
			continue
		}
		vs := r.Header.Values(h)
		if len(vs) == 0 {
			return fmt.Errorf("signed header %q is missing", h)
		}
		req.Header[http.CanonicalHeaderKey(h)] = vs
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", region, tm); err != nil {
		return err
	}
	if got := req.Header.Get("Authorization"); got != auth {
		return fmt.Errorf("signature mismatch:\n got  %s\n want %s", auth, got)
	}
	return nil
}

// Check is a providertest Harness.Check verifying the signature with the test credentials.
func Check(t testing.TB, r *http.Request, body []byte) {
	if err := CheckSigV4(r, body, AccessKeyID, SecretAccessKey, Region); err != nil {
		t.Errorf("SigV4: %v", err)
	}
}

// Wire speaks the Bedrock runtime's protocol. Its zero value is ready.
type Wire struct{}

var _ providertest.Wire = (*Wire)(nil)

type block struct {
	Text  *string `json:"text,omitempty"`
	Image *struct {
		Format string `json:"format"`
		Source struct {
			Bytes []byte `json:"bytes"` // base64 in JSON, as the API's blob type
		} `json:"source"`
	} `json:"image,omitempty"`
	ToolUse *struct {
		ToolUseID string          `json:"toolUseId"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	} `json:"toolUse,omitempty"`
	ToolResult *struct {
		ToolUseID string `json:"toolUseId"`
		Content   []struct {
			Text *string         `json:"text"`
			JSON json.RawMessage `json:"json"`
		} `json:"content"`
	} `json:"toolResult,omitempty"`
	ReasoningContent *struct {
		ReasoningText struct {
			Text      string `json:"text"`
			Signature string `json:"signature"`
		} `json:"reasoningText"`
	} `json:"reasoningContent,omitempty"`
}

// ConverseRequest is the Converse request body, as the API reference gives it.
type ConverseRequest struct {
	System []struct {
		Text string `json:"text"`
	} `json:"system"`
	Messages []struct {
		Role    string  `json:"role"`
		Content []block `json:"content"`
	} `json:"messages"`
	InferenceConfig *struct {
		MaxTokens     *int32       `json:"maxTokens"`
		Temperature   *json.Number `json:"temperature"`
		TopP          *json.Number `json:"topP"`
		StopSequences []string     `json:"stopSequences"`
	} `json:"inferenceConfig"`
	ToolConfig *struct {
		Tools []struct {
			ToolSpec struct {
				Name        string `json:"name"`
				Description string `json:"description"`
				InputSchema struct {
					JSON json.RawMessage `json:"json"`
				} `json:"inputSchema"`
			} `json:"toolSpec"`
		} `json:"tools"`
		ToolChoice map[string]struct {
			Name string `json:"name"`
		} `json:"toolChoice"`
	} `json:"toolConfig"`
	GuardrailConfig *struct {
		GuardrailIdentifier string `json:"guardrailIdentifier"`
		GuardrailVersion    string `json:"guardrailVersion"`
		Trace               string `json:"trace"`
	} `json:"guardrailConfig"`
	AdditionalModelRequestFields json.RawMessage `json:"additionalModelRequestFields"`
}

// ParsePath splits /model/{modelId}/{op} into the model id (unescaped) and the operation
// (converse, converse-stream, invoke).
func ParsePath(r *http.Request) (model, op string, err error) {
	parts := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if len(parts) != 3 || parts[0] != "model" {
		return "", "", fmt.Errorf("path %q is not /model/{modelId}/{operation}", r.URL.EscapedPath())
	}
	model, err = url.PathUnescape(parts[1])
	return model, parts[2], err
}

// float32Number reads a float the SDK sent from a float32 as the decimal it was written as.
func float32Number(n *json.Number) *float64 {
	if n == nil {
		return nil
	}
	f, err := strconv.ParseFloat(string(*n), 32)
	if err != nil {
		return nil
	}
	g, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'g', -1, 32), 64)
	return &g
}

// Decode reads a Converse, ConverseStream or InvokeModel (Titan or Cohere embeddings) request.
func (Wire) Decode(r *http.Request, body []byte) (*providertest.Call, error) {
	model, op, err := ParsePath(r)
	if err != nil {
		return nil, err
	}
	switch op {
	case "invoke":
		var e struct {
			InputText  *string  `json:"inputText"`
			Dimensions *int32   `json:"dimensions"`
			Texts      []string `json:"texts"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			return nil, err
		}
		req := &llm.EmbeddingRequest{Model: model, Texts: e.Texts, Dimensions: e.Dimensions}
		if e.InputText != nil {
			req.Texts = []string{*e.InputText}
		}
		return &providertest.Call{Op: "embed", Embed: req}, nil
	case "converse", "converse-stream":
	default:
		return nil, fmt.Errorf("unknown operation %q", op)
	}
	var cr ConverseRequest
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, err
	}
	req := &llm.ChatRequest{Model: model}
	for _, s := range cr.System {
		req.Messages = append(req.Messages, llm.TextMessage(llm.RoleSystem, s.Text))
	}
	for _, m := range cr.Messages {
		msg := llm.Message{Role: m.Role}
		for _, b := range m.Content {
			switch {
			case b.Text != nil:
				msg.Content = append(msg.Content, llm.Part{Type: llm.PartText, Text: *b.Text})
			case b.Image != nil:
				msg.ContentIsParts = true
				msg.Content = append(msg.Content, llm.Part{Type: llm.PartImageURL,
					ImageURL: "data:image/" + b.Image.Format + ";base64," + base64.StdEncoding.EncodeToString(b.Image.Source.Bytes)})
			case b.ToolUse != nil:
				var buf bytes.Buffer
				if err := json.Compact(&buf, b.ToolUse.Input); err != nil {
					return nil, fmt.Errorf("toolUse input: %w", err)
				}
				msg.ToolCalls = append(msg.ToolCalls, llm.ToolCall{ID: b.ToolUse.ToolUseID, Name: b.ToolUse.Name, Arguments: buf.String()})
			case b.ToolResult != nil:
				var text string
				for _, c := range b.ToolResult.Content {
					if c.Text != nil {
						text += *c.Text
					} else {
						text += string(c.JSON)
					}
				}
				req.Messages = append(req.Messages, llm.Message{Role: llm.RoleTool, ToolCallID: b.ToolResult.ToolUseID, Content: []llm.Part{{Type: llm.PartText, Text: text}}})
			case b.ReasoningContent != nil:
				msg.ReasoningContent = b.ReasoningContent.ReasoningText.Text
				msg.ReasoningSignature = b.ReasoningContent.ReasoningText.Signature
			default:
				return nil, fmt.Errorf("unknown content block in %s", body)
			}
		}
		if len(msg.Content) > 0 || len(msg.ToolCalls) > 0 {
			req.Messages = append(req.Messages, msg)
		}
	}
	if ic := cr.InferenceConfig; ic != nil {
		req.MaxTokens, req.Stop = ic.MaxTokens, ic.StopSequences
		req.Temperature, req.TopP = float32Number(ic.Temperature), float32Number(ic.TopP)
	}
	if tc := cr.ToolConfig; tc != nil {
		for _, t := range tc.Tools {
			req.Tools = append(req.Tools, llm.Tool{Name: t.ToolSpec.Name, Description: t.ToolSpec.Description, Parameters: t.ToolSpec.InputSchema.JSON})
		}
		for k, v := range tc.ToolChoice {
			switch k {
			case "auto":
				req.ToolChoice = &llm.ToolChoice{Mode: "auto"}
			case "any":
				req.ToolChoice = &llm.ToolChoice{Mode: "required"}
			case "tool":
				req.ToolChoice = &llm.ToolChoice{Mode: "function", Name: v.Name}
			}
		}
	}
	return &providertest.Call{Op: "chat", Stream: op == "converse-stream", Chat: req}, nil
}

// StopReason is Bedrock's stopReason for a canonical finish reason.
func StopReason(finish string) string {
	switch finish {
	case llm.FinishLength:
		return "max_tokens"
	case llm.FinishToolCalls:
		return "tool_use"
	case llm.FinishContentFilter:
		return "content_filtered"
	}
	return "end_turn"
}

func usageJSON(u *llm.Usage) map[string]any {
	if u == nil {
		return map[string]any{"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
	}
	// inputTokens excludes prompt-cache reads, which Bedrock reports apart.
	return map[string]any{"inputTokens": u.PromptTokens - u.CachedTokens, "outputTokens": u.CompletionTokens,
		"totalTokens": u.TotalTokens, "cacheReadInputTokens": u.CachedTokens, "cacheWriteInputTokens": 0}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Requestid", "4c5e7a9b-0d1f-4e2a-9b3c-5d6e7f8a9b0c")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteChat answers a Converse request.
func (Wire) WriteChat(w http.ResponseWriter, resp *llm.ChatResponse) {
	ch := resp.Choices[0]
	var content []any
	if ch.ReasoningContent != nil {
		content = append(content, map[string]any{"reasoningContent": map[string]any{"reasoningText": map[string]any{"text": *ch.ReasoningContent, "signature": "sig-1"}}})
	}
	if ch.Content != nil && *ch.Content != "" {
		content = append(content, map[string]any{"text": *ch.Content})
	}
	for _, tc := range ch.ToolCalls {
		content = append(content, map[string]any{"toolUse": map[string]any{"toolUseId": tc.ID, "name": tc.Name, "input": json.RawMessage(tc.Arguments)}})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"output":     map[string]any{"message": map[string]any{"role": "assistant", "content": content}},
		"stopReason": StopReason(ch.FinishReason),
		"usage":      usageJSON(resp.Usage),
		"metrics":    map[string]any{"latencyMs": 42},
	})
}

// StartStream writes the headers of a ConverseStream answer.
func (Wire) StartStream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", "4c5e7a9b-0d1f-4e2a-9b3c-5d6e7f8a9b0c")
	w.WriteHeader(http.StatusOK)
}

// WriteEvent writes one event-stream frame: :event-type, :content-type and :message-type event
// headers and a JSON payload.
func WriteEvent(w io.Writer, eventType string, payload any) {
	b, _ := json.Marshal(payload)
	var h eventstream.Headers
	h.Set(":event-type", eventstream.StringValue(eventType))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	h.Set(":message-type", eventstream.StringValue("event"))
	_ = eventstream.NewEncoder().Encode(w, eventstream.Message{Headers: h, Payload: b})
}

// WriteException writes an exception frame (:message-type exception) of the given type, such
// as "throttlingException" or "modelStreamErrorException".
func WriteException(w io.Writer, exceptionType, message string) {
	b, _ := json.Marshal(map[string]string{"message": message})
	var h eventstream.Headers
	h.Set(":exception-type", eventstream.StringValue(exceptionType))
	h.Set(":content-type", eventstream.StringValue("application/json"))
	h.Set(":message-type", eventstream.StringValue("exception"))
	_ = eventstream.NewEncoder().Encode(w, eventstream.Message{Headers: h, Payload: b})
}

// Content block indexes the fake uses: reasoning 0, text 1, tool call i at 2+i.
const (
	reasoningBlock = 0
	textBlock      = 1
	toolBlock      = 2
)

// WriteChunk writes a chunk as ConverseStream events.
func (Wire) WriteChunk(w io.Writer, c *llm.Chunk) {
	if c.Usage != nil {
		WriteEvent(w, "metadata", map[string]any{"usage": usageJSON(c.Usage), "metrics": map[string]any{"latencyMs": 42}})
	}
	for _, ch := range c.Choices {
		if ch.Role != "" {
			WriteEvent(w, "messageStart", map[string]any{"role": ch.Role})
		}
		if ch.ReasoningContent != nil {
			WriteEvent(w, "contentBlockDelta", map[string]any{"contentBlockIndex": reasoningBlock, "delta": map[string]any{"reasoningContent": map[string]any{"text": *ch.ReasoningContent}}})
		}
		if ch.Content != nil {
			WriteEvent(w, "contentBlockDelta", map[string]any{"contentBlockIndex": textBlock, "delta": map[string]any{"text": *ch.Content}})
		}
		for _, d := range ch.ToolCalls {
			idx := toolBlock + int(d.Index)
			if d.ID != "" {
				WriteEvent(w, "contentBlockStart", map[string]any{"contentBlockIndex": idx, "start": map[string]any{"toolUse": map[string]any{"toolUseId": d.ID, "name": d.Name}}})
			}
			if d.Arguments != "" {
				WriteEvent(w, "contentBlockDelta", map[string]any{"contentBlockIndex": idx, "delta": map[string]any{"toolUse": map[string]any{"input": d.Arguments}}})
			}
		}
		if ch.FinishReason != "" {
			WriteEvent(w, "contentBlockStop", map[string]any{"contentBlockIndex": textBlock})
			WriteEvent(w, "messageStop", map[string]any{"stopReason": StopReason(ch.FinishReason)})
		}
	}
}

// streamExceptions maps the suite's error types to ConverseStream's exception events.
var streamExceptions = map[string]string{
	"rate_limit_error": "throttlingException",
	"overloaded_error": "serviceUnavailableException",
}

// WriteStreamError writes an exception frame: modelStreamErrorException unless the type names
// one (e.Type ending in "Exception", or a mapped suite type).
func (Wire) WriteStreamError(w io.Writer, e *providertest.UpstreamError) {
	t := "modelStreamErrorException"
	if strings.HasSuffix(e.Type, "Exception") {
		t = e.Type
	} else if m, ok := streamExceptions[e.Type]; ok {
		t = m
	}
	WriteException(w, t, e.Message)
}

// EndStream does nothing: a ConverseStream answer ends with its HTTP body.
func (Wire) EndStream(io.Writer) {}

// WriteEmbeddings answers a Cohere embed request ({"embeddings": [...]}, input order: the
// format has no indexes, so order is ignored).
func (Wire) WriteEmbeddings(w http.ResponseWriter, resp *llm.EmbeddingResponse, order []int) {
	writeJSON(w, http.StatusOK, map[string]any{"id": "emb-1", "embeddings": resp.Vectors, "response_type": "embeddings_floats"})
}

// statusExceptions is the exception Bedrock answers each status with.
var statusExceptions = map[int]string{
	400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
	404: "ResourceNotFoundException", 408: "ModelTimeoutException", 424: "ModelErrorException",
	429: "ThrottlingException", 500: "InternalServerException", 503: "ServiceUnavailableException",
}

// WriteError answers with e.Status and Bedrock's error shape: the exception name (e.Type when
// it ends in "Exception", else the status's usual one) in the x-amzn-ErrorType header, or, when
// e.Code is "body", as the body's __type with a namespace; a status with no exception (413, 502,
// 529) gets a plain-text body, as a load balancer sends.
func (Wire) WriteError(w http.ResponseWriter, e *providertest.UpstreamError) {
	for k, vs := range e.Header {
		w.Header()[k] = vs
	}
	name := statusExceptions[e.Status]
	if strings.HasSuffix(e.Type, "Exception") {
		name = e.Type
	}
	if name == "" {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(e.Status)
		_, _ = io.WriteString(w, e.Message)
		return
	}
	body := map[string]any{"message": e.Message}
	if e.Code == "body" {
		body["__type"] = "com.amazon.bedrock#" + name
	} else {
		w.Header().Set("X-Amzn-Errortype", name+":http://internal.amazon.com/coral/com.amazon.bedrock/")
	}
	writeJSON(w, e.Status, body)
}
