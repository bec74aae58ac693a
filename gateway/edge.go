package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
)

// The edge's protection of the body read (docs/edge.md): a request with a body is refused from
// its headers alone when its credentials are bad, holds a share of a process-wide byte budget
// while its body is read and handled, and must send its body within a deadline.

// budgetWait is how long a request waits for room in the body budget before it is answered 503.
const budgetWait = 100 * time.Millisecond

// budgetStep is the first share a body of unknown length (chunked) takes; each further share
// doubles what it holds.
const budgetStep = 64 << 10

// bodyBudget caps the bytes of request bodies being read or held at once. A nil *bodyBudget caps
// nothing.
type bodyBudget struct {
	sem  *semaphore.Weighted
	size int64
}

func newBodyBudget(size int64) *bodyBudget {
	if size <= 0 {
		return nil
	}
	return &bodyBudget{sem: semaphore.NewWeighted(size), size: size}
}

// acquire takes n bytes of the budget, waiting at most budgetWait, or fails with serverBusy.
func (b *bodyBudget) acquire(ctx context.Context, n int64) *llm.Error {
	if b == nil || n <= 0 {
		return nil
	}
	if n > b.size {
		return serverBusy()
	}
	if b.sem.TryAcquire(n) {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, budgetWait)
	defer cancel()
	if b.sem.Acquire(ctx, n) != nil {
		return serverBusy()
	}
	return nil
}

func (b *bodyBudget) release(n int64) {
	if b != nil && n > 0 {
		b.sem.Release(n)
	}
}

func serverBusy() *llm.Error {
	return &llm.Error{Kind: llm.KindUnavailable, Code: "server_busy", RetryAfter: time.Second,
		Message: "The server is receiving too many request bodies at once; retry shortly."}
}

func bodyTimeout() *llm.Error {
	return &llm.Error{Kind: llm.KindInvalidArgument, Code: "request_timeout", HTTPStatus: http.StatusRequestTimeout,
		Message: "The request body did not arrive in time."}
}

// budgetReader reads a body of unknown length, taking budget before each read beyond what it
// holds: budgetStep first, then as much again as it holds, up to limit+1 bytes (the byte that
// tells a body over the limit) and at most the whole budget.
type budgetReader struct {
	r           io.Reader
	ctx         context.Context
	b           *bodyBudget
	limit       int64
	held, nread int64
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if br.nread >= br.held {
		step := min(max(br.held, budgetStep), br.limit+1-br.held, br.b.size-br.held)
		if step <= 0 {
			return 0, serverBusy() // the body is larger than the whole budget
		}
		if err := br.b.acquire(br.ctx, step); err != nil {
			return 0, err
		}
		br.held += step
	}
	if room := br.held - br.nread; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := br.r.Read(p)
	br.nread += int64(n)
	return n, err
}

// readBudgeted reads r's body as readBody does, within the budget and the body deadline. It
// returns the bytes of budget taken, which the caller releases once the body is no longer used.
//
// A body with a content coding (gzip) is decoded as it is read: the budget and the limit count
// decoded bytes, like a chunked body's, and the coded bytes may not exceed the limit either.
func (rt *router) readBudgeted(w http.ResponseWriter, r *http.Request, coding string, dst []byte) ([]byte, int64, *llm.Error) {
	var held int64
	var br *budgetReader
	if r.ContentLength > rt.maxBody {
		return dst, 0, tooLarge(rt.maxBody)
	}
	if coding == codingGzip {
		gz := newGzipBody(r.Body, rt.maxBody)
		defer gz.Close() // the decoder back to its pool once the body is read
		r.Body, r.ContentLength = readCloser{gz, r.Body}, -1
	}
	if r.ContentLength >= 0 {
		held = r.ContentLength
		if err := rt.budget.acquire(r.Context(), held); err != nil {
			return dst, 0, err
		}
	} else if rt.budget != nil {
		br = &budgetReader{r: r.Body, ctx: r.Context(), b: rt.budget, limit: rt.maxBody}
		r.Body = readCloser{br, r.Body}
	}
	if rt.bodyTimeout > 0 {
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(rt.bodyTimeout)) // unsupported writers: no deadline
		defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	}
	data, err := readBody(w, r, rt.maxBody, dst)
	if br != nil {
		held = br.held
	}
	return data, held, err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// refuse answers err without reading (the rest of) the request body, and closes an HTTP/1
// connection: the unread body cannot be drained safely. (On HTTP/2 "Connection: close" would send
// GOAWAY for every stream of the connection; the refused stream alone is reset instead.)
func refuse(w http.ResponseWriter, r *http.Request, err error) {
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	writeError(w, errmap.FromStatus(errmap.ToStatus(err)))
}

// readError is the client's error for a failed body read: the budget's or the deadline's, or a
// plain read failure.
func readError(err error) *llm.Error {
	if le, ok := errors.AsType[*llm.Error](err); ok {
		return le
	}
	if isTimeout(err) {
		return bodyTimeout()
	}
	return llm.Wrap(llm.KindInvalidArgument, err, "could not read the request body")
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return (ok && ne.Timeout()) || errors.Is(err, os.ErrDeadlineExceeded)
}
