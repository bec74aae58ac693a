package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
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

// BenchmarkDecodeRequest compares the codec's request decoding (fast path) with the general path
// it replaced for these bodies (normalizer and protojson).
func BenchmarkDecodeRequest(b *testing.B) {
	c := newCodec()
	bodies := []struct {
		name, body string
		embed      bool
	}{
		{"chat", difyBlocking, false},
		{"chat_tools", decodeSeeds[2], false},
		{"embed", `{"model":"e","input":["The food was delicious and the waiter was friendly.","b"],"encoding_format":"float"}`, true},
	}
	for _, bb := range bodies {
		data := bytes.TrimSpace([]byte(bb.body))
		newMsg := func() proto.Message {
			if bb.embed {
				return new(pb.CreateEmbeddingRequest)
			}
			return new(pb.CreateChatCompletionRequest)
		}
		b.Run(bb.name+"/protojson", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decodeGeneral(data, newMsg()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bb.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decodeMessage(data, newMsg()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
