package bedrock_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/bedrock"
	"github.com/switchyard/switchyard/internal/provider/bedrock/bedrocktest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

const model = "anthropic.claude-3-5-haiku-20241022-v1:0"

func testConfig() provider.Config {
	return provider.Config{Name: "aws", Type: "bedrock", Options: map[string]string{
		"region": bedrocktest.Region, "access_key_id": bedrocktest.AccessKeyID, "secret_access_key": bedrocktest.SecretAccessKey}}
}

func TestConformance(t *testing.T) {
	ex := func(name string, status int, typ, msg string, want llm.Kind) providertest.ErrorCase {
		return providertest.ErrorCase{Name: name, Err: providertest.UpstreamError{Status: status, Type: typ, Message: msg}, Want: want}
	}
	body := func(c providertest.ErrorCase) providertest.ErrorCase {
		c.Name += " __type"
		c.Err.Code = "body"
		return c
	}
	cases := []providertest.ErrorCase{
		ex("ThrottlingException", 429, "ThrottlingException", "Too many requests, please wait before trying again.", llm.KindRateLimited),
		ex("ModelNotReadyException", 429, "ModelNotReadyException", "Model is not ready to serve inference requests.", llm.KindUnavailable),
		ex("ServiceUnavailableException", 503, "ServiceUnavailableException", "Service is unavailable", llm.KindUnavailable),
		ex("InternalServerException", 500, "InternalServerException", "The server encountered an error processing your request.", llm.KindUpstream),
		ex("ModelErrorException", 424, "ModelErrorException", "The model returned an error", llm.KindUpstream),
		ex("ModelTimeoutException", 408, "ModelTimeoutException", "Model has timed out in processing the request.", llm.KindTimeout),
		ex("ValidationException", 400, "ValidationException", "The provided model identifier is invalid.", llm.KindInvalidArgument),
		ex("AccessDeniedException", 403, "AccessDeniedException", "You don't have access to the model with the specified model ID.", llm.KindPermissionDenied),
		ex("ResourceNotFoundException", 404, "ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier.", llm.KindNotFound),
		ex("UnrecognizedClientException", 403, "UnrecognizedClientException", "The security token included in the request is invalid.", llm.KindUnauthenticated),
		ex("ServiceQuotaExceededException", 400, "ServiceQuotaExceededException", "Your request exceeds the service quota for your account.", llm.KindQuotaExceeded),
		{Name: "ValidationException context length", Err: providertest.UpstreamError{Status: 400, Type: "ValidationException", Message: "Input is too long for requested model."}, Want: llm.KindBusiness, WantCode: "context_length_exceeded"},
		{Name: "ThrottlingException stream", Stream: true, Err: providertest.UpstreamError{Status: 429, Type: "ThrottlingException", Message: "Too many tokens"}, Want: llm.KindRateLimited},
		{Name: "ModelNotReadyException stream", Stream: true, Err: providertest.UpstreamError{Status: 429, Type: "ModelNotReadyException", Message: "not ready"}, Want: llm.KindUnavailable},
	}
	for _, c := range cases[:len(cases)-3] {
		cases = append(cases, body(c))
	}
	for i := range cases {
		if cases[i].Want == llm.KindNotFound {
			cases[i].WantCode = "model_not_found"
		}
	}
	providertest.Run(t, providertest.Harness{
		New:        bedrock.New,
		Config:     testConfig(),
		Model:      model,
		Wire:       bedrocktest.Wire{},
		Check:      bedrocktest.Check,
		ErrorCases: cases,
		// Embeddings need Titan or Cohere model ids: TestEmbed covers them.
		Skip: []string{"embeddings_order"},
	})
}

