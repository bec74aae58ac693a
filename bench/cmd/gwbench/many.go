package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard/switchyard/bench/internal/harness"
)

// longModel is the model whose streams the upstream paces (harness.Upstream.AddPacedStream): the
// many-streams scenario asks for it, directly or through a gateway ("up/..." or "openai/...").
const longModel = "bench-long"

// raiseFDLimit raises this process's soft limit on open files to at least need (up to the hard
// limit); the gateway and Bifrost, started afterwards, inherit it.
func raiseFDLimit(need uint64) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		fmt.Fprintf(os.Stderr, "gwbench: open files hard limit %d < %d needed: streams may fail with EMFILE (raise it with ulimit -Hn)\n", lim.Max, need)
		need = lim.Max
	}
	lim.Cur = need
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit(RLIMIT_NOFILE, %d): %w", need, err)
	}
	return nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// usage is what a target's process had used at one moment: CPU from /proc and, when its /metrics
// has the Prometheus Go collector, the Go heap's allocation counters.
type usage struct {
	cpu             int64 // ns
	mallocs, abytes float64
	memstats        bool
}

func snapshot(t target) usage {
	if t.gw == nil {
		return usage{}
	}
	u := usage{cpu: t.gw.CPU()}
	if m, err := t.gw.Admin("/metrics"); err == nil {
		var ok1, ok2 bool
		u.mallocs, ok1 = harness.Metric(m, "go_memstats_mallocs_total")
		u.abytes, ok2 = harness.Metric(m, "go_memstats_alloc_bytes_total")
		u.memstats = ok1 && ok2
	}
	return u
}

// cpuPer is the CPU used since before, per n requests of `each` units ("—" for direct calls).
func (u usage) cpuPer(before usage, n, each int) string {
	if u.cpu == 0 || n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f µs", float64(u.cpu-before.cpu)/float64(n*each)/1e3)
}

// allocsPer is the heap allocations (count and bytes) since before per request ("—" when the
// process has no Go collector on /metrics). One /metrics scrape is inside the window.
func (u usage) allocsPer(before usage, n int) string {
	if !u.memstats || !before.memstats || n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f (%.1f KiB)", (u.mallocs-before.mallocs)/float64(n), (u.abytes-before.abytes)/float64(n)/1024)
}

// manyResult is one target's many-streams run; the latencies cover the streams started in the
// measured window.
type manyResult struct {
	ok, errs    int
	warmupErrs  int // errors of the streams started before the window
	firstErr    error
	window      time.Duration
	ttft, total []time.Duration // sorted
	gwCPU       int64           // the target process's CPU in the window, ns
	selfCPU     int64           // this process's (load generator + upstream) CPU in the window, ns
	peakRSS     float64         // MiB: the highest VmRSS sampled every 100 ms, or VmHWM if higher
}

func (r manyResult) p(lat []time.Duration, q float64) time.Duration { return result{lat: lat}.p(q) }

func selfCPU() int64 {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// runMany keeps n streams open at once: worker i starts after i/n of one stream's time (so the
// streams are spread over the upstream's pacing instead of starting in one burst), then each
// worker opens its next stream as soon as the last one ended, until the end of the window. The
// first stream's time (every worker has started and holds a connection) is warm-up; the window of
// d after it is measured.
func runMany(t target, n int, streamTime, d time.Duration) manyResult {
	var (
		mu          sync.Mutex
		ttft, total []time.Duration
		firstErr    error
		errs        atomic.Int64
		warmupErrs  atomic.Int64
	)
	if t.gw != nil {
		_ = t.gw.ResetPeak()
	}
	var peak atomic.Uint64 // MiB × 1000
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	if t.gw != nil {
		sampling.Add(1)
		go func() {
			defer sampling.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				rss, hwm := t.gw.Memory()
				if v := uint64(max(rss, hwm) * 1000); v > peak.Load() {
					peak.Store(v)
				}
				select {
				case <-stopSampling:
					return
				case <-tick.C:
				}
			}
		}()
	}
	start := time.Now()
	from := start.Add(streamTime)
	end := from.Add(d)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(start.Add(streamTime * time.Duration(i) / time.Duration(n))))
			for {
				s := time.Now()
				if !s.Before(end) {
					return
				}
				var first time.Duration
				err := t.do(&first)
				if err != nil {
					time.Sleep(10 * time.Millisecond) // a refusing target must not turn 2,000 workers into a busy loop
				}
				if s.Before(from) {
					if err != nil {
						warmupErrs.Add(1)
					}
					continue
				}
				if err != nil {
					if errs.Add(1) == 1 {
						mu.Lock()
						firstErr = err
						mu.Unlock()
					}
					continue
				}
				took := time.Since(s)
				mu.Lock()
				ttft, total = append(ttft, first), append(total, took)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Until(from))
	u0, self0 := snapshot(t), selfCPU()
	time.Sleep(time.Until(end))
	u1, self1 := snapshot(t), selfCPU()
	wg.Wait()
	close(stopSampling)
	sampling.Wait()
	r := manyResult{ok: len(ttft), errs: int(errs.Load()), warmupErrs: int(warmupErrs.Load()), firstErr: firstErr, window: d,
		ttft: result{lat: ttft}.sortedCopy(), total: result{lat: total}.sortedCopy(),
		gwCPU: u1.cpu - u0.cpu, selfCPU: self1 - self0, peakRSS: float64(peak.Load()) / 1000}
	return r
}

