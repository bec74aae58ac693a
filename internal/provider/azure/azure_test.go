package azure_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/azure"
	"github.com/switchyard/switchyard/internal/provider/azure/azuretest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// azureErrors are Azure-specific classifications run after the common ones.
var azureErrors = []providertest.ErrorCase{
	{Name: "400 content_filter", Err: providertest.UpstreamError{Status: 400, Code: "content_filter",
		Message: "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry."},
		Want: llm.KindBusiness, WantCode: "content_filter"},
	{Name: "404 DeploymentNotFound", Err: providertest.UpstreamError{Status: 404, Code: "DeploymentNotFound",
		Message: "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."},
		Want: llm.KindNotFound, WantCode: "model_not_found"},
	{Name: "400 context_length_exceeded", Err: providertest.UpstreamError{Status: 400, Code: "context_length_exceeded",
		Message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens."},
		Want: llm.KindBusiness, WantCode: "context_length_exceeded"},
}

func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name    string
		version string
		v1      bool
	}{{"dated", "", false}, {"preview", "2025-04-01-preview", false}, {"v1", "v1", true}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := provider.Config{Name: "az", Type: "azure", APIKey: "0123456789abcdef0123456789abcdef"}
			if c.version != "" {
				cfg.Options = map[string]string{"api_version": c.version}
			}
			providertest.Run(t, providertest.Harness{
				New: azure.New, Config: cfg, Model: "gpt-4o", Wire: azuretest.Wire{V1: c.v1}, ErrorCases: azureErrors,
			})
		})
	}
}

// TestURLsAndDeployments checks the URL of each surface, the deployment map and the header.
func TestURLsAndDeployments(t *testing.T) {
	cases := []struct {
		name      string
		options   map[string]string
		base      string // appended to the server URL
		model     string
		wantChat  string
		wantEmbed string
		wantModel string // model in the body
	}{
		{"default version", nil, "", "gpt-4o", "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", "/openai/deployments/gpt-4o/embeddings?api-version=2024-10-21", "gpt-4o"},
		{"mapped deployment, trailing /openai", map[string]string{"deployments": "gpt-4o = prod gpt4o, other=x", "api_version": "2025-04-01-preview"}, "/openai/", "gpt-4o",
			"/openai/deployments/prod%20gpt4o/chat/completions?api-version=2025-04-01-preview", "/openai/deployments/prod%20gpt4o/embeddings?api-version=2025-04-01-preview", "prod gpt4o"},
		{"v1", map[string]string{"api_version": "v1", "deployments": "gpt-4o=prod"}, "", "gpt-4o", "/openai/v1/chat/completions", "/openai/v1/embeddings", "prod"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			type seen struct{ uri, key, model string }
			got := make(chan seen, 2)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var body struct{ Model string }
				_ = json.Unmarshal(b, &body)
				got <- seen{r.URL.RequestURI(), r.Header.Get("Api-Key"), body.Model}
				if strings.Contains(r.URL.Path, "embeddings") {
					io.WriteString(w, `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1]}],"model":"m","usage":{"prompt_tokens":1,"total_tokens":1}}`)
					return
				}
				io.WriteString(w, fixture(t, "chat.json"))
			}))
			defer srv.Close()
			p, err := azure.New(provider.Config{Name: "az", BaseURL: srv.URL + c.base, APIKey: "k", Options: c.options})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.Chat(context.Background(), &llm.ChatRequest{Model: c.model, Messages: []llm.Message{llm.TextMessage("user", "x")}}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.(llm.Embedder).Embed(context.Background(), &llm.EmbeddingRequest{Model: c.model, Texts: []string{"a"}}); err != nil {
				t.Fatal(err)
			}
			for _, want := range []seen{{c.wantChat, "k", c.wantModel}, {c.wantEmbed, "k", c.wantModel}} {
				if g := <-got; g != want {
					t.Errorf("request = %+v, want %+v", g, want)
				}
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	for _, cfg := range []provider.Config{
		{Name: "az"},
		{Name: "az", BaseURL: "my-resource.openai.azure.com"},
		{Name: "az", BaseURL: "https://r.openai.azure.com", Options: map[string]string{"api_version": ""}},
		{Name: "az", BaseURL: "https://r.openai.azure.com", Options: map[string]string{"deployments": "gpt-4o"}},
		{Name: "az", BaseURL: "https://r.openai.azure.com", Options: map[string]string{"apiversion": "v1"}},
	} {
		if _, err := azure.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	p, err := azure.New(provider.Config{Name: "az", BaseURL: "https://r.openai.azure.com", Models: []string{"gpt-4o"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(llm.ModelLister).Models(); !reflect.DeepEqual(got, []string{"gpt-4o"}) {
		t.Errorf("Models = %v", got)
	}
}

// TestFixtures replays Azure transcripts: a stream opening with prompt_filter_results and
// ending in content_filter, and the content-filter error body as Azure sends it.
func TestFixtures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/deployments/blocked/") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			io.WriteString(w, fixture(t, "error_content_filter.json"))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, fixture(t, "stream_content_filter.sse"))
	}))
	defer srv.Close()
	p, err := azure.New(provider.Config{Name: "az", BaseURL: srv.URL, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "gpt-4o", Messages: []llm.Message{llm.TextMessage("user", "x")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := providertest.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	if a.Content != "I can tell you about" || a.FinishReason != llm.FinishContentFilter || a.Usage == nil || a.Usage.TotalTokens != 31 {
		t.Errorf("assembled = %+v usage %+v", a, a.Usage)
	}

	_, err = p.Chat(context.Background(), &llm.ChatRequest{Model: "blocked", Messages: []llm.Message{llm.TextMessage("user", "x")}})
	e := providertest.WantError(t, err, llm.KindBusiness, "az")
	if e.Code != "content_filter" || e.UpstreamStatus != 400 || !strings.Contains(e.SafeMessage(), "content management policy") {
		t.Errorf("code %q status %d message %q", e.Code, e.UpstreamStatus, e.SafeMessage())
	}
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStreamUsageByVersion: api-versions before 2024-09-01 refuse stream_options, so their
// streams go without it unless options.stream_usage says otherwise; newer ones and v1 ask for it.
func TestStreamUsageByVersion(t *testing.T) {
	sent := make(chan bool, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			StreamOptions *struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		sent <- body.StreamOptions != nil && body.StreamOptions.IncludeUsage
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	for _, c := range []struct {
		options map[string]string
		want    bool
	}{
		{nil, true},
		{map[string]string{"api_version": "v1"}, true},
		{map[string]string{"api_version": "2024-09-01-preview"}, true},
		{map[string]string{"api_version": "2024-06-01"}, false},
		{map[string]string{"api_version": "2024-06-01", "stream_usage": "true"}, true},
		{map[string]string{"stream_usage": "false"}, false},
	} {
		p, err := azure.New(provider.Config{Name: "az", BaseURL: srv.URL, APIKey: "k", Options: c.options})
		if err != nil {
			t.Fatal(err)
		}
		st, err := p.ChatStream(context.Background(), &llm.ChatRequest{Model: "gpt-4o", Messages: []llm.Message{llm.TextMessage("user", "x")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := providertest.Collect(st); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if got := <-sent; got != c.want {
			t.Errorf("options %v: include_usage sent %v, want %v", c.options, got, c.want)
		}
	}
}
