package telemetry

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records each Write it receives.
type countingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), nil
}

func (c *countingWriter) all() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.writes), strings.Join(c.writes, "")
}

func TestBufferedWriterBatches(t *testing.T) {
	tests := []struct {
		name       string
		size       int
		lines      []string
		wantWrites int // before Close
	}{
		{"small lines stay buffered", 64, []string{"a\n", "b\n", "c\n"}, 0},
		{"overflow flushes the earlier lines", 8, []string{"aaaa\n", "bbbb\n"}, 1},
		{"a line larger than the buffer goes through", 4, []string{"a\n", "bbbbbbbb\n"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cw countingWriter
			b := NewBufferedWriter(&cw, tc.size, 0)
			for _, l := range tc.lines {
				if n, err := b.Write([]byte(l)); n != len(l) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if n, _ := cw.all(); n != tc.wantWrites {
				t.Errorf("%d writes before Close, want %d", n, tc.wantWrites)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if _, got := cw.all(); got != strings.Join(tc.lines, "") {
				t.Errorf("written %q, want %q", got, strings.Join(tc.lines, ""))
			}
		})
	}
}

func TestBufferedWriterPeriodicFlush(t *testing.T) {
	wrote := make(chan string, 1)
	b := NewBufferedWriter(writerFunc(func(p []byte) (int, error) { wrote <- string(p); return len(p), nil }), 1<<10, time.Millisecond)
	_, _ = b.Write([]byte("line\n"))
	if got := <-wrote; got != "line\n" { // without the periodic flush this blocks until the test times out
		t.Errorf("flushed %q, want %q", got, "line\n")
	}
	b.mu.Lock() // stop the flusher without Close's final flush racing the channel
	close(b.stop)
	b.mu.Unlock()
	<-b.done
}

func TestBufferedWriterConcurrentLinesStayWhole(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	b := NewBufferedWriter(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) }), 100, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				_, _ = fmt.Fprintf(b, "g%d-line-%03d\n", g, i)
			}
		})
	}
	wg.Wait()
	_ = b.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if len(l) != len("g0-line-000") {
			t.Fatalf("torn line %q", l)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
