// Command gwbench measures what Switchyard adds to a request: it starts a zero-latency
// OpenAI-compatible upstream and the real switchyard binary, then drives both the upstream
// directly and the gateway (REST and gRPC) with the same load in the same run, and reports the
// gateway's added latency, its throughput relative to direct calls, and its CPU time per request.
//
// Layout (DESIGN.md, Performance): the gateway is pinned alone to CPU 0 with GOMAXPROCS=1; this
// process (load generator + upstream) is pinned to CPU 1. Auth (API key) and tracing are on.
//
//	go build -o bin/switchyard ./cmd/switchyard && go run ./bench/cmd/gwbench -binary bin/switchyard
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard/switchyard/bench/internal/harness"
	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

func main() {
	var (
		binary   = flag.String("binary", "bin/switchyard", "switchyard binary to benchmark")
		duration = flag.Duration("duration", 8*time.Second, "measured time per scenario and target")
		warmup   = flag.Duration("warmup", 2*time.Second, "unmeasured warm-up per scenario and target")
		conns    = flag.Int("conns", 50, "concurrent connections in the max-throughput scenario")
		rate     = flag.Int("rate", 1000, "requests per second in the fixed-rate scenario")
		streams  = flag.Int("streams", 20, "concurrent streams in the streaming scenario")
		pin      = flag.Bool("pin", runtime.NumCPU() >= 2, "pin the gateway to CPU 0 and this process to CPU 1")
		out      = flag.String("out", "", "also write the report (markdown) to this file")
		profile  = flag.Bool("profile", false, "save CPU profiles of the gateway during the max-throughput and fixed-rate runs (REST and gRPC) to a temp dir and print the top functions of the max-throughput ones")
		trans    = flag.String("transports", "", "comma-separated server.gateway_transport values to compare (e.g. inproc,loopback); each gets its own gateway process, measured in the same run; empty: the binary's default")
		bifrost  = flag.String("bifrost", "", "path to a Bifrost bifrost-http binary: measure it like the gateway's REST path (skipped when empty)")
		many     = flag.Bool("many", false, "also run the many-streams scenario (long: about 25 s per target with the defaults)")
		manyN    = flag.Int("many-streams", 2000, "many-streams scenario: concurrent streams")
		manyC    = flag.Int("many-chunks", 100, "many-streams scenario: content chunks per stream")
		manyE    = flag.Duration("many-every", 50*time.Millisecond, "many-streams scenario: the upstream sends one content chunk every this long")
		manyD    = flag.Duration("many-duration", 15*time.Second, "many-streams scenario: measured time per target (after one stream's time of staggered start)")
		genv     = flag.String("gateway-env", "", "comma-separated KEY=VALUE environment variables for the gateway processes only (e.g. GOGC=100 to compare the collector settings)")
		manyG    = flag.Bool("many-grpc", true, "many-streams scenario: also measure the gateway's native gRPC streams")
	)
	flag.Parse()
	o := options{gatewayEnv: splitEnv(*genv), binary: *binary, duration: *duration, warmup: *warmup, conns: *conns, rate: *rate, streams: *streams, pin: *pin, out: *out, profile: *profile,
		bifrost: *bifrost, many: *many, manyStreams: *manyN, manyChunks: *manyC, manyEvery: *manyE, manyDuration: *manyD, manyGRPC: *manyG}
	if *trans != "" {
		o.transports = strings.Split(*trans, ",")
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "gwbench:", err)
		os.Exit(1)
	}
}

type options struct {
	gatewayEnv       []string
	binary           string
	duration, warmup time.Duration
	conns, rate      int
	streams          int
	pin, profile     bool
	out              string
	transports       []string // server.gateway_transport per gateway process; nil: one, with the default
	bifrost          string   // Bifrost binary; "" skips it

	many                    bool // run the many-streams scenario
	manyStreams, manyChunks int
	manyEvery, manyDuration time.Duration
	manyGRPC                bool
}

// gwTargets are the ways one gateway process is called.
type gwTargets struct {
	gw          *harness.Gateway
	label       string // transport, or "" for the binary's default
	unary, strm []target
	many        []target
}

