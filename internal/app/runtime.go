package app

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
)

// DefaultGCPercent is runtime.gc_percent when the config leaves it out. The gateway's live heap
// is small (5-10 MB: caches, pools, the router) and nearly everything a request allocates dies
// with it, so at Go's default of 100 the collector runs every few hundred requests and costs
// 10-17 % of the CPU at full load (bench/README.md, "Garbage collector"). At 400 it runs a
// quarter as often for ~20 MB more heap; the memory limit below keeps large heaps in check.
const DefaultGCPercent = 400

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
	// collection. Default 400; -1 turns the proportional collector off (then only the memory
	// limit triggers collections).
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimit is GOMEMLIMIT, in bytes: a soft limit on the memory the Go runtime uses; near
	// it the collector runs as often as needed (at most about half the CPU) whatever gc_percent
	// says. Default: 90 % of the cgroup memory limit (a container's limit), or half the RAM
	// without one. Negative: no limit.
	MemoryLimit int64 `yaml:"memory_limit"`
}

func (r *RuntimeConfig) applyDefaults() {
	setDefault(&r.GCPercent, DefaultGCPercent)
	if r.MemoryLimit == 0 {
		r.MemoryLimit = defaultMemoryLimit()
	}
}

func (r *RuntimeConfig) validate(add func(string, ...any)) {
	if r.GCPercent < -1 {
		add("runtime.gc_percent: must be -1 (off) or positive, got %d", r.GCPercent)
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
	if getenv("GOGC") != "" {
		gcSource = "GOGC"
	} else {
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
