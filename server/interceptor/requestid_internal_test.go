package interceptor

import (
	"encoding/hex"
	"testing"
	"time"
)

// TestNewRequestIDOrdered: ids are 32 hex digits, distinct, and sort by the millisecond they were
// made in (the audit log's request-id index appends instead of inserting at random).
func TestNewRequestIDOrdered(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for i := range 2000 {
		id := newRequestID()
		if b, err := hex.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("id %q is not 32 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
		if i%500 == 0 {
			time.Sleep(2 * time.Millisecond)
			next := newRequestID()
			if prev != "" && next[:12] <= prev[:12] {
				t.Fatalf("id %q made after %q sorts before it", next, prev)
			}
			prev = next
		}
	}
	ms, _ := hex.DecodeString("00" + newRequestID()[:12])
	var got int64
	for _, c := range ms {
		got = got<<8 | int64(c)
	}
	if d := time.Since(time.UnixMilli(got)); d < 0 || d > time.Minute {
		t.Errorf("id's time prefix is %v away from now", d)
	}
}