func run(o options) error {
	if o.pin {
		var set unix.CPUSet
		set.Set(1)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin load generator to CPU 1: %w", err)
		}
	}
	if o.many {
		// Each stream holds a client and an upstream-side socket here, per target.
		if err := raiseFDLimit(uint64(4*o.manyStreams + 1024)); err != nil {
			return err
		}
	}
	up := harness.NewUpstream()
	up.AddPacedStream(longModel, o.manyChunks, o.manyEvery)
	if err := up.Start(); err != nil {
		return err
	}
	httpc := &http.Client{Transport: &http.Transport{
		MaxIdleConns: o.conns * 2, MaxIdleConnsPerHost: o.conns * 2, DisableCompression: true, IdleConnTimeout: time.Minute,
	}}
	body := func(model string, stream bool) []byte {
		return fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":64,"temperature":0.2,"stream":%t}`, model, stream)
	}
	direct := "http://" + up.Addr + "/v1/chat/completions"
	unary := []target{{name: "direct", do: httpDo(httpc, direct, "", body("bench-model", false))}}
	streamTargets := []target{{name: "direct", do: httpStream(httpc, direct, "", body("bench-model", true))}}
	// The many-streams scenario has its own client: one HTTP/1.1 connection per stream, all kept.
	manyTr := &http.Transport{MaxConnsPerHost: o.manyStreams, MaxIdleConnsPerHost: o.manyStreams, MaxIdleConns: 4 * o.manyStreams,
		DisableCompression: true, IdleConnTimeout: 2 * time.Minute}
	manyc := &http.Client{Transport: manyTr}
	manyTargets := []target{{name: "direct", do: httpStream(manyc, direct, "", body(longModel, true))}}

	transports := o.transports
	if len(transports) == 0 {
		transports = []string{""}
	}
	// Every gateway process runs for the whole benchmark (an idle one costs nothing measurable), so
	// each scenario measures direct calls and every gateway back to back.
	var gws []*gwTargets
	defer func() {
		for _, g := range gws {
			g.gw.Stop()
		}
	}()
	authCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+harness.APIKey)
	for _, tr := range transports {
		gw, err := startGateway(o.binary, up.Addr, tr, o.pin, o.gatewayEnv)
		if err != nil {
			return err
		}
		g := &gwTargets{gw: gw, label: tr}
		gws = append(gws, g)
		cc, err := grpc.NewClient(gw.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("dial gateway gRPC: %w", err)
		}
		defer cc.Close()
		chat := pb.NewChatServiceClient(cc)
		rest := "http://" + gw.HTTPAddr + "/v1/chat/completions"
		suffix := ""
		if tr != "" {
			suffix = " (" + tr + ")"
		}
		g.unary = []target{
			{name: "gateway REST" + suffix, do: httpDo(httpc, rest, harness.APIKey, body("up/bench-model", false)), gw: gw, kind: "rest", transport: tr},
			{name: "gateway gRPC" + suffix, do: grpcDo(authCtx, chat), gw: gw, kind: "grpc", transport: tr},
		}
		g.strm = []target{
			{name: "gateway REST" + suffix, do: httpStream(httpc, rest, harness.APIKey, body("up/bench-model", true)), gw: gw, kind: "rest"},
			{name: "gateway gRPC" + suffix, do: grpcStream(authCtx, chat, "up/bench-model"), gw: gw, kind: "grpc"},
		}
		g.many = []target{{name: "gateway REST" + suffix, do: httpStream(manyc, rest, harness.APIKey, body("up/"+longModel, true)), gw: gw, kind: "rest"}}
		if o.manyGRPC {
			g.many = append(g.many, target{name: "gateway gRPC" + suffix, do: grpcStream(authCtx, chat, "up/"+longModel), gw: gw, kind: "grpc"})
		}
		unary = append(unary, g.unary...)
		streamTargets = append(streamTargets, g.strm...)
		manyTargets = append(manyTargets, g.many...)
	}
	bifrostNote := "Bifrost: skipped (no -bifrost binary given)."
	if o.bifrost != "" {
		bf, err := harness.StartBifrost(harness.BifrostOptions{Binary: o.bifrost, UpstreamAddr: up.Addr, Pin: o.pin})
		if err != nil {
			return err
		}
		gws = append(gws, &gwTargets{gw: bf, label: "bifrost"})
		bifrostNote = fmt.Sprintf("Bifrost: %s (REST, models openai/..., request logging and stores off), pinned like the gateway.", o.bifrost)
		url := "http://" + bf.HTTPAddr + "/v1/chat/completions"
		unary = append(unary, target{name: "Bifrost", do: httpDo(httpc, url, "", body("openai/bench-model", false)), gw: bf, kind: "bifrost"})
		streamTargets = append(streamTargets, target{name: "Bifrost", do: httpStream(httpc, url, "", body("openai/bench-model", true)), gw: bf, kind: "bifrost"})
		manyTargets = append(manyTargets, target{name: "Bifrost", do: httpStream(manyc, url, "", body("openai/"+longModel, true)), gw: bf, kind: "bifrost"})
	}
	fmt.Println(bifrostNote)

	var profDir string
	if o.profile {
		var err error
		if profDir, err = os.MkdirTemp("", "gwbench-prof"); err != nil {
			return err
		}
	}

	var rep strings.Builder
	fmt.Fprintf(&rep, "# gwbench %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&rep, "go %s, %d CPUs, pinned=%t, gateway GOMAXPROCS=%s, %s per target after %s warm-up; auth=api_key, tracing on (no exporter), request logging on; transports: %s.\n\n",
		runtime.Version(), runtime.NumCPU(), o.pin, gws[0].gw.Procs, o.duration, o.warmup, strings.Join(transportNames(gws), ", "))
	fmt.Fprintf(&rep, "%s Load average at start: %s.\n\n", bifrostNote, loadAvg())
	rep.WriteString("Allocations per request: the delta of go_memstats_mallocs_total (and alloc_bytes_total) on the process's /metrics over the measured window, divided by the requests.\n\n")

	// 1. Max throughput, closed loop.
	fmt.Fprintf(&rep, "## Max throughput: %d connections, closed loop, non-streaming chat\n\n", o.conns)
	rep.WriteString("| target | req/s | p50 | p99 | errors | gateway CPU/req | allocs/req (bytes) | req/s vs direct |\n|---|---|---|---|---|---|---|---|\n")
	var base result
	var profiles []string
	for i, t := range unary {
		runClosed(t, o.conns, o.warmup, nil)
		stopProf := startProfile(profDir, t, "max", o.duration, &profiles)
		u0 := snapshot(t)
		r := runClosed(t, o.conns, o.duration, nil)
		u1 := snapshot(t)
		stopProf()
		if i == 0 {
			base = r
		}
		fmt.Fprintf(&rep, "| %s | %.0f | %s | %s | %d | %s | %s | %.2f |\n", t.name, r.rps(), ms(r.p(50)), ms(r.p(99)), r.errs, u1.cpuPer(u0, r.n, 1), u1.allocsPer(u0, r.n), r.rps()/base.rps())
	}

	// 2. Fixed rate, open loop: added latency.
	fmt.Fprintf(&rep, "\n## Fixed rate: %d req/s, open loop (latency from the scheduled send time)\n\n", o.rate)
	rep.WriteString("| target | p50 | p99 | added p50 | added p99 | errors | gateway CPU/req | allocs/req (bytes) |\n|---|---|---|---|---|---|---|---|\n")
	for i, t := range unary {
		runOpen(t, o.rate, o.warmup)
		stopProf := startProfile(profDir, t, "rate", o.duration, &profiles)
		u0 := snapshot(t)
		r := runOpen(t, o.rate, o.duration)
		u1 := snapshot(t)
		stopProf()
		if i == 0 {
			base = r
		}
		fmt.Fprintf(&rep, "| %s | %s | %s | %s | %s | %d | %s | %s |\n", t.name, ms(r.p(50)), ms(r.p(99)), ms(r.p(50)-base.p(50)), ms(r.p(99)-base.p(99)), r.errs, u1.cpuPer(u0, r.n, 1), u1.allocsPer(u0, r.n))
	}

	// 3. Streams: time to first token and whole-stream time.
	fmt.Fprintf(&rep, "\n## Streaming: %d concurrent streams of %d chunks, closed loop\n\n", o.streams, harness.ChunkCount)
	rep.WriteString("| target | streams/s | TTFT p50 | TTFT p99 | added TTFT p50 | total p50 | errors | gateway CPU/stream | CPU/chunk | allocs/stream (bytes) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for i, t := range streamTargets {
		runClosed(t, o.streams, o.warmup, nil)
		var ttft latencies
		u0 := snapshot(t)
		r := runClosed(t, o.streams, o.duration, &ttft)
		u1 := snapshot(t)
		if i == 0 {
			base = result{lat: ttft.sorted()}
		}
		tt := result{lat: ttft.sorted()}
		fmt.Fprintf(&rep, "| %s | %.0f | %s | %s | %s | %s | %d | %s | %s | %s |\n", t.name, r.rps(), ms(tt.p(50)), ms(tt.p(99)), ms(tt.p(50)-base.p(50)), ms(r.p(50)),
			r.errs, u1.cpuPer(u0, r.n, 1), u1.cpuPer(u0, r.n, harness.ChunkCount), u1.allocsPer(u0, r.n))
	}
	fmt.Fprintf(&rep, "\nCPU/chunk: CPU per stream / %d content chunks (each stream has %d SSE events: role, content, finish, usage, [DONE]).\n\n", harness.ChunkCount, harness.ChunkCount+4)
	for _, g := range gws {
		fmt.Fprintf(&rep, "%s RSS: idle at start %.1f MiB, after the run %.1f MiB.\n", processName(g.label), g.gw.IdleRSS, g.gw.RSSMiB())
	}

	// 4. Many streams: thousands of long, paced streams at once.
	if o.many {
		if err := manyStreams(&rep, o, manyTargets, manyTr); err != nil {
			return err
		}
	} else {
		rep.WriteString("\nMany-streams scenario: skipped (-many not given).\n")
	}

	fmt.Print(rep.String())
	if out := o.out; out != "" {
		if err := os.WriteFile(out, []byte(rep.String()), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if len(profiles) > 0 {
		fmt.Printf("\n# CPU profiles in %s (top functions of the max-throughput runs)\n", profDir)
		for _, p := range profiles {
			if strings.HasSuffix(p, "-max.pprof") {
				printTop(p)
			}
		}
	}
	return nil
}

func transportNames(gws []*gwTargets) []string {
	var out []string
	for _, g := range gws {
		if g.label == "bifrost" {
			continue
		}
		if g.label == "" {
			out = append(out, "binary default")
		} else {
			out = append(out, g.label)
		}
	}
	return out
}

func processName(l string) string {
	switch l {
	case "":
		return "Gateway"
	case "bifrost":
		return "Bifrost"
	}
	return "Gateway (" + l + ")"
}

// startProfile starts a CPU profile of t's gateway for d when dir is set; the returned func waits
// for it and appends its path to *paths.
func startProfile(dir string, t target, scenario string, d time.Duration, paths *[]string) func() {
	if dir == "" || t.gw == nil || t.kind == "bifrost" {
		return func() {}
	}
	name := t.kind + "-" + scenario
	if t.transport != "" {
		name = t.transport + "-" + name
	}
	path := filepath.Join(dir, name+".pprof")
	done := make(chan error, 1)
	go func() { done <- t.gw.CPUProfile(path, d) }()
	return func() {
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "gwbench: profile:", err)
			return
		}
		*paths = append(*paths, path)
	}
}

