package providertest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/llm"
)

// fuzzStatuses maps the low four bits of a fuzz selector to the HTTP status an answer is sent
// with: mostly 200, so that the answer and stream decoders get most inputs, then the error
// statuses the adapters classify.
var fuzzStatuses = [16]int{200, 200, 200, 200, 200, 201, 400, 401, 403, 404, 413, 422, 429, 500, 503, 529}

// Answers is a scripted upstream for fuzzing: every request gets the status and body of the
// current fuzz input. Adapters that take an *http.Client use Client (no sockets); the others
// point their base URL at URL, a loopback server started on first use.
type Answers struct {
	tb     testing.TB
	status int
	body   []byte
	srv    *httptest.Server
}

// RoundTrip answers r with the current status and body.
func (a *Answers) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{
		Status: http.StatusText(a.status), StatusCode: a.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(a.body)), ContentLength: int64(len(a.body)), Request: r,
	}, nil
}

// Client returns a client whose requests a answers without a network.
func (a *Answers) Client() *http.Client { return &http.Client{Transport: a} }

// URL returns the address of a loopback server that answers like RoundTrip.
func (a *Answers) URL() string {
	if a.srv == nil {
		a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(a.status)
			_, _ = w.Write(a.body)
		}))
		a.tb.Cleanup(a.srv.Close)
	}
	return a.srv.URL
}

// AnswerFuzz describes the fuzzing of one adapter's answer decoding.
type AnswerFuzz struct {
	// Name is the provider name New configures; errors must carry it.
	Name string
	// New builds the adapter, talking to a.
	New func(a *Answers) (llm.Provider, error)
	// Seeds are the files of the adapter's testdata directory (glob patterns relative to it):
	// each is added once as a 200 answer and once with an error status.
	Seeds []string
	// Bodies are more seed answers, for shapes the testdata files lack.
	Bodies []string
}

// FuzzAnswers fuzzes an adapter with upstream answers: each input is a selector (its low four
// bits choose the HTTP status, see fuzzStatuses) and a body, sent as the answer to a blocking
// chat, a chat stream and, when the adapter embeds, embeddings calls for one and two inputs. Whatever the
// bytes, the adapter must not panic, must fail every non-2xx answer, and must return errors that
// are *llm.Error values naming the provider, of a kind an upstream can cause (not internal,
// canceled or timed out: the context does not end), with a client message. A stream must end
// within a bound set by the body's length, give a chunk with every nil error, and keep returning
// an error once it returned one.
func FuzzAnswers(f *testing.F, fz AnswerFuzz) {
	for _, pat := range fz.Seeds {
		files, err := filepath.Glob(filepath.Join("testdata", pat))
		if err != nil || len(files) == 0 {
			f.Fatalf("seed pattern %q: no files (%v)", pat, err)
		}
		for i, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(uint8(0), b)
			f.Add(uint8(6+i%10), b)
		}
	}
	for _, b := range fz.Bodies {
		f.Add(uint8(0), []byte(b))
	}
	a := &Answers{tb: f}
	p, err := fz.New(a)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		a.status, a.body = fuzzStatuses[sel%16], body
		c := answerCheck{t: t, name: fz.Name, ok: a.status/100 == 2}
		ctx := context.Background()
		req := &llm.ChatRequest{Model: "m", Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "hi")}}
		resp, err := p.Chat(ctx, req)
		c.result("Chat", err, resp != nil)
		s, err := p.ChatStream(ctx, req)
		c.result("ChatStream", err, s != nil)
		if err == nil {
			c.drain(s, 2*len(body)+8)
		}
		if e, ok := p.(llm.Embedder); ok {
			for _, texts := range [][]string{{"a"}, {"a", "b"}} {
				r, err := e.Embed(ctx, &llm.EmbeddingRequest{Model: "m", Texts: texts})
				c.result("Embed", err, r != nil)
				if err == nil && (len(r.Vectors) != len(texts) || slices.ContainsFunc(r.Vectors, func(v []float32) bool { return v == nil })) {
					t.Fatalf("Embed: vectors %v for %d inputs", r.Vectors, len(texts))
				}
			}
		}
	})
}

type answerCheck struct {
	t    *testing.T
	name string
	ok   bool // the status was 2xx
}

func (c answerCheck) result(op string, err error, got bool) {
	c.t.Helper()
	switch {
	case err != nil:
		c.error(op, err)
	case !c.ok:
		c.t.Fatalf("%s succeeded on a non-2xx answer", op)
	case !got:
		c.t.Fatalf("%s returned neither a result nor an error", op)
	}
}

func (c answerCheck) error(op string, err error) {
	c.t.Helper()
	var e *llm.Error
	if !errors.As(err, &e) {
		c.t.Fatalf("%s: error %v (%T) is not an *llm.Error", op, err, err)
	}
	switch {
	case e.Kind == llm.KindInternal || e.Kind == llm.KindCanceled || e.Kind == llm.KindTimeout:
		c.t.Fatalf("%s: kind %v for an upstream answer: %v", op, e.Kind, err)
	case e.Provider != c.name:
		c.t.Fatalf("%s: Provider = %q, want %q: %v", op, e.Provider, c.name, err)
	case strings.TrimSpace(e.SafeMessage()) == "":
		c.t.Fatalf("%s: empty client message: %v", op, err)
	}
}

func (c answerCheck) drain(s llm.Stream, limit int) {
	c.t.Helper()
	defer s.Close()
	for range limit {
		ch, err := s.Recv()
		if err == nil {
			if ch == nil {
				c.t.Fatalf("Recv returned neither a chunk nor an error")
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			c.error("Recv", err)
		}
		if ch2, err2 := s.Recv(); ch2 != nil || err2 == nil || errors.Is(err2, io.EOF) != errors.Is(err, io.EOF) {
			c.t.Fatalf("Recv after %v returned %v, %v", err, ch2, err2)
		}
		return
	}
	c.t.Fatalf("stream did not end after %d chunks", limit)
}