// fake starts a Bedrock fake that checks signatures and answers with handle.
func fake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, c *providertest.Call, body []byte)) (*httptest.Server, *bedrock.Provider) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := bedrocktest.CheckSigV4(r, body, bedrocktest.AccessKeyID, bedrocktest.SecretAccessKey, bedrocktest.Region); err != nil {
			w.Header().Set("X-Amzn-Errortype", "InvalidSignatureException")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"message":"The request signature we calculated does not match the signature you provided."}`)
			return
		}
		c, err := bedrocktest.Wire{}.Decode(r, body)
		if err != nil {
			t.Errorf("decode: %v", err)
			http.Error(w, err.Error(), 400)
			return
		}
		handle(w, r, c, body)
	}))
	t.Cleanup(srv.Close)
	cfg := testConfig()
	cfg.BaseURL = srv.URL
	p, err := bedrock.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, p.(*bedrock.Provider)
}

func TestWrongSecretIsUnauthenticated(t *testing.T) {
	srv, _ := fake(t, func(w http.ResponseWriter, r *http.Request, c *providertest.Call, body []byte) {
		bedrocktest.Wire{}.WriteChat(w, &llm.ChatResponse{Choices: []llm.Choice{{Content: llm.Ptr("hi")}}})
	})
	cfg := testConfig()
	cfg.BaseURL = srv.URL
	cfg.Options["secret_access_key"] = "not-the-secret"
	p, err := bedrock.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Chat(t.Context(), &llm.ChatRequest{Model: model, Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "hi")}})
	providertest.WantError(t, err, llm.KindUnauthenticated, "aws")
}

func TestGuardrailAndAdditionalFields(t *testing.T) {
	var mu sync.Mutex
	var got []bedrocktest.ConverseRequest
	srv, _ := fake(t, func(w http.ResponseWriter, r *http.Request, c *providertest.Call, body []byte) {
		var cr bedrocktest.ConverseRequest
		if err := json.Unmarshal(body, &cr); err != nil {
			t.Error(err)
		}
		mu.Lock()
		got = append(got, cr)
		mu.Unlock()
		if c.Stream {
			bedrocktest.Wire{}.StartStream(w)
			bedrocktest.WriteEvent(w, "messageStart", map[string]any{"role": "assistant"})
			bedrocktest.WriteEvent(w, "messageStop", map[string]any{"stopReason": "guardrail_intervened"})
			return
		}
		bedrocktest.Wire{}.WriteChat(w, &llm.ChatResponse{Choices: []llm.Choice{{Content: llm.Ptr("blocked"), FinishReason: llm.FinishContentFilter}}})
	})
	cfg := testConfig()
	cfg.BaseURL = srv.URL
	cfg.Options["guardrail_identifier"] = "gr-abc123"
	cfg.Options["guardrail_version"] = "DRAFT"
	cfg.Options["additional_model_request_fields"] = `{"top_k": 200}`
	p, err := bedrock.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req := &llm.ChatRequest{Model: model, Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "hi")}}
	resp, err := p.Chat(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].FinishReason != llm.FinishContentFilter {
		t.Errorf("finish = %q", resp.Choices[0].FinishReason)
	}
	st, err := p.ChatStream(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	a, err := providertest.Collect(st)
	st.Close()
	if err != nil || a.FinishReason != llm.FinishContentFilter {
		t.Errorf("stream finish = %q, %v; want content_filter (guardrail_intervened)", a.FinishReason, err)
	}
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	for _, cr := range got {
		g := cr.GuardrailConfig
		if g == nil || g.GuardrailIdentifier != "gr-abc123" || g.GuardrailVersion != "DRAFT" || g.Trace != "disabled" {
			t.Errorf("guardrailConfig = %+v", g)
		}
		if string(cr.AdditionalModelRequestFields) != `{"top_k":200}` {
			t.Errorf("additionalModelRequestFields = %s", cr.AdditionalModelRequestFields)
		}
	}
}

func TestStreamException(t *testing.T) {
	_, p := fake(t, func(w http.ResponseWriter, r *http.Request, c *providertest.Call, body []byte) {
		bedrocktest.Wire{}.StartStream(w)
		bedrocktest.WriteEvent(w, "messageStart", map[string]any{"role": "assistant"})
		bedrocktest.WriteEvent(w, "contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"text": "Hi"}})
		bedrocktest.WriteException(w, "throttlingException", "Too many tokens, please wait before trying again.")
	})
	st, err := p.ChatStream(t.Context(), &llm.ChatRequest{Model: model, Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "hi")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := providertest.Collect(st)
	if a.Content != "Hi" {
		t.Errorf("content = %q", a.Content)
	}
	e := providertest.WantError(t, err, llm.KindRateLimited, "aws")
	if !strings.Contains(e.UpstreamMessage, "Too many tokens") {
		t.Errorf("UpstreamMessage = %q", e.UpstreamMessage)
	}
}

func TestStreamCutBeforeMessageStop(t *testing.T) {
	_, p := fake(t, func(w http.ResponseWriter, r *http.Request, c *providertest.Call, body []byte) {
		bedrocktest.Wire{}.StartStream(w)
		bedrocktest.WriteEvent(w, "messageStart", map[string]any{"role": "assistant"})
		bedrocktest.WriteEvent(w, "contentBlockDelta", map[string]any{"contentBlockIndex": 0, "delta": map[string]any{"text": "Hi"}})
	})
	st, err := p.ChatStream(t.Context(), &llm.ChatRequest{Model: model, Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "hi")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := providertest.Collect(st)
	if a.Content != "Hi" {
		t.Errorf("content = %q", a.Content)
	}
	providertest.WantError(t, err, llm.KindUpstream, "aws")
}

func TestEmbed(t *testing.T) {
	var mu sync.Mutex
	var titanCalls []map[string]any
	_, p := fake(t, func(w http.ResponseWriter, r *http.Request, c *providertest.Call, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		if strings.Contains(c.Embed.Model, "cohere.embed") {
			var req struct {
				Texts     []string `json:"texts"`
				InputType string   `json:"input_type"`
			}
			_ = json.Unmarshal(body, &req)
			if req.InputType != "search_document" {
				t.Errorf("input_type = %q", req.InputType)
			}
			vecs := make([][]float32, len(req.Texts))
			for i, s := range req.Texts {
				vecs[i] = providertest.EmbeddingVector(s)
			}
			if !strings.HasSuffix(c.Embed.Model, "no-count") {
				w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", "6")
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "embeddings": vecs, "texts": req.Texts})
			return
		}
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		mu.Lock()
		titanCalls = append(titanCalls, req)
		mu.Unlock()
		text, _ := req["inputText"].(string)
		_ = json.NewEncoder(w).Encode(map[string]any{"embedding": providertest.EmbeddingVector(text), "inputTextTokenCount": len(text)})
	})
	texts := []string{"alpha", "be", "gamma delta"}
	want := [][]float32{providertest.EmbeddingVector(texts[0]), providertest.EmbeddingVector(texts[1]), providertest.EmbeddingVector(texts[2])}

	resp, err := p.Embed(t.Context(), &llm.EmbeddingRequest{Model: "amazon.titan-embed-text-v2:0", Texts: texts, Dimensions: llm.Ptr[int32](256)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp.Vectors, want) || resp.PromptTokens != 5+2+11 {
		t.Errorf("titan: vectors %v tokens %d", resp.Vectors, resp.PromptTokens)
	}
	if len(titanCalls) != 3 {
		t.Fatalf("%d titan calls, want one per input", len(titanCalls))
	}
	for i, c := range titanCalls {
		if c["inputText"] != texts[i] || c["dimensions"] != 256.0 || c["normalize"] != true {
			t.Errorf("titan call %d = %v", i, c)
		}
	}

	for _, m := range []string{"cohere.embed-english-v3", "global.cohere.embed-v4:0"} {
		resp, err = p.Embed(t.Context(), &llm.EmbeddingRequest{Model: m, Texts: texts})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(resp.Vectors, want) || resp.PromptTokens != 6 || resp.UsageEstimated {
			t.Errorf("%s: vectors %v tokens %d estimated %v, want the header's 6", m, resp.Vectors, resp.PromptTokens, resp.UsageEstimated)
		}
	}
	resp, err = p.Embed(t.Context(), &llm.EmbeddingRequest{Model: "cohere.embed-no-count", Texts: texts})
	if err != nil {
		t.Fatal(err)
	}
	if want := int32(2 + 1 + 3); resp.PromptTokens != want || !resp.UsageEstimated { // chars/4, rounded up, per input
		t.Errorf("without the count header: tokens %d estimated %v, want %d estimated", resp.PromptTokens, resp.UsageEstimated, want)
	}
	_, err = p.Embed(t.Context(), &llm.EmbeddingRequest{Model: "cohere.embed-english-v3", Texts: texts, Dimensions: llm.Ptr[int32](256)})
	providertest.WantError(t, err, llm.KindInvalidArgument, "")
	_, err = p.Embed(t.Context(), &llm.EmbeddingRequest{Model: model, Texts: texts})
	providertest.WantError(t, err, llm.KindInvalidArgument, "")
}

func TestNewValidates(t *testing.T) {
	for name, opts := range map[string]map[string]string{
		"unknown option":    {"region": "us-east-1", "nope": "x"},
		"half static keys":  {"region": "us-east-1", "access_key_id": "AKID"},
		"half guardrail":    {"region": "us-east-1", "guardrail_identifier": "gr-1"},
		"bad fields":        {"region": "us-east-1", "additional_model_request_fields": "[1]"},
		"bad input type":    {"region": "us-east-1", "cohere_input_type": "query"},
		"token without key": {"region": "us-east-1", "session_token": "tok"},
	} {
		if _, err := bedrock.New(provider.Config{Name: "aws", Options: opts}); err == nil {
			t.Errorf("%s: New accepted %v", name, opts)
		}
	}
	if _, err := bedrock.New(provider.Config{Name: "aws", APIKey: "k", Options: map[string]string{"region": "us-east-1"}}); err == nil {
		t.Error("New accepted an api_key")
	}
	if _, err := bedrock.New(provider.Config{Name: "aws", Headers: map[string]string{"X-A": "b"}, Options: map[string]string{"region": "us-east-1"}}); err == nil {
		t.Error("New accepted headers")
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	if _, err := bedrock.New(provider.Config{Name: "aws"}); err == nil {
		t.Error("New accepted a configuration without a region")
	}
	t.Setenv("AWS_REGION", "eu-west-1")
	if _, err := bedrock.New(provider.Config{Name: "aws"}); err != nil {
		t.Errorf("region from AWS_REGION: %v", err)
	}
}

// TestNoSDKRetries checks that the SDK makes one attempt: the router owns retries.
func TestNoSDKRetries(t *testing.T) {
	var mu sync.Mutex
	n := 0
	_, p := fake(t, func(w http.ResponseWriter, r *http.Request, c *providertest.Call, body []byte) {
		mu.Lock()
		n++
		mu.Unlock()
		bedrocktest.Wire{}.WriteError(w, &providertest.UpstreamError{Status: 503, Message: "unavailable"})
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := p.Chat(ctx, &llm.ChatRequest{Model: model, Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "hi")}})
	providertest.WantError(t, err, llm.KindUnavailable, "aws")
	if n != 1 {
		t.Errorf("%d upstream attempts, want 1", n)
	}
}
