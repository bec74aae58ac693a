// Command soak runs mixed traffic through a real switchyard process for a set time and watches it
// for leaks: REST and gRPC, unary and streaming chat, sessions (create, turns over both
// transports, delete or abandon), embeddings, at a fixed moderate rate, against an upstream that
// injects faults (429, 500, 503, a dropped connection, a slow answer) behind a route with retries
// and a fallback target. Auth (API key) and the audit log (default SQLite) are on.
//
// Every -interval it prints the gateway's RSS, heap in use, goroutines and open fds with the
// requests so far; at the end it compares the medians of the middle and last thirds of the run and
// exits 1 when memory or goroutines grew (bench/README.md, Soak).
//
//	make build && go run ./bench/cmd/soak -binary bin/switchyard -duration 10m
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/switchyard/switchyard/bench/internal/harness"
)

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "bin/switchyard", "switchyard binary to soak")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to run the traffic")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "time between samples")
	flag.IntVar(&o.rate, "rate", 200, "operations per second, all kinds together (a session operation is 3-4 calls)")
	flag.Float64Var(&o.faults, "faults", 0.1, "share of upstream calls that get a fault (429, 500, 503, reset, slow)")
	flag.Float64Var(&o.abandon, "abandon", 0.5, "share of sessions left to expire instead of deleted")
	flag.BoolVar(&o.redis, "redis", false, "sessions backend tiered with Redis at 127.0.0.1:6379 (default: memory)")
	flag.Float64Var(&o.maxGrowth, "max-growth", 0.10, "largest RSS and GC-goal growth (last third's median over the middle third's) that counts as flat")
	flag.IntVar(&o.goroutineSlack, "goroutine-slack", 20, "largest goroutine and fd growth (medians, last third over middle third) that counts as flat")
	flag.StringVar(&o.out, "out", "", "also write the report (markdown) to this file")
	flag.StringVar(&o.profiles, "profiles", "", "save the gateway's heap and goroutine profiles at the start of the middle third and at the end into this directory")
	flag.DurationVar(&o.tableEvery, "table-every", time.Minute, "sample spacing in the markdown table")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	flat, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if !flat {
		os.Exit(1)
	}
}

type options struct {
	binary             string
	duration, interval time.Duration
	tableEvery         time.Duration
	rate               int
	faults, abandon    float64
	redis              bool
	maxGrowth          float64
	goroutineSlack     int
	out, profiles      string
}

// faultMix draws a fault for share of the upstream calls: of those, 30 % 429, 20 % 500, 20 % 503,
// 20 % a dropped connection (mid-stream for streams), 10 % an answer slower than attempt_timeout.
func faultMix(share float64) func() harness.Fault {
	return func() harness.Fault {
		if rand.Float64() >= share {
			return harness.FaultNone
		}
		switch r := rand.IntN(10); {
		case r < 3:
			return harness.Fault429
		case r < 5:
			return harness.Fault500
		case r < 7:
			return harness.Fault503
		case r < 9:
			return harness.FaultReset
		default:
			return harness.FaultSlow
		}
	}
}

// gatewayConfig serves the upstream as two providers behind the routes "chat" and "embed"
// (priority: up first, up2 on fallback), with quick retries and an attempt timeout shorter than the
// slow fault.
func gatewayConfig(upstreamAddr string, redis bool) string {
	sessions := "sessions: {backend: memory}\n"
	if redis {
		sessions = "sessions: {backend: tiered, redis: {addrs: [127.0.0.1:6379], prefix: \"soak:sess:\"}}\n"
	}
	return harness.AuthConfig + fmt.Sprintf(`providers:
  - {name: up, type: openai, base_url: "http://%[1]s/v1", api_key: sk-upstream}
  - {name: up2, type: openai, base_url: "http://%[1]s/v1", api_key: sk-upstream}
routes:
  - name: chat
    strategy: priority
    targets: [{model: up/bench-model}, {model: up2/bench-model}]
    retry: {max_retries: 2, initial_backoff: 10ms, multiplier: 2, max_backoff: 100ms, retry_after_cap: 1s}
    timeout: 10s
    attempt_timeout: 1s
  - name: embed
    strategy: priority
    targets: [{model: up/bench-embed}, {model: up2/bench-embed}]
    retry: {max_retries: 2, initial_backoff: 10ms, multiplier: 2, max_backoff: 100ms, retry_after_cap: 1s}
    timeout: 10s
    attempt_timeout: 1s
audit: {enabled: true}
`, upstreamAddr) + sessions
}

