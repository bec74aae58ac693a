package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchyard/switchyard/bench/internal/harness"
)

// sample is one look at the gateway: resources from /proc and from its /metrics (the Prometheus
// Go collector: go_goroutines, go_memstats_heap_inuse_bytes, go_memstats_next_gc_bytes), and the
// outcomes so far.
type sample struct {
	elapsed time.Duration
	rssMiB  float64
	heapMiB float64 // heap in use: a saw-tooth between the live heap and the GC goal; -1 when /metrics could not be read
	// gcGoalMiB is the heap size at which the next GC starts: set by each GC from the live heap it
	// found (twice it with GOGC=100, at least 4 MiB), so it follows the live heap without the
	// saw-tooth; -1 when /metrics could not be read.
	gcGoalMiB  float64
	goroutines int // -1 when /metrics could not be read
	fds        int
	ok, errs   [kindCount]int64
	load       string
}

func takeSample(gw *harness.Gateway, cl *clients, elapsed time.Duration) sample {
	s := sample{elapsed: elapsed, rssMiB: gw.RSSMiB(), fds: gw.OpenFDs(), heapMiB: -1, gcGoalMiB: -1, goroutines: -1, load: loadAvg()}
	if m, err := gw.Admin("/metrics"); err == nil {
		if v, ok := metric(m, "go_memstats_heap_inuse_bytes"); ok {
			s.heapMiB = v / (1 << 20)
		}
		if v, ok := metric(m, "go_memstats_next_gc_bytes"); ok {
			s.gcGoalMiB = v / (1 << 20)
		}
		if v, ok := metric(m, "go_goroutines"); ok {
			s.goroutines = int(v)
		}
	}
	for k := range kindCount {
		s.ok[k], s.errs[k] = cl.ok[k].Load(), cl.errs[k].Load()
	}
	return s
}

// metric returns the value of an unlabelled series in a Prometheus text exposition.
func metric(exposition []byte, name string) (float64, bool) { return harness.Metric(exposition, name) }

func (s sample) totals() (ok, errs int64) {
	for k := range kindCount {
		ok += s.ok[k]
		errs += s.errs[k]
	}
	return ok, errs
}

func (s sample) line() string {
	var b strings.Builder
	ok, errs := s.totals()
	fmt.Fprintf(&b, "%6s  ok %d err %d [", s.elapsed.Round(time.Second), ok, errs)
	for k := range kindCount {
		if k > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s %d/%d", kindShort[k], s.ok[k], s.errs[k])
	}
	fmt.Fprintf(&b, "]  rss %.1f MiB  heap %.1f MiB  gc goal %.1f MiB  goroutines %d  fds %d  load %s", s.rssMiB, s.heapMiB, s.gcGoalMiB, s.goroutines, s.fds, s.load)
	return b.String()
}

type verdict struct {
	flat bool
	text string // markdown
}

// judge compares the medians of the middle and the last third of the samples (the first third is
// warm-up: pools, caches and the GC's target settle there). Flat means RSS and the GC goal grew
// less than maxGrowth, and goroutines and open fds grew by at most slack (they follow the requests
// and connections in flight, which the machine's load moves by dozens both ways; a drop is never a
// leak, so only growth is judged). Heap in use is shown
// but not judged: sampled at random points of its saw-tooth, its median moves by ±20 % without
// any leak; the GC goal carries the same signal (the live heap) without the saw-tooth.
func judge(samples []sample, maxGrowth float64, slack int) verdict {
	if len(samples) < 3 {
		return verdict{flat: true, text: fmt.Sprintf("**Not judged**: %d samples, at least 3 are needed.", len(samples))}
	}
	n := len(samples)
	mid, last := samples[n/3:2*n/3], samples[2*n/3:]
	checks := []struct {
		name   string
		of     func(sample) float64
		memory bool // judged by relative growth, in MiB; else by absolute change
		judged bool
	}{
		{"RSS", func(s sample) float64 { return s.rssMiB }, true, true},
		{"heap in use", func(s sample) float64 { return s.heapMiB }, true, false},
		{"GC goal (2 × live heap)", func(s sample) float64 { return s.gcGoalMiB }, true, true},
		{"goroutines", func(s sample) float64 { return float64(s.goroutines) }, false, true},
		{"open fds", func(s sample) float64 { return float64(s.fds) }, false, true},
	}
	flat := true
	var b strings.Builder
	b.WriteString("| measure | middle third median | last third median | change | limit | flat |\n|---|---|---|---|---|---|\n")
	for _, c := range checks {
		m, l := median(mid, c.of), median(last, c.of)
		var ok bool
		if c.memory {
			g := l/m - 1
			ok = m > 0 && g < maxGrowth
			fmt.Fprintf(&b, "| %s | %.1f MiB | %.1f MiB | %+.1f %% | ", c.name, m, l, g*100)
			if c.judged {
				fmt.Fprintf(&b, "< %+.0f %% | %s |\n", maxGrowth*100, yes(ok))
			} else {
				b.WriteString("not judged | — |\n")
			}
		} else {
			ok = m >= 0 && l-m <= float64(slack)
			fmt.Fprintf(&b, "| %s | %.0f | %.0f | %+.0f | ≤ %+d | %s |\n", c.name, m, l, l-m, slack, yes(ok))
		}
		flat = flat && (ok || !c.judged)
	}
	head := "**Flat**: no judged measure grew between the middle and the last third of the run."
	if !flat {
		head = "**Not flat**: a measure grew between the middle and the last third of the run (see the table)."
	}
	return verdict{flat: flat, text: head + "\n\n" + b.String()}
}

func median(ss []sample, of func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = of(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