// printTop prints the flat and cumulative top functions of a CPU profile with go tool pprof.
func printTop(path string) {
	for _, sort := range []string{"-flat", "-cum"} {
		fmt.Printf("\n## %s (%s)\n\n", filepath.Base(path), strings.TrimPrefix(sort, "-"))
		cmd := exec.Command("go", "tool", "pprof", "-top", sort, "-nodecount=35", path)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "gwbench: pprof:", err)
		}
	}
}

// target sends one request; ttft, when non-nil, receives the time to the first streamed byte.
type target struct {
	name string
	do   func(ttft *time.Duration) error
	gw   *harness.Gateway // nil for direct calls
	kind string           // "rest" or "grpc" for gateway targets, "bifrost" for Bifrost (REST)
	// transport is the gateway's server.gateway_transport ("" for the binary's default).
	transport string
}

func httpDo(c *http.Client, url, key string, body []byte) func(*time.Duration) error {
	return func(*time.Duration) error {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

func httpStream(c *http.Client, url, key string, body []byte) func(*time.Duration) error {
	return func(ttft *time.Duration) error {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		buf := make([]byte, 4096)
		first := true
		var tail []byte // the last bytes read, enough to see the [DONE] event
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 && first {
				first = false
				*ttft = time.Since(start)
			}
			tail = append(tail, buf[:n]...)
			if len(tail) > 64 {
				tail = append(tail[:0], tail[len(tail)-64:]...)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
		}
		if !bytes.HasSuffix(tail, []byte("data: [DONE]\n\n")) {
			return errors.New("stream did not end with [DONE]")
		}
		return nil
	}
}

func grpcRequest(model string) *pb.CreateChatCompletionRequest {
	return &pb.CreateChatCompletionRequest{
		Model: model,
		Messages: []*pb.ChatMessage{
			{Role: "system", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: "You are terse."}}},
			{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: "Say hello to the benchmark."}}},
		},
		MaxTokens:   ptr[int32](64),
		Temperature: ptr(0.2),
	}
}

