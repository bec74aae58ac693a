package harness

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// Fault is what the upstream does to one request instead of answering it normally.
type Fault int

const (
	FaultNone  Fault = iota
	Fault429         // 429 with Retry-After: 0
	Fault500         // 500 with an OpenAI-shaped error body
	Fault503         // 503 with an OpenAI-shaped error body
	FaultReset       // the connection is dropped: before any byte for a unary answer, after a few chunks for a stream
	FaultSlow        // the normal answer after Upstream.SlowFor
)

// String names the fault for reports.
func (f Fault) String() string {
	return [...]string{"none", "429", "500", "503", "reset", "slow"}[f]
}

// Upstream is a zero-latency OpenAI-compatible server (chat, streaming chat, embeddings): every
// answer is precomputed, so what a benchmark sees on top of it is the gateway's own cost. When
// Faults is set it is asked once per request which fault to inject; it must be safe for concurrent
// use and be set before Start.
type Upstream struct {
	Faults  func() Fault
	SlowFor time.Duration // how long FaultSlow waits; 0: 2 s

	Addr string // host:port, set by Start

	chat, embedding []byte
	chunks          [][]byte
	paced           map[string]pacedStream // by model name (the part after the last '/'); set before Start
	srv             *http.Server
}

// pacedStream is a streamed answer sent at an upstream's pace: the role chunk at once, then one
// content chunk every `every`, then the finish chunk, the usage chunk and [DONE] at once.
type pacedStream struct {
	chunks [][]byte // as Upstream.chunks
	every  time.Duration
}

// AddPacedStream makes streamed answers for model (compared with the request's model after its
// last '/', so "up/m" and "openai/m" through a gateway and "m" directly all match) carry chunks
// content chunks, one every `every` (the first content chunk comes `every` after the role chunk),
// like a real model generating tokens. Call it before Start.
func (u *Upstream) AddPacedStream(model string, chunks int, every time.Duration) {
	if u.paced == nil {
		u.paced = map[string]pacedStream{}
	}
	u.paced[model] = pacedStream{chunks: streamChunks(chunks), every: every}
}

// ChunkCount is the number of content chunks in a streamed answer (it has ChunkCount+4 events:
// the role chunk, the content, the finish chunk, the usage chunk and [DONE]).
const ChunkCount = 20

// NewUpstream builds the upstream's answers; Start serves them.
func NewUpstream() *Upstream {
	u := &Upstream{
		chat: []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model",` +
			`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed answer from the benchmark upstream."},` +
			`"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":12,"completion_tokens":11,"total_tokens":23}}`),
		embedding: []byte(`{"object":"list","model":"bench-embed","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2,0.3,-0.4,0.5,-0.6,0.7,-0.8]}],` +
			`"usage":{"prompt_tokens":5,"total_tokens":5}}`),
	}
	u.chunks = streamChunks(ChunkCount)
	return u
}

// streamChunks builds the SSE events of a streamed answer with n content chunks: the role chunk,
// the content chunks, the finish chunk, the usage chunk and [DONE].
func streamChunks(n int) [][]byte {
	chunks := [][]byte{[]byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")}
	for i := range n {
		chunks = append(chunks, fmt.Appendf(nil, `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{"content":"tok%02d "},"finish_reason":null}]}`+"\n\n", i%100))
	}
	return append(chunks,
		[]byte(`data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"),
		fmt.Appendf(nil, `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench-model","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":%d,"total_tokens":%d}}`+"\n\n", n, n+12),
		[]byte("data: [DONE]\n\n"))
}

func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	embed := strings.HasSuffix(r.URL.Path, "/embeddings")
	if !embed && !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	fault := FaultNone
	if u.Faults != nil {
		fault = u.Faults()
	}
	stream := !embed && gjson.GetBytes(body, "stream").Bool()
	switch fault {
	case Fault429, Fault500, Fault503:
		status := map[Fault]int{Fault429: 429, Fault500: 500, Fault503: 503}[fault]
		w.Header().Set("Content-Type", "application/json")
		if fault == Fault429 {
			w.Header().Set("Retry-After", "0")
		}
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"error":{"message":"injected %d","type":"server_error","code":null}}`, status)
		return
	case FaultReset:
		if !stream {
			panic(http.ErrAbortHandler) // closes the connection without an answer
		}
	case FaultSlow:
		wait := u.SlowFor
		if wait == 0 {
			wait = 2 * time.Second
		}
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case stream:
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		chunks, every := u.chunks, time.Duration(0)
		if len(u.paced) > 0 {
			model := gjson.GetBytes(body, "model").String()
			if p, ok := u.paced[model[strings.LastIndexByte(model, '/')+1:]]; ok {
				chunks, every = p.chunks, p.every
			}
		}
		var tick *time.Ticker
		if every > 0 {
			tick = time.NewTicker(every)
			defer tick.Stop()
		}
		for i, c := range chunks {
			if fault == FaultReset && i == 3 {
				panic(http.ErrAbortHandler) // drops the connection mid-stream
			}
			if tick != nil && i >= 1 && i < len(chunks)-3 { // paced: each content chunk waits a tick
				select {
				case <-tick.C:
				case <-r.Context().Done():
					return
				}
			}
			if _, err := w.Write(c); err != nil {
				return
			}
			_ = rc.Flush()
		}
	case embed:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(u.embedding)
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(u.chat)
	}
}

// Start serves the upstream on a free loopback port (Addr) until Close.
func (u *Upstream) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("upstream listen: %w", err)
	}
	u.Addr = ln.Addr().String()
	// IdleTimeout is long: without it the server closes idle keep-alive connections after
	// ReadHeaderTimeout, and a gateway reusing one at that moment (a POST, which its transport does
	// not retry) fails with a write error that the benchmark would charge to the gateway.
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Minute}
	go func() { _ = u.srv.Serve(ln) }()
	return nil
}

// Close stops serving.
func (u *Upstream) Close() error { return u.srv.Close() }