// manyStreams runs the many-streams scenario on every target and writes its section of the report.
func manyStreams(rep *strings.Builder, o options, targets []target, tr *http.Transport) error {
	streamTime := time.Duration(o.manyChunks) * o.manyEvery
	fmt.Fprintf(rep, "\n## Many streams: %d concurrent streams of %d chunks × %s, closed loop\n\n", o.manyStreams, o.manyChunks, o.manyEvery)
	fmt.Fprintf(rep, "Load average before: %s. Each target: %s of staggered start (warm-up), then %s measured; "+
		"latencies and streams/s cover the streams started in the measured window. Peak RSS: the highest of VmRSS sampled every 100 ms and VmHWM (reset before each target). "+
		"CPU/chunk: the process's CPU in the window / (streams started in the window × %d). Load gen CPU: this process (clients and upstream) in the window, in cores.\n\n",
		loadAvg(), streamTime, o.manyDuration, o.manyChunks)
	rep.WriteString("| target | streams/s | TTFT p50 | TTFT p99 | TTFT p99 / direct | stream p50 | stream p99 | errors (warm-up) | peak RSS | CPU/chunk | load gen CPU |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	var direct time.Duration
	var errLines []string
	failed := false
	for i, t := range targets {
		if failed && t.gw != nil {
			// An earlier target's failures may have opened the gateway's circuit breaker (it opens
			// for 30 s by default, for REST and gRPC alike): wait until one stream goes through.
			settle(t, 45*time.Second)
		}
		fmt.Fprintf(os.Stderr, "gwbench: many streams: %s (load average %s)\n", t.name, loadAvg())
		var logFrom int64
		if t.gw != nil {
			logFrom = t.gw.LogSize()
		}
		r := runMany(t, o.manyStreams, streamTime, o.manyDuration)
		tr.CloseIdleConnections()
		if r.errs+r.warmupErrs > 0 {
			failed = true
		}
		p99 := r.p(r.ttft, 99)
		if i == 0 {
			direct = p99
		}
		ratio, peak, cpu := "—", "—", "—"
		if i > 0 && direct > 0 {
			ratio = fmt.Sprintf("%.2f", float64(p99)/float64(direct))
		}
		if t.gw != nil {
			peak = fmt.Sprintf("%.1f MiB", r.peakRSS)
			if r.ok > 0 {
				cpu = fmt.Sprintf("%.1f µs", float64(r.gwCPU)/float64(r.ok*o.manyChunks)/1e3)
			}
		}
		fmt.Fprintf(rep, "| %s | %.1f | %s | %s | %s | %s | %s | %d (%d) | %s | %s | %.2f |\n", t.name, float64(r.ok)/r.window.Seconds(),
			ms(r.p(r.ttft, 50)), ms(p99), ratio, ms(r.p(r.total, 50)), ms(r.p(r.total, 99)), r.errs, r.warmupErrs, peak, cpu, float64(r.selfCPU)/float64(r.window))
		var problems []string
		if t.gw != nil {
			problems = t.gw.LogProblems(logFrom, 3)
		}
		if r.firstErr != nil || len(problems) > 0 {
			line := fmt.Sprintf("- %s: %d errors (%d in warm-up)", t.name, r.errs, r.warmupErrs)
			if r.firstErr != nil {
				line += fmt.Sprintf(", the first in the window: %v", r.firstErr)
			}
			errLines = append(errLines, line)
			for _, p := range problems {
				errLines = append(errLines, "  - its log: "+p)
			}
		}
	}
	fmt.Fprintf(rep, "\nTargets: TTFT p99 / direct ≤ 2, peak RSS ≤ 256 MiB. Load average after: %s.\n", loadAvg())
	if len(errLines) > 0 {
		rep.WriteString("\n" + strings.Join(errLines, "\n") + "\n")
	}
	return nil
}

// settle sends one stream to t every second until one succeeds, for at most d.
func settle(t target, d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Second) {
		var first time.Duration
		if t.do(&first) == nil {
			return
		}
	}
	fmt.Fprintf(os.Stderr, "gwbench: %s still failing after %s\n", t.name, d)
}