func grpcDo(ctx context.Context, c pb.ChatServiceClient) func(*time.Duration) error {
	req := grpcRequest("up/bench-model")
	return func(*time.Duration) error {
		_, err := c.CreateChatCompletion(ctx, req)
		return err
	}
}

func grpcStream(ctx context.Context, c pb.ChatServiceClient, model string) func(*time.Duration) error {
	req := &pb.StreamChatCompletionRequest{Request: grpcRequest(model)}
	return func(ttft *time.Duration) error {
		start := time.Now()
		s, err := c.StreamChatCompletion(ctx, req)
		if err != nil {
			return err
		}
		for first := true; ; first = false {
			_, err := s.Recv()
			if first {
				*ttft = time.Since(start)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) sorted() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	return l.d
}

type result struct {
	n, errs int
	elapsed time.Duration
	lat     []time.Duration // sorted
}

func (r result) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r result) p(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat)-1) * q / 100)
	return r.lat[i]
}

// sortedCopy returns r.lat sorted (r.lat itself is left as it was).
func (r result) sortedCopy() []time.Duration {
	out := append([]time.Duration(nil), r.lat...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

// runClosed runs workers that each send the next request as soon as the last one finished.
func runClosed(t target, workers int, d time.Duration, ttft *latencies) result {
	var lat latencies
	var n, errs atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				var first time.Duration
				s := time.Now()
				err := t.do(&first)
				lat.add(time.Since(s))
				n.Add(1)
				if err != nil {
					errs.Add(1)
				} else if ttft != nil {
					ttft.add(first)
				}
			}
		}()
	}
	wg.Wait()
	return result{n: int(n.Load()), errs: int(errs.Load()), elapsed: time.Since(start), lat: lat.sorted()}
}