func run(ctx context.Context, o options) (bool, error) {
	if o.rate <= 0 || o.interval <= 0 || o.duration < o.interval {
		return false, fmt.Errorf("need -rate > 0 and -duration >= -interval > 0")
	}
	up := harness.NewUpstream()
	up.Faults = faultMix(o.faults)
	up.SlowFor = 1500 * time.Millisecond
	if err := up.Start(); err != nil {
		return false, err
	}
	defer up.Close()
	gw, err := harness.StartGateway(harness.GatewayOptions{Binary: o.binary, Config: gatewayConfig(up.Addr, o.redis)})
	if err != nil {
		return false, err
	}
	defer gw.Stop()
	cl, err := newClients(gw, o.abandon)
	if err != nil {
		return false, err
	}
	defer cl.close()

	backend := "memory"
	if o.redis {
		backend = "tiered (memory → Redis 127.0.0.1:6379 → SQLite)"
	}
	fmt.Printf("soak: %s at %d ops/s for %s; upstream faults %.0f %% of calls; sessions %s, %.0f %% abandoned; gateway pid %d, log %s\n",
		o.binary, o.rate, o.duration, o.faults*100, backend, o.abandon*100, gw.PID(), gw.Dir+"/gateway.log")

	load0 := loadAvg()
	trafficCtx, stopTraffic := context.WithTimeout(ctx, o.duration)
	defer stopTraffic()
	done := make(chan struct{})
	go func() { cl.drive(trafficCtx, o.rate); close(done) }()

	start := time.Now()
	var samples []sample
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	profiledMid := false
	for loop := true; loop; {
		select {
		case <-trafficCtx.Done():
			loop = false
		case <-tick.C:
			s := takeSample(gw, cl, time.Since(start))
			samples = append(samples, s)
			fmt.Println(s.line())
			if o.profiles != "" && !profiledMid && s.elapsed >= o.duration/3 {
				profiledMid = true
				saveProfiles(gw, o.profiles, "mid")
			}
		}
	}
	<-done
	if o.profiles != "" {
		saveProfiles(gw, o.profiles, "end")
	}
	if ctx.Err() != nil {
		return false, fmt.Errorf("interrupted")
	}
	v := judge(samples, o.maxGrowth, o.goroutineSlack)
	rep := report(o, backend, load0, loadAvg(), samples, cl, v)
	fmt.Print("\n" + rep)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep), 0o644); err != nil {
			return false, fmt.Errorf("write report: %w", err)
		}
	}
	return v.flat, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:3], " ")
}

// saveProfiles writes the gateway's heap profile and goroutine dump as <dir>/<tag>-heap.pprof and
// <dir>/<tag>-goroutine.txt; compare them with go tool pprof -base mid-heap.pprof end-heap.pprof.
func saveProfiles(gw *harness.Gateway, dir, tag string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "soak: profiles:", err)
		return
	}
	for name, path := range map[string]string{tag + "-heap.pprof": "/debug/pprof/heap", tag + "-goroutine.txt": "/debug/pprof/goroutine?debug=1"} {
		b, err := gw.Admin(path)
		if err == nil {
			err = os.WriteFile(dir+"/"+name, b, 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak: profile:", err)
		}
	}
}

func report(o options, backend, load0, load1 string, samples []sample, cl *clients, v verdict) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# soak %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "`go run ./bench/cmd/soak -duration %s -rate %d -faults %g -abandon %g%s`: %s, %d CPUs, load average %s at the start, %s at the end. "+
		"Auth api_key, audit on (SQLite), sessions %s; upstream faults on %.0f %% of calls (429, 500, 503, reset, slow 1.5 s > attempt_timeout 1 s).\n\n",
		o.duration, o.rate, o.faults, o.abandon, map[bool]string{true: " -redis"}[o.redis], runtime.Version(), runtime.NumCPU(), load0, load1, backend, o.faults*100)
	b.WriteString("| elapsed | RSS MiB | heap in use MiB | GC goal MiB | goroutines | open fds | ok | errors | load |\n|---|---|---|---|---|---|---|---|---|\n")
	for i, s := range samples {
		if i != len(samples)-1 && s.elapsed.Round(time.Second)%o.tableEvery.Round(time.Second) != 0 {
			continue
		}
		ok, errs := s.totals()
		fmt.Fprintf(&b, "| %s | %.1f | %.1f | %.1f | %d | %d | %d | %d | %s |\n", s.elapsed.Round(time.Second), s.rssMiB, s.heapMiB, s.gcGoalMiB, s.goroutines, s.fds, ok, errs, strings.Fields(s.load)[0])
	}
	b.WriteString("\nRequests by kind over the whole run (ok / errors):\n\n| kind | ok | errors |\n|---|---|---|\n")
	for i, k := range kindNames {
		fmt.Fprintf(&b, "| %s | %d | %d |\n", k, cl.ok[i].Load(), cl.errs[i].Load())
	}
	if top := cl.topErrors(8); top != "" {
		b.WriteString("\nMost frequent errors:\n\n" + top)
	}
	b.WriteString("\n" + v.text + "\n")
	return b.String()
}
