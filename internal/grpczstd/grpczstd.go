// Package grpczstd registers a zstd compressor with gRPC ("zstd" in grpc-encoding), beside the
// gzip one google.golang.org/grpc/encoding/gzip registers. Import it for its side effect: the
// server then accepts zstd-compressed calls and answers them compressed the same way, and clients
// may use grpc.UseCompressor(grpczstd.Name).
//
// Encoders run at zstd's fastest level, one goroutine each, and are pooled; so are decoders, which
// accept windows of up to 8 MiB (what RFC 8878 asks decoders to support). gRPC itself bounds the
// decompressed size of a message by the receiver's message limit.
package grpczstd

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/grpc/encoding"
)

// Name is the compressor's name in grpc-encoding and grpc.UseCompressor.
const Name = "zstd"

// maxWindow is the largest window a decoder accepts.
const maxWindow = 8 << 20

func init() { encoding.RegisterCompressor(&compressor{}) }

type compressor struct {
	encoders, decoders sync.Pool
}

func (c *compressor) Name() string { return Name }

// Compress returns a writer compressing to w; Close ends the frame and pools the encoder.
func (c *compressor) Compress(w io.Writer) (io.WriteCloser, error) {
	if e, ok := c.encoders.Get().(*encoder); ok {
		e.Reset(w)
		return e, nil
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	return &encoder{Encoder: enc, pool: &c.encoders}, nil
}

type encoder struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (e *encoder) Close() error {
	err := e.Encoder.Close()
	e.pool.Put(e)
	return err
}

// Decompress returns a reader decoding r as it is read, so that gRPC's limit on the decoded size
// stops a bomb early. The decoder goes back to the pool once it has read the whole frame.
func (c *compressor) Decompress(r io.Reader) (io.Reader, error) {
	d, ok := c.decoders.Get().(*zstd.Decoder)
	if !ok {
		var err error
		d, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(maxWindow))
		if err != nil {
			return nil, err
		}
	}
	// Hidden behind a plain io.Reader: given a bytes.Buffer, the decoder would decode it whole
	// into memory up front.
	if err := d.Reset(struct{ io.Reader }{r}); err != nil {
		c.decoders.Put(d)
		return nil, err
	}
	return &reader{d: d, pool: &c.decoders}, nil
}

type reader struct {
	d    *zstd.Decoder // nil once returned to the pool
	pool *sync.Pool
}

func (r *reader) Read(p []byte) (int, error) {
	if r.d == nil {
		return 0, io.EOF
	}
	n, err := r.d.Read(p)
	if err == io.EOF {
		_ = r.d.Reset(nil) // drops its reference to the message
		r.pool.Put(r.d)
		r.d = nil
	}
	return n, err
}
