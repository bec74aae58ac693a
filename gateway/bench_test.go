package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// The benchmarks measure the REST path end to end: HTTP client → gateway → loopback gRPC → fake
// service and back. Their time includes the client and the fake, so compare runs, not absolutes.

func benchPost(b *testing.B, url, body string) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func BenchmarkChatUnary(b *testing.B) {
	h := newHarness(b, Options{})
	benchPost(b, h.url+"/v1/chat/completions", difyBlocking)
}

func BenchmarkChatStream20(b *testing.B) {
	h := newHarness(b, Options{})
	benchPost(b, h.url+"/v1/chat/completions",
		`{"model":"mock/many","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello"}]}`)
}
