package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

// queuedConn is a ClientConnInterface whose streaming calls replay chunks from a queue and, like
// the in-process channel, report with Ready whether the next one is already there. waitAfter
// marks the chunks after which the stream "waits for the upstream": Ready is false there.
type queuedConn struct {
	chunks    int
	waitAfter map[int]bool
}

func (q *queuedConn) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	panic("not used")
}

func (q *queuedConn) NewStream(ctx context.Context, _ *grpc.StreamDesc, _ string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	return &queuedStream{ctx: ctx, q: q}, nil
}

type queuedStream struct {
	grpc.ClientStream // nil: only the methods below are called
	ctx               context.Context
	q                 *queuedConn
	sent              int
}

func (s *queuedStream) Context() context.Context     { return s.ctx }
func (s *queuedStream) Header() (metadata.MD, error) { return nil, nil }
func (s *queuedStream) Trailer() metadata.MD         { return nil }
func (s *queuedStream) SendMsg(any) error            { return nil }
func (s *queuedStream) CloseSend() error             { return nil }

func (s *queuedStream) RecvMsg(m any) error {
	if s.sent == s.q.chunks {
		return io.EOF
	}
	s.sent++
	text := "tok "
	proto.Merge(m.(proto.Message), &pb.StreamChatCompletionResponse{Id: "c1", Model: "m",
		Choices: []*pb.ChunkChoice{{Delta: &pb.Delta{Content: &text}}}})
	return nil
}

func (s *queuedStream) Ready() bool { return !s.q.waitAfter[s.sent] }

// flushCounter counts the flushes that reach the connection's writer.
type flushCounter struct {
	*httptest.ResponseRecorder
	mu      sync.Mutex
	flushes int
}

func (f *flushCounter) Flush() {
	f.mu.Lock()
	f.flushes++
	f.mu.Unlock()
	f.ResponseRecorder.Flush()
}

func streamThrough(t *testing.T, q *queuedConn) (events []string, flushes int) {
	t.Helper()
	h, err := New(context.Background(), q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	return sseEvents(t, w.Body.Bytes()), w.flushes
}

// TestStreamCoalescesQueuedEvents: events already waiting leave in one write; the first one is
// flushed alone (time to first token), and the rest go out when the handler returns.
func TestStreamCoalescesQueuedEvents(t *testing.T) {
	events, flushes := streamThrough(t, &queuedConn{chunks: 20})
	if len(events) != 21 || events[20] != "[DONE]" {
		t.Fatalf("%d events, last %q; want 20 chunks and [DONE]", len(events), events[len(events)-1])
	}
	if flushes != 1 {
		t.Errorf("%d flushes for 20 queued chunks, want 1 (the first event)", flushes)
	}
}

// TestStreamFlushesBeforeWaiting: whenever the stream would wait for its next event, what was
// written is flushed first, so nothing is held back while the upstream thinks.
func TestStreamFlushesBeforeWaiting(t *testing.T) {
	events, flushes := streamThrough(t, &queuedConn{chunks: 20, waitAfter: map[int]bool{1: true, 5: true, 6: true, 12: true}})
	if len(events) != 21 {
		t.Fatalf("%d events, want 21", len(events))
	}
	// The first event, then the last event before each of the waits after chunks 5, 6 and 12
	// (after chunk 1 the first flush already happened).
	if flushes != 4 {
		t.Errorf("%d flushes, want 4", flushes)
	}
	all := make(map[int]bool)
	for i := 1; i <= 20; i++ {
		all[i] = true
	}
	if _, flushes := streamThrough(t, &queuedConn{chunks: 20, waitAfter: all}); flushes != 20 {
		t.Errorf("a stream waiting after every chunk: %d flushes, want 20", flushes)
	}
}
