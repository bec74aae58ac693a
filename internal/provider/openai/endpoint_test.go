package openai_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/openai"
)

// TestEndpoint: a custom Endpoint decides each operation's URL from the model, and replaces
// the bearer header with its own credential header.
func TestEndpoint(t *testing.T) {
	type seen struct {
		uri          string
		auth, apiKey string
	}
	got := make(chan seen, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.URL.RequestURI(), r.Header.Get("Authorization"), r.Header.Get("Api-Key")}
		if r.URL.Path == "/d/m1/embeddings" {
			w.Write([]byte(`{"data":[{"index":0,"embedding":[1]}]}`))
			return
		}
		w.Write([]byte(okAnswer))
	}))
	defer srv.Close()
	ep := openai.Endpoint{
		URL:        func(op openai.Op, model string) string { return srv.URL + "/d/" + model + "/" + string(op) + "?v=1" },
		AuthHeader: "api-key", AuthValue: "k1",
	}
	p, err := openai.NewWithEndpoint(provider.Config{Name: "x", BaseURL: srv.URL, APIKey: "ignored"}, srv.Client(), ep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Chat(context.Background(), &llm.ChatRequest{Model: "m1", Messages: []llm.Message{llm.TextMessage("user", "x")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "m1", Texts: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	want := []seen{{"/d/m1/chat/completions?v=1", "", "k1"}, {"/d/m1/embeddings?v=1", "", "k1"}}
	for i, w := range want {
		if g := <-got; g != w {
			t.Errorf("request %d = %+v, want %+v", i, g, w)
		}
	}
}
