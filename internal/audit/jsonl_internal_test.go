package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestJSONLAppendFailure: a failed Append leaves neither a partial line nor a gap in the chain;
// the next Append continues it.
func TestJSONLAppendFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	r := func(i int) *Record {
		return &Record{Tenant: "a", Time: time.Unix(int64(i), 0), RequestID: "r" + string(rune('0'+i)), Code: "OK"}
	}
	ctx := context.Background()
	if err := s.Append(ctx, []*Record{r(0), r(1)}); err != nil {
		t.Fatal(err)
	}
	s.w = bufio.NewWriterSize(failingWriter{}, 16) // a line is longer: Encode writes, and fails
	if err := s.Append(ctx, []*Record{r(2), r(3)}); err == nil {
		t.Fatal("Append through a failing writer succeeded")
	}
	next := r(4)
	if err := s.Append(ctx, []*Record{next}); err != nil || next.Seq != 3 {
		t.Fatalf("Append after a failure: seq %d, %v; want 3", next.Seq, err)
	}
	_ = s.Close()
	data, _ := os.ReadFile(path)
	if problems, err := VerifyJSONL(bytes.NewReader(data)); err != nil || len(problems) > 0 || bytes.Count(data, []byte("\n")) != 3 {
		t.Fatalf("VerifyJSONL = %v, %v; %d lines, want 3:\n%s", problems, err, bytes.Count(data, []byte("\n")), data)
	}
}
