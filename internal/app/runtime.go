package app

import (
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// The automatic collector target (runtime.gc_percent left out or 0). The gateway's live heap is
// small (5-10 MB: caches, pools, the router) and nearly everything a request allocates dies with
// it, so at Go's default of 100 the collector runs every few hundred requests and costs 10-17 %
// of the CPU at full load (bench/README.md, "Issue 11: before vs after"). With thousands of open streams
// the live heap is 100 MB and more, and a high fixed GOGC would multiply it. So after every
// collection the target is set to give the heap autoGCHeadroom to grow, within
// [autoGCMin, autoGCMax] percent: 400 for a heap under 8 MiB, falling to 100 as it passes 32 MiB.
const (
	autoGCMin      = 100
	autoGCMax      = 400
	autoGCHeadroom = 32 << 20
)

// Default memory limit, as fractions of the cgroup's memory limit and, without one, of the RAM.
const (
	memLimitCgroupRatio = 0.9
	memLimitRAMRatio    = 0.5
)

// RuntimeConfig tunes the Go garbage collector for `switchyard serve` (process-wide settings:
// Start leaves the runtime alone, so tests and programs embedding the gateway keep theirs).
// The GOGC and GOMEMLIMIT environment variables win over both fields, as Go documents them.
type RuntimeConfig struct {
	// GCPercent is GOGC: the heap may grow by this percentage of the live heap before a
	// collection. 0 (default): automatic, 400 while the live heap is small, down to 100 once it
	// passes 32 MiB (re-set after every collection). -1 turns the proportional collector off
	// (then only the memory limit triggers collections).
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimit is GOMEMLIMIT, in bytes: a soft limit on the memory the Go runtime uses; near
	// it the collector runs as often as needed (at most about half the CPU) whatever gc_percent
	// says. Default: 90 % of the cgroup memory limit (a container's limit), or half the RAM
	// without one. Negative: no limit.
	MemoryLimit int64 `yaml:"memory_limit"`
}

func (r *RuntimeConfig) applyDefaults() {
	if r.MemoryLimit == 0 {
		r.MemoryLimit = defaultMemoryLimit()
	}
}

func (r *RuntimeConfig) validate(add func(string, ...any)) {
	if r.GCPercent < -1 {
		add("runtime.gc_percent: must be -1 (off), 0 (automatic) or positive, got %d", r.GCPercent)
	}
	if r.GCPercent == -1 && r.MemoryLimit < 0 {
		add("runtime: gc_percent -1 with no memory_limit would never collect garbage")
	}
}

// defaultMemoryLimit is 90 % of the cgroup limit, or half the RAM, or none (-1) when neither is
// known.
func defaultMemoryLimit() int64 {
	if n := cgroupMemoryLimit(); n > 0 {
		return int64(float64(n) * memLimitCgroupRatio)
	}
	if n := ramSize(); n > 0 {
		return int64(float64(n) * memLimitRAMRatio)
	}
	return -1
}

// applyRuntime sets the collector's target and memory limit from r, unless the GOGC or
// GOMEMLIMIT environment variable already did, and logs what is in force.
func applyRuntime(r RuntimeConfig, getenv func(string) string, log *slog.Logger) {
	gcSource, limitSource := "config", "config"
	switch {
	case getenv("GOGC") != "":
		gcSource = "GOGC"
	case r.GCPercent == 0:
		gcSource = "automatic"
		startGCTuner(autoGCMin, autoGCMax, autoGCHeadroom)
	default:
		debug.SetGCPercent(r.GCPercent)
	}
	if getenv("GOMEMLIMIT") != "" {
		limitSource = "GOMEMLIMIT"
	} else if r.MemoryLimit > 0 {
		debug.SetMemoryLimit(r.MemoryLimit)
	} else {
		debug.SetMemoryLimit(math.MaxInt64)
	}
	gc := debug.SetGCPercent(-1) // read back (Go has no getter) ...
	debug.SetGCPercent(gc)       // ... and restore
	limit := debug.SetMemoryLimit(-1)
	log.Info("go runtime", "gc_percent", gc, "gc_percent_from", gcSource,
		"memory_limit", memoryLimitString(limit), "memory_limit_from", limitSource)
}

func memoryLimitString(n int64) string {
	if n == math.MaxInt64 {
		return "none"
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// gcTuner re-sets GOGC after every collection so the heap may grow by headroom bytes, within
// [lo, hi] percent of the live heap. It learns of each collection from a finalizer on an
// object it keeps unreachable (the finalizer goroutine runs it after the cycle that freed it),
// and reads the live heap from runtime/metrics.
type gcTuner struct {
	lo, hi   int
	headroom uint64
	current  int
	sample   []metrics.Sample
	stopped  atomic.Bool
}

// gcSentinel is the unreachable object whose finalizer tells the tuner a collection happened.
type gcSentinel struct{ _ int64 } // not zero-sized: zero-sized objects may share an address

// startGCTuner sets GOGC to hi and starts tuning it; the returned function stops the tuning
// (tests: the process's tuner runs until it exits).
func startGCTuner(lo, hi int, headroom uint64) (stop func()) {
	t := &gcTuner{lo: lo, hi: hi, headroom: headroom, current: hi,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	debug.SetGCPercent(hi)
	t.arm()
	return func() { t.stopped.Store(true) }
}

func (t *gcTuner) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		if t.stopped.Load() {
			return
		}
		t.tune()
		t.arm()
	})
}

// tune runs on the finalizer goroutine, one call at a time.
func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if p := gcPercentFor(t.sample[0].Value.Uint64(), t.headroom, t.lo, t.hi); p != t.current {
		t.current = p
		debug.SetGCPercent(p)
	}
}

// gcPercentFor is the GOGC giving a live heap of live bytes headroom bytes to grow, within
// [lo, hi].
func gcPercentFor(live, headroom uint64, lo, hi int) int {
	if live == 0 {
		return hi
	}
	return int(min(max(headroom*100/live, uint64(lo)), uint64(hi)))
}
