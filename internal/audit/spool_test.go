package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/audit"
)

func openSpool(t *testing.T, c audit.SpoolConfig) *audit.Spool {
	t.Helper()
	s, err := audit.OpenSpool(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// spoolRecs returns n records of tenant, numbered from first, with a body of size bytes.
func spoolRecs(tenant string, first, n, size int) []*audit.Record {
	var out []*audit.Record
	for i := first; i < first+n; i++ {
		r := rec(tenant, i, t0.Add(time.Duration(i)*time.Second))
		if size > 0 {
			r.Body = bytes.Repeat([]byte{byte('a' + i%26)}, size)
			r.BodyKeyID, r.BodyDigest = "k1", []byte(fmt.Sprintf("%032d", i))
		}
		out = append(out, r)
	}
	return out
}

// ids returns the request ids of recs.
func ids(recs []*audit.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.RequestID)
	}
	return out
}

func readAll(t *testing.T, s *audit.Spool) []*audit.Record {
	t.Helper()
	got, err := s.Read(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSpoolRoundTrip: records come back in order with every field, across segments and
// restarts; committed records and emptied segments go away.
func TestSpoolRoundTrip(t *testing.T) {
	for _, policy := range []string{audit.FsyncAlways, audit.FsyncInterval, audit.FsyncNever} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			c := audit.SpoolConfig{Dir: dir, MaxBytes: 256 << 10, Fsync: policy, FsyncInterval: time.Millisecond}
			s := openSpool(t, c)
			want := append(spoolRecs("a", 0, 40, 1000), spoolRecs("b", 0, 30, 0)...)
			for b := range slices.Chunk(want, 7) {
				if n, err := s.Append(b); n != len(b) || err != nil {
					t.Fatalf("Append = %d, %v", n, err)
				}
			}
			if s.Len() != int64(len(want)) || len(segFiles(t, dir)) < 2 {
				t.Fatalf("Len %d, %d segments; want %d records in several segments", s.Len(), len(segFiles(t, dir)), len(want))
			}
			got := readAll(t, s)
			if len(got) != len(want) {
				t.Fatalf("read %d records, want %d", len(got), len(want))
			}
			for i, r := range got {
				w := *want[i]
				w.Time, w.Latency = w.Time.UTC(), w.Latency.Truncate(time.Microsecond)
				if fmt.Sprint(*r) != fmt.Sprint(w) {
					t.Fatalf("record %d:\n got %+v\nwant %+v", i, *r, w)
				}
			}
			// Commit part, across a segment boundary, then restart.
			if err := s.Commit(25); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, s); !slices.Equal(ids(got), ids(want[25:])) {
				t.Fatalf("after Commit(25): %v", ids(got))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = openSpool(t, c)
			if got := readAll(t, s); s.Len() != int64(len(want)-25) || !slices.Equal(ids(got), ids(want[25:])) {
				t.Fatalf("after restart: Len %d, %v", s.Len(), ids(got))
			}
			more := spoolRecs("c", 0, 3, 10)
			if n, err := s.Append(more); n != 3 || err != nil {
				t.Fatalf("Append after restart = %d, %v", n, err)
			}
			if got := readAll(t, s); !slices.Equal(ids(got), ids(append(want[25:], more...))) {
				t.Fatalf("after append: %v", ids(got))
			}
			if err := s.Commit(len(want) - 25 + 3); err != nil {
				t.Fatal(err)
			}
			if s.Len() != 0 || s.Size() != 0 || len(segFiles(t, dir)) != 0 {
				t.Fatalf("empty spool: Len %d Size %d, files %v", s.Len(), s.Size(), segFiles(t, dir))
			}
			_ = s.Close()
			s = openSpool(t, c)
			defer s.Close()
			if s.Len() != 0 || len(readAll(t, s)) != 0 {
				t.Fatalf("reopened empty spool: Len %d", s.Len())
			}
		})
	}
}

