package audit

import (
	"fmt"
	"testing"
	"time"
)

// TestDecodeFrameVersions: frames keep UsageEstimated, and version 1 frames (a spool written
// before the flags byte existed) still decode, with it unset.
func TestDecodeFrameVersions(t *testing.T) {
	r := &Record{Tenant: "a", Seq: 3, Time: time.UnixMicro(1700000000000000).UTC(), RequestID: "req-1",
		InputTokens: 12, OutputTokens: 5, UsageEstimated: true, Body: []byte("body")}
	got, err := decodeFrame(encodeFrame(r)[frameHeader:])
	if err != nil || fmt.Sprint(*got) != fmt.Sprint(*r) {
		t.Fatalf("version 2: %+v, %v; want %+v", got, err, r)
	}
	v1 := appendString(r.appendFields([]byte{1}), string(r.Body))
	got, err = decodeFrame(v1)
	want := *r
	want.UsageEstimated = false
	if err != nil || fmt.Sprint(*got) != fmt.Sprint(want) {
		t.Fatalf("version 1: %+v, %v; want %+v", got, err, want)
	}
	if _, err := decodeFrame([]byte{3, 0}); err == nil {
		t.Error("version 3 frame decoded")
	}
}
