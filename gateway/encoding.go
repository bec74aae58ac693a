package gateway

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"

	"github.com/switchyard/switchyard/internal/llm"
)

// Compressed request bodies (docs/edge.md, "Compressed bodies"). A body sent with
// Content-Encoding: gzip is decoded while it is read: the decoded bytes are what the body limit
// (413 above server.max_body_bytes, so a gzip bomb is refused after at most that many decoded
// bytes) and the body budget count, and the compressed bytes may not exceed the limit either. Any
// other coding but identity is answered 415 before the body is read.
//
// Hand-written rather than gzhttp's AllowCompressedRequests: that one decodes gzip only without
// refusing other codings, and the edge needs the 415 and the limits on both sides of the decoder.
// zstd request bodies are not accepted: a zstd frame may declare a window of up to 8 MiB (RFC
// 8878) that the decoder allocates before producing a byte, memory the body budget could not see.

// codingGzip is the one request content coding besides identity that the edge decodes.
const codingGzip = "gzip"

// requestCoding returns the request's content coding ("" for none or identity, "gzip"), or a 415
// error for any other (including a chain of codings).
func requestCoding(h http.Header) (string, *llm.Error) {
	vs := h.Values("Content-Encoding")
	if len(vs) == 0 {
		return "", nil
	}
	coding := strings.ToLower(strings.TrimSpace(strings.Join(vs, ",")))
	switch coding {
	case "", "identity":
		return "", nil
	case codingGzip, "x-gzip":
		return codingGzip, nil
	}
	return "", &llm.Error{Kind: llm.KindInvalidArgument, Code: "unsupported_content_encoding",
		HTTPStatus: http.StatusUnsupportedMediaType,
		Message:    "Content-Encoding " + coding + " is not supported; send the body uncompressed or with gzip."}
}

var gzipReaders sync.Pool // *gzip.Reader

// gzipBody decodes a gzip request body, reading at most limit compressed bytes (more fails with
// the body limit's 413).
type gzipBody struct {
	limit  *limitReader
	zr     *gzip.Reader
	closed bool
}

func newGzipBody(raw io.Reader, limit int64) *gzipBody {
	return &gzipBody{limit: &limitReader{r: raw, n: limit, limit: limit}}
}

func (g *gzipBody) Read(p []byte) (int, error) {
	if g.zr == nil {
		if g.closed {
			return 0, io.ErrClosedPipe
		}
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(g.limit)
		} else {
			err = zr.Reset(g.limit)
		}
		if err != nil {
			return 0, gzipError(err)
		}
		g.zr = zr
	}
	n, err := g.zr.Read(p)
	if err != nil && err != io.EOF {
		err = gzipError(err)
	}
	return n, err
}

// Close returns the decoder to the pool. It leaves the raw body to the server, which closes it
// (and drains it, when it can) once the handler has answered.
func (g *gzipBody) Close() error {
	if g.zr != nil {
		gzipReaders.Put(g.zr)
		g.zr = nil
	}
	g.closed = true
	return nil
}

// gzipError keeps the edge's own errors (the limit's, the budget's, the deadline's) and calls
// anything else a malformed body.
func gzipError(err error) error {
	if le, ok := errors.AsType[*llm.Error](err); ok {
		return le
	}
	if isTimeout(err) {
		return bodyTimeout()
	}
	return llm.Wrap(llm.KindInvalidArgument, err, "could not decode the gzip request body")
}

// limitReader reads at most n more bytes from r; one byte more fails with the 413 of limit.
type limitReader struct {
	r        io.Reader
	n, limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, tooLarge(l.limit)
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return 0, tooLarge(l.limit)
	}
	return n, err
}
