package inproc

import (
	"context"
	"io"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// stream is the state one streaming call's two ends share.
type stream struct {
	serverCall
	cctx context.Context // the caller's
	sctx context.Context // the handler's; set before the handler starts
	opts []grpc.CallOption

	req      chan any      // client → server
	sendDone chan struct{} // closed by CloseSend
	sendOnce sync.Once
	resp     chan any      // server → client
	headerCh chan struct{} // closed when the header is sent or the call ended
	done     chan struct{} // closed when the handler returned; the fields below are then set

	st              *status.Status
	header, trailer metadata.MD // what the client receives
	applyOnce       sync.Once
}

func newStream(ctx context.Context, buf int, name string, opts []grpc.CallOption) *stream {
	s := &stream{
		serverCall: serverCall{method: name},
		cctx:       ctx,
		opts:       opts,
		req:        make(chan any, buf),
		sendDone:   make(chan struct{}),
		resp:       make(chan any, buf),
		headerCh:   make(chan struct{}),
		done:       make(chan struct{}),
	}
	s.onSend = func() { close(s.headerCh) }
	return s
}

// end records the handler's final status and what the client receives with it.
func (s *stream) end(st *status.Status) {
	s.mu.Lock()
	headerSent := s.headerSent
	s.header, s.trailer = s.resultLocked(!headerSent)
	s.mu.Unlock()
	s.st = st
	if !headerSent {
		close(s.headerCh)
	}
	close(s.done)
}

// clientStream is the caller's end.
type clientStream struct{ s *stream }

var _ grpc.ClientStream = (*clientStream)(nil)

// Header waits for the header and returns it; nil when the call ended without sending one (its
// metadata is then in the trailer) or the caller's context ended first.
func (c *clientStream) Header() (metadata.MD, error) {
	s := c.s
	select {
	case <-s.headerCh:
	case <-s.cctx.Done():
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.headerSent {
		return nil, nil
	}
	return s.serverCall.header.Copy(), nil
}

// Trailer returns the trailer once RecvMsg has returned an error (io.EOF included), else nil.
func (c *clientStream) Trailer() metadata.MD {
	select {
	case <-c.s.done:
		return c.s.trailer
	default:
		return nil
	}
}

// Ready reports whether RecvMsg would return without waiting: a message is queued, or the call
// has ended. The REST gateway uses it to skip a flush when the next event is already here
// (gateway/stream.go).
func (c *clientStream) Ready() bool {
	if len(c.s.resp) > 0 {
		return true
	}
	select {
	case <-c.s.done:
		return true
	default:
		return false
	}
}

func (c *clientStream) CloseSend() error {
	c.s.sendOnce.Do(func() { close(c.s.sendDone) })
	return nil
}

func (c *clientStream) Context() context.Context { return c.s.cctx }

// SendMsg hands m to the handler. It returns io.EOF when the call has already ended (RecvMsg
// then returns its status).
func (c *clientStream) SendMsg(m any) error {
	s := c.s
	select {
	case <-s.sendDone:
		return status.Error(codes.Internal, "inproc: SendMsg after CloseSend")
	default:
	}
	select {
	case s.req <- m:
		return nil
	case <-s.done:
		return io.EOF
	case <-s.cctx.Done():
		return status.FromContextError(s.cctx.Err()).Err()
	}
}

// RecvMsg receives the next message into m; io.EOF after a successful end, the status error
// after a failed one, CANCELED or DEADLINE_EXCEEDED when the caller's context ends first.
func (c *clientStream) RecvMsg(m any) error {
	s := c.s
	select {
	case msg := <-s.resp:
		return handOver(m, msg)
	case <-s.done:
		select { // messages sent before the end come first
		case msg := <-s.resp:
			return handOver(m, msg)
		default:
		}
		s.applyOnce.Do(func() { applyCallOptions(s.opts, s.header, s.trailer) })
		if s.st.Code() == codes.OK {
			return io.EOF
		}
		return s.st.Err()
	case <-s.cctx.Done():
		return status.FromContextError(s.cctx.Err()).Err()
	}
}

// serverStream is the handler's end.
type serverStream struct{ s *stream }

var _ grpc.ServerStream = (*serverStream)(nil)

func (ss *serverStream) SetHeader(md metadata.MD) error  { return ss.s.serverCall.SetHeader(md) }
func (ss *serverStream) SendHeader(md metadata.MD) error { return ss.s.serverCall.SendHeader(md) }
func (ss *serverStream) SetTrailer(md metadata.MD)       { _ = ss.s.serverCall.SetTrailer(md) }
func (ss *serverStream) Context() context.Context        { return ss.s.sctx }

// SendMsg hands m to the caller, sending the header first if it has not been sent. It blocks
// while the caller has DefaultStreamBuffer (or WithStreamBuffer) messages unread.
func (ss *serverStream) SendMsg(m any) error {
	s := ss.s
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return status.Error(codes.Internal, "inproc: SendMsg after the handler returned")
	}
	if !s.headerSent {
		s.sendHeaderLocked()
	}
	s.mu.Unlock()
	select {
	case s.resp <- m:
		return nil
	case <-s.sctx.Done():
		return status.FromContextError(s.sctx.Err()).Err()
	}
}

// RecvMsg receives the caller's next message into m, io.EOF after CloseSend.
func (ss *serverStream) RecvMsg(m any) error {
	s := ss.s
	select {
	case msg := <-s.req:
		return handOver(m, msg)
	case <-s.sendDone:
		select {
		case msg := <-s.req:
			return handOver(m, msg)
		default:
		}
		return io.EOF
	case <-s.sctx.Done():
		return status.FromContextError(s.sctx.Err()).Err()
	}
}
