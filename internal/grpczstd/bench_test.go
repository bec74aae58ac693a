package grpczstd_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip"

	"github.com/switchyard/switchyard/internal/grpczstd"
)

// BenchmarkRoundTrip compresses and decompresses a chat-sized message (about 1.5 KB of prose)
// with each registered gRPC compressor, as a server does for one call and its answer.
func BenchmarkRoundTrip(b *testing.B) {
	msg := []byte(strings.Repeat("You are a support assistant for an online bookshop. Answer questions about orders, shipping and returns. ", 15))
	for _, name := range []string{"gzip", grpczstd.Name} {
		c := encoding.GetCompressor(name)
		b.Run(name, func(b *testing.B) {
			var buf bytes.Buffer
			out := make([]byte, 0, len(msg))
			b.ReportAllocs()
			for b.Loop() {
				buf.Reset()
				w, err := c.Compress(&buf)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = w.Write(msg)
				_ = w.Close()
				r, err := c.Decompress(bytes.NewReader(buf.Bytes()))
				if err != nil {
					b.Fatal(err)
				}
				out = out[:0]
				o := bytes.NewBuffer(out)
				if _, err := io.Copy(o, r); err != nil || o.Len() != len(msg) {
					b.Fatalf("%v, %d bytes", err, o.Len())
				}
			}
			b.ReportMetric(float64(buf.Len()), "wire-bytes")
		})
	}
}
