package main

import (
	"strings"
	"testing"
)

func TestMetric(t *testing.T) {
	exp := []byte("# HELP go_goroutines Number of goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 57\n" +
		"go_memstats_heap_inuse_bytes 1.2582912e+07\ngo_goroutines_total{x=\"y\"} 3\n")
	for _, c := range []struct {
		name string
		want float64
		ok   bool
	}{
		{"go_goroutines", 57, true},
		{"go_memstats_heap_inuse_bytes", 12582912, true},
		{"go_memstats_next_gc_bytes", 0, false},
	} {
		got, ok := metric(exp, c.name)
		if got != c.want || ok != c.ok {
			t.Errorf("metric(%s) = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

// series builds n samples whose RSS and GC goal grow by memStep MiB and goroutines and fds by gStep
// per sample.
func series(n int, memStep float64, gStep int) []sample {
	ss := make([]sample, n)
	for i := range ss {
		ss[i] = sample{rssMiB: 50 + memStep*float64(i), heapMiB: 10, gcGoalMiB: 10 + memStep*float64(i)/5,
			goroutines: 200 + gStep*i, fds: 150 + gStep*i}
	}
	return ss
}

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		name    string
		samples []sample
		flat    bool
		mark    string // a row that must be marked not flat
	}{
		{"flat", series(60, 0, 0), true, ""},
		{"too short", series(2, 10, 10), true, ""},
		{"memory grows", series(60, 0.5, 0), false, "| RSS |"},
		{"goroutines grow", series(60, 0, 2), false, "| goroutines |"},
		{"goroutines drop", series(60, 0, -2), true, ""},
	} {
		v := judge(c.samples, 0.10, 20)
		if v.flat != c.flat {
			t.Errorf("%s: flat = %t, want %t\n%s", c.name, v.flat, c.flat, v.text)
		}
		if c.mark != "" && !strings.Contains(v.text, "**no**") {
			t.Errorf("%s: no row marked not flat\n%s", c.name, v.text)
		}
		for _, line := range strings.Split(v.text, "\n") {
			if c.mark != "" && strings.HasPrefix(line, c.mark) && !strings.HasSuffix(line, "**no** |") {
				t.Errorf("%s: %q should be marked not flat", c.name, line)
			}
		}
	}
}
