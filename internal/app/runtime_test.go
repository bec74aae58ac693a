package app

import (
	"bytes"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
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
	if cfg.Runtime.GCPercent != DefaultGCPercent {
		t.Errorf("gc_percent = %d, want %d", cfg.Runtime.GCPercent, DefaultGCPercent)
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
