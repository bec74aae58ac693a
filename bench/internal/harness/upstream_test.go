package harness

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func stream(t *testing.T, addr, model string) (body []byte, took time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := http.Post("http://"+addr+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+model+`","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, time.Since(start)
}

func TestPacedStream(t *testing.T) {
	u := NewUpstream()
	u.AddPacedStream("slow", 5, 20*time.Millisecond)
	if err := u.Start(); err != nil {
		t.Fatal(err)
	}
	defer u.Close()

	for _, model := range []string{"slow", "up/slow", "openai/slow"} {
		b, took := stream(t, u.Addr, model)
		if n := bytes.Count(b, []byte(`"delta":{"content":"tok`)); n != 5 {
			t.Errorf("%s: %d content chunks, want 5", model, n)
		}
		if !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) || !bytes.Contains(b, []byte(`"completion_tokens":5,`)) {
			t.Errorf("%s: stream does not end with usage and [DONE]:\n%s", model, b)
		}
		if took < 100*time.Millisecond {
			t.Errorf("%s: took %s, want at least 5 × 20ms", model, took)
		}
	}
	b, _ := stream(t, u.Addr, "bench-model")
	if n := bytes.Count(b, []byte(`"delta":{"content":"tok`)); n != ChunkCount {
		t.Errorf("default model: %d content chunks, want %d", n, ChunkCount)
	}
}

func TestBifrostConfig(t *testing.T) {
	b, err := BifrostConfig("127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Client struct {
			EnableLogging *bool `json:"enable_logging"`
		}
		ConfigStore struct{ Enabled *bool } `json:"config_store"`
		LogsStore   struct{ Enabled *bool } `json:"logs_store"`
		Providers   map[string]struct {
			Keys    []struct{ Name, Value string }
			Network struct {
				BaseURL    string `json:"base_url"`
				MaxRetries *int   `json:"max_retries"`
			} `json:"network_config"`
		}
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	oa, ok := c.Providers["openai"]
	switch {
	case c.Client.EnableLogging == nil || *c.Client.EnableLogging,
		c.ConfigStore.Enabled == nil || *c.ConfigStore.Enabled,
		c.LogsStore.Enabled == nil || *c.LogsStore.Enabled,
		!ok || len(c.Providers) != 1 || len(oa.Keys) != 1,
		oa.Network.BaseURL != "http://127.0.0.1:9",
		oa.Network.MaxRetries == nil || *oa.Network.MaxRetries != 0:
		t.Errorf("config:\n%s", b)
	}
}
