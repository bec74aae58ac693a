package app

import (
	"bytes"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// restoreRuntime puts the collector's settings back after a test that changes them.
func restoreRuntime(t *testing.T) {
	gc := debug.SetGCPercent(100)
	limit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gc)
		debug.SetMemoryLimit(limit)
	})
}

func TestRuntimeDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(base), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.GCPercent != 0 {
		t.Errorf("gc_percent = %d, want 0 (automatic)", cfg.Runtime.GCPercent)
	}
	if want := defaultMemoryLimit(); cfg.Runtime.MemoryLimit != want {
		t.Errorf("memory_limit = %d, want %d", cfg.Runtime.MemoryLimit, want)
	}
	if ramSize() > 0 && cfg.Runtime.MemoryLimit <= 0 {
		t.Errorf("memory_limit = %d on a machine whose RAM is known", cfg.Runtime.MemoryLimit)
	}
}

func TestRuntimeValidate(t *testing.T) {
	for _, tc := range []struct {
		yaml, want string
	}{
		{"runtime: {gc_percent: -2}", "runtime.gc_percent"},
		{"runtime: {gc_percent: -1, memory_limit: -1}", "never collect"},
	} {
		cfg, err := ParseConfig([]byte(base+tc.yaml), env(nil))
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.yaml, err, tc.want)
		}
	}
}

func TestApplyRuntime(t *testing.T) {
	restoreRuntime(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	applyRuntime(RuntimeConfig{GCPercent: 250, MemoryLimit: 300 << 20}, env(nil), log)
	if gc := debug.SetGCPercent(100); gc != 250 {
		t.Errorf("GOGC = %d, want 250 from the config", gc)
	}
	if limit := debug.SetMemoryLimit(-1); limit != 300<<20 {
		t.Errorf("memory limit = %d, want %d from the config", limit, 300<<20)
	}
	if !strings.Contains(logs.String(), "gc_percent=250") || !strings.Contains(logs.String(), "memory_limit=\"300 MiB\"") {
		t.Errorf("log line does not state the settings: %s", logs.String())
	}

	// The environment wins: the settings it made are left as they are.
	debug.SetGCPercent(77)
	debug.SetMemoryLimit(123 << 20)
	environ := env(map[string]string{"GOGC": "77", "GOMEMLIMIT": "123MiB"})
	applyRuntime(RuntimeConfig{GCPercent: 250, MemoryLimit: 300 << 20}, environ, log)
	if gc := debug.SetGCPercent(100); gc != 77 {
		t.Errorf("GOGC = %d, want 77 from the environment", gc)
	}
	if limit := debug.SetMemoryLimit(-1); limit != 123<<20 {
		t.Errorf("memory limit = %d, want the environment's", limit)
	}

	// A negative memory limit removes any limit.
	applyRuntime(RuntimeConfig{GCPercent: 100, MemoryLimit: -1}, env(nil), log)
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		t.Errorf("memory limit = %d, want none", limit)
	}
}

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 400},
		{6 * mib, 400},   // small heap: the ceiling
		{16 * mib, 400},  // 64/16 = 400 %
		{32 * mib, 200},  // 64/32
		{64 * mib, 100},  // 64/64
		{500 * mib, 100}, // big heap: the floor
	} {
		if got := gcPercentFor(tc.live, 64*mib, 100, 400); got != tc.want {
			t.Errorf("live %d MiB: %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

// TestGCTuner: after collections, GOGC follows the live heap: the ceiling for a small heap, lower
// while a large one is held.
func TestGCTuner(t *testing.T) {
	restoreRuntime(t)
	stop := startGCTuner(100, 400, 64<<20)
	defer stop()
	gcAndWait := func() {
		for range 3 { // the finalizer runs after the cycle; a few cycles let it run and re-arm
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
	}
	gcAndWait()
	if gc := readGCPercent(); gc != 400 {
		t.Errorf("GOGC = %d with a small heap, want 400", gc)
	}
	held := make([][]byte, 0, 128)
	for range 128 { // 128 MiB live: twice the headroom
		held = append(held, make([]byte, 1<<20))
	}
	gcAndWait()
	if gc := readGCPercent(); gc > 150 {
		t.Errorf("GOGC = %d with 128 MiB live, want about 100", gc)
	}
	runtime.KeepAlive(held)
	held = nil
	gcAndWait()
	if gc := readGCPercent(); gc != 400 {
		t.Errorf("GOGC = %d after the heap shrank, want 400 again", gc)
	}
}

func readGCPercent() int {
	gc := debug.SetGCPercent(100)
	debug.SetGCPercent(gc)
	return gc
}
