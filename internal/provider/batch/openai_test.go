package batch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/batch"
	"github.com/switchyard/switchyard/internal/provider/openai"
)

// upstream is an OpenAI-compatible /embeddings server modelled on a model server without its own
// dynamic batching: `slots` forward passes run at once, each costing fixed + perInput × inputs.
// The vector of an input is its first 8 bytes as numbers; usage is llm.TokensForChars per input.
type upstream struct {
	fixed, perInput time.Duration
	slots           chan struct{}
	calls, inputs   atomic.Int64
	mu              sync.Mutex
	bodies          [][]string
}

func newUpstream(t testing.TB, fixed, perInput time.Duration, slots int) (*upstream, string) {
	u := &upstream{fixed: fixed, perInput: perInput, slots: make(chan struct{}, slots)}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	return u, srv.URL
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Input) == 0 {
		http.Error(w, `{"error":{"message":"bad input","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	u.calls.Add(1)
	u.inputs.Add(int64(len(req.Input)))
	u.mu.Lock()
	u.bodies = append(u.bodies, req.Input)
	u.mu.Unlock()
	u.slots <- struct{}{}
	time.Sleep(u.fixed + time.Duration(len(req.Input))*u.perInput)
	<-u.slots
	type datum struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	out := struct {
		Object string  `json:"object"`
		Model  string  `json:"model"`
		Data   []datum `json:"data"`
		Usage  struct {
			PromptTokens int `json:"prompt_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}{Object: "list", Model: req.Model}
	for i, in := range req.Input {
		v := make([]float32, 8)
		for j := 0; j < 8 && j < len(in); j++ {
			v[j] = float32(in[j])
		}
		out.Data = append(out.Data, datum{"embedding", i, v})
		out.Usage.PromptTokens += llm.TokensForChars(len(in))
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func newOpenAI(t testing.TB, url string) llm.Provider {
	p, err := openai.New(provider.Config{Name: "up", Type: "openai", BaseURL: url, APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestThroughTheOpenAIAdapter batches five concurrent callers over real HTTP: one upstream
// request carries the five inputs, and each caller gets the vector of its own input and a share
// of the usage that sums to the upstream's figure.
func TestThroughTheOpenAIAdapter(t *testing.T) {
	u, url := newUpstream(t, 0, 0, 8)
	p, err := batch.Wrap(newOpenAI(t, url), batch.Config{MaxBatch: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	batch.WindowNeverEnds(p)
	inputs := []string{"alpha...", "bravo.......", "charlie", "delta...................", "echo"}
	type res struct {
		r   *llm.EmbeddingResponse
		err error
	}
	out := make([]res, len(inputs))
	var wg sync.WaitGroup
	for i, in := range inputs {
		wg.Go(func() {
			r, err := p.Embed(t.Context(), &llm.EmbeddingRequest{Model: "emb", Texts: []string{in}})
			out[i] = res{r, err}
		})
	}
	wg.Wait() // the window never ends: only a full batch of five can have answered
	var sum int32
	for i, r := range out {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if len(r.r.Vectors) != 1 || r.r.Vectors[0][0] != float32(inputs[i][0]) || r.r.Vectors[0][1] != float32(inputs[i][1]) {
			t.Errorf("caller %d (%q) got vector %v", i, inputs[i], r.r.Vectors)
		}
		if !r.r.UsageEstimated {
			t.Errorf("caller %d: a share of a merged call should be marked estimated", i)
		}
		sum += r.r.PromptTokens
	}
	want := 0
	for _, in := range inputs {
		want += llm.TokensForChars(len(in))
	}
	if u.calls.Load() != 1 || int(sum) != want {
		t.Fatalf("upstream calls %d (want 1), usage shares sum %d (want %d)", u.calls.Load(), sum, want)
	}
	got := slices.Clone(u.bodies[0])
	slices.Sort(got)
	sorted := slices.Clone(inputs)
	slices.Sort(sorted)
	if !slices.Equal(got, sorted) {
		t.Errorf("upstream got %v", u.bodies[0])
	}
}

// BenchmarkMicroBatching compares batching off and on through the real OpenAI adapter against
// the upstream model above (2 slots, 2 ms + 0.1 ms per input; one short input per request), in
// one run. Scenarios: a closed loop of 32 callers (throughput), and an open loop at a fixed
// rate below the unbatched capacity (latency, where the window costs). Run with a fixed count:
//
//	go test -run '^$' -bench MicroBatching -benchtime 2000x ./internal/provider/batch/
func BenchmarkMicroBatching(b *testing.B) {
	const (
		fixed    = 2 * time.Millisecond
		perInput = 100 * time.Microsecond
		slots    = 2
	)
	for _, sc := range []struct {
		name string
		run  func(b *testing.B, p llm.Embedder) []time.Duration
	}{
		{"closed-32", func(b *testing.B, p llm.Embedder) []time.Duration { return closedLoop(b, p, 32) }},
		{"rate-300", func(b *testing.B, p llm.Embedder) []time.Duration { return openLoop(b, p, 300) }},
	} {
		for _, on := range []bool{false, true} {
			name := sc.name + "/off"
			if on {
				name = sc.name + "/on"
			}
			b.Run(name, func(b *testing.B) {
				u, url := newUpstream(b, fixed, perInput, slots)
				var p llm.Embedder = newOpenAI(b, url).(llm.Embedder)
				if on {
					bp, err := batch.Wrap(p.(llm.Provider), batch.Config{}, nil) // defaults: 5 per batch, 5 ms
					if err != nil {
						b.Fatal(err)
					}
					p = bp
				}
				start := time.Now()
				lat := sc.run(b, p)
				elapsed := time.Since(start)
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
				b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
				b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
				b.ReportMetric(float64(u.calls.Load())/float64(len(lat)), "calls/req")
			})
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func embedOne(p llm.Embedder, i int) error {
	_, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "emb",
		Texts: []string{fmt.Sprintf("a short sentence to embed, number %d", i)}})
	return err
}

// closedLoop sends b.N requests from c callers, each sending its next when the last is answered.
func closedLoop(b *testing.B, p llm.Embedder, c int) []time.Duration {
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				if err := embedOne(p, i); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	return lat
}

// openLoop sends b.N requests at rate per second whatever the answers; each latency counts from
// the request's scheduled send time, so queueing shows.
func openLoop(b *testing.B, p llm.Embedder, rate int) []time.Duration {
	lat := make([]time.Duration, b.N)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range b.N {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Go(func() {
			if err := embedOne(p, i); err != nil {
				b.Error(err)
				return
			}
			lat[i] = time.Since(due)
		})
	}
	wg.Wait()
	return lat
}