// runOpen sends requests at a fixed rate regardless of how long earlier ones take, and measures
// each from the moment it was due (so a stalled gateway cannot hide its queueing).
func runOpen(t target, rate int, d time.Duration) result {
	var lat latencies
	var errs atomic.Int64
	interval := time.Second / time.Duration(rate)
	total := int(d / interval)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range total {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first time.Duration
			err := t.do(&first)
			lat.add(time.Since(due))
			if err != nil {
				errs.Add(1)
			}
		}()
	}
	wg.Wait()
	return result{n: total, errs: int(errs.Load()), elapsed: time.Since(start), lat: lat.sorted()}
}

// startGateway starts binary with auth and request logging on, serving the upstream as provider
// "up". transport, when set, is written as server.gateway_transport.
func startGateway(binary, upstreamAddr, transport string, pin bool, env []string) (*harness.Gateway, error) {
	cfg := harness.AuthConfig + fmt.Sprintf(`providers:
  - {name: up, type: openai, base_url: "http://%s/v1", api_key: sk-upstream}
`, upstreamAddr)
	if transport != "" {
		cfg = fmt.Sprintf("server: {gateway_transport: %s}\n", transport) + cfg
	}
	return harness.StartGateway(harness.GatewayOptions{Binary: binary, Config: cfg, Pin: pin, Env: env})
}

// splitEnv splits "A=1,B=2" into its entries; "" is none.
func splitEnv(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
