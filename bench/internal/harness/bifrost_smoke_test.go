package harness

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestBifrostSmoke starts the Bifrost binary named by $BIFROST (skipped when unset) against the
// upstream and sends one chat request and one stream through it.
func TestBifrostSmoke(t *testing.T) {
	bin := os.Getenv("BIFROST")
	if bin == "" {
		t.Skip("BIFROST not set")
	}
	u := NewUpstream()
	if err := u.Start(); err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	g, err := StartBifrost(BifrostOptions{Binary: bin, UpstreamAddr: u.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Stop()
	for _, stream := range []bool{false, true} {
		body := `{"model":"openai/bench-model","messages":[{"role":"user","content":"hi"}]`
		if stream {
			body += `,"stream":true`
		}
		resp, err := http.Post("http://"+g.HTTPAddr+"/v1/chat/completions", "application/json", strings.NewReader(body+"}"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("stream=%t status %d:\n%s", stream, resp.StatusCode, b)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "Hello! This is a fixed answer") && !strings.Contains(string(b), "tok19") {
			t.Errorf("stream=%t: unexpected answer", stream)
		}
		if stream && !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Errorf("stream does not end with [DONE]")
		}
	}
	if m, err := g.Admin("/metrics"); err != nil {
		t.Logf("no /metrics: %v", err)
	} else if _, ok := Metric(m, "go_memstats_mallocs_total"); !ok {
		t.Logf("/metrics has no go_memstats_mallocs_total")
	} else {
		t.Logf("/metrics has the Go collector")
	}
}