// TestSpoolTornTail: a crash mid-write leaves a cut or garbled last frame; opening truncates it
// and keeps every whole record before it.
func TestSpoolTornTail(t *testing.T) {
	cases := []struct {
		name     string
		damage   func(data []byte) []byte
		wantKept int
	}{
		{"cut in the header", func(d []byte) []byte { return d[:len(d)-frameLen+3] }, 9},
		{"cut in the payload", func(d []byte) []byte { return d[:len(d)-5] }, 9},
		{"garbled payload", func(d []byte) []byte { d[len(d)-2] ^= 0xff; return d }, 9},
		{"zeros after the last frame", func(d []byte) []byte { return append(d, make([]byte, 64)...) }, 10},
		{"garbled in the middle", func(d []byte) []byte { d[len(d)-5*frameLen+20] ^= 1; return d }, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := audit.SpoolConfig{Dir: dir, Fsync: audit.FsyncNever}
			s := openSpool(t, cfg)
			want := spoolRecs("a", 0, 10, 100)
			if _, err := s.Append(want); err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			files := segFiles(t, dir)
			data, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(files[0], c.damage(data), 0o600); err != nil {
				t.Fatal(err)
			}
			s = openSpool(t, cfg)
			defer s.Close()
			if got := readAll(t, s); !slices.Equal(ids(got), ids(want[:c.wantKept])) {
				t.Fatalf("kept %v, want the first %d", ids(got), c.wantKept)
			}
			// Appending goes on after the last whole record.
			if _, err := s.Append(spoolRecs("a", 10, 1, 100)); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, s); len(got) != c.wantKept+1 || got[c.wantKept].RequestID != "req-a-10" {
				t.Fatalf("after append: %v", ids(got))
			}
		})
	}
}

// frameLen is the size of one record of spoolRecs("a", i, 1, 100) in the spool (i < 10).
var frameLen = func() int {
	dir, _ := os.MkdirTemp("", "spool")
	defer os.RemoveAll(dir)
	s, err := audit.OpenSpool(audit.SpoolConfig{Dir: dir, Fsync: audit.FsyncNever}, slog.New(slog.DiscardHandler))
	if err != nil {
		panic(err)
	}
	defer s.Close()
	_, _ = s.Append(spoolRecs("a", 1, 1, 100))
	before := s.Size()
	_, _ = s.Append(spoolRecs("a", 2, 1, 100))
	return int(s.Size() - before)
}()

// TestSpoolFull: Append takes what fits and reports ErrSpoolFull for the rest; committing
// makes room again.
func TestSpoolFull(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, audit.SpoolConfig{Dir: dir, MaxBytes: int64(8 + 5*frameLen), Fsync: audit.FsyncNever})
	defer s.Close()
	n, err := s.Append(spoolRecs("a", 0, 8, 100))
	if n != 5 || !errors.Is(err, audit.ErrSpoolFull) {
		t.Fatalf("Append = %d, %v; want 5, ErrSpoolFull", n, err)
	}
	if n, err := s.Append(spoolRecs("a", 5, 1, 100)); n != 0 || !errors.Is(err, audit.ErrSpoolFull) {
		t.Fatalf("Append to a full spool = %d, %v", n, err)
	}
	if err := s.Commit(5); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Append(spoolRecs("a", 5, 3, 100)); n != 3 || err != nil {
		t.Fatalf("Append after Commit = %d, %v", n, err)
	}
}

// TestSpoolLocked: one process per directory.
func TestSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	s := openSpool(t, audit.SpoolConfig{Dir: dir})
	if _, err := audit.OpenSpool(audit.SpoolConfig{Dir: dir}, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second OpenSpool = %v, want in use", err)
	}
	_ = s.Close()
	s = openSpool(t, audit.SpoolConfig{Dir: dir})
	_ = s.Close()
	if _, err := audit.OpenSpool(audit.SpoolConfig{Dir: dir, Fsync: "sometimes"}, nil); err == nil {
		t.Error("unknown fsync policy accepted")
	}
}
