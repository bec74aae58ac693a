package inproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

// fakeChat is a ChatService whose behaviour each test sets.
type fakeChat struct {
	pb.UnimplementedChatServiceServer
	unary  func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error)
	stream func(*pb.StreamChatCompletionRequest, grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error
}

func (f *fakeChat) CreateChatCompletion(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
	return f.unary(ctx, in)
}

func (f *fakeChat) StreamChatCompletion(in *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
	return f.stream(in, s)
}

func newChat(t *testing.T, f *fakeChat, opts ...Option) pb.ChatServiceClient {
	t.Helper()
	ch := New(opts...)
	pb.RegisterChatServiceServer(ch, f)
	return pb.NewChatServiceClient(ch)
}

type ctxKey struct{}

func TestUnaryRequestMetadataAndContext(t *testing.T) {
	deadline := time.Now().Add(time.Hour).Truncate(time.Second)
	var got struct {
		model, auth, method string
		peer                string
		deadline            time.Time
		clientValue         any
		outgoing            bool
	}
	f := &fakeChat{unary: func(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		got.model = in.GetModel()
		md, _ := metadata.FromIncomingContext(ctx)
		got.auth = first(md, "authorization")
		got.method, _ = grpc.Method(ctx)
		if p, ok := peer.FromContext(ctx); ok {
			got.peer = p.Addr.Network() + ":" + p.Addr.String()
		}
		got.deadline, _ = ctx.Deadline()
		got.clientValue = ctx.Value(ctxKey{})
		_, got.outgoing = metadata.FromOutgoingContext(ctx)
		return &pb.CreateChatCompletionResponse{Id: "resp-" + in.GetModel()}, nil
	}}
	c := newChat(t, f)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ctx = context.WithValue(ctx, ctxKey{}, "client only")
	ctx = metadata.AppendToOutgoingContext(ctx, "Authorization", "Bearer k")
	var p peer.Peer
	resp, err := c.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "m1"}, grpc.Peer(&p))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetId() != "resp-m1" {
		t.Errorf("response id = %q, want resp-m1", resp.GetId())
	}
	want := map[string]any{
		"model":       "m1",
		"auth":        "Bearer k",
		"method":      "/switchyard.v1.ChatService/CreateChatCompletion",
		"peer":        "inproc:inproc",
		"deadline":    deadline,
		"clientValue": nil,
		"outgoing":    false,
		"callPeer":    "inproc",
	}
	gotMap := map[string]any{
		"model": got.model, "auth": got.auth, "method": got.method, "peer": got.peer,
		"deadline": got.deadline, "clientValue": got.clientValue, "outgoing": got.outgoing,
		"callPeer": fmt.Sprint(p.Addr),
	}
	for k, w := range want {
		if g := gotMap[k]; fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s = %v, want %v", k, g, w)
		}
	}
}

func first(md metadata.MD, k string) string {
	if vs := md.Get(k); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func TestUnaryHeadersAndTrailers(t *testing.T) {
	detail := &errdetails.ErrorInfo{Reason: "RATE", Domain: "switchyard", Metadata: map[string]string{"k": "v"}}
	tests := []struct {
		name        string
		handler     func(ctx context.Context) error
		wantCode    codes.Code
		wantHeader  metadata.MD // nil: the header option is left untouched
		wantTrailer metadata.MD
	}{
		{
			name: "success: header and trailer",
			handler: func(ctx context.Context) error {
				_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", "r1"))
				_ = grpc.SetHeader(ctx, metadata.Pairs("x-switchyard-route", "a/b"))
				_ = grpc.SetTrailer(ctx, metadata.Pairs("x-t", "1"))
				return nil
			},
			wantCode:    codes.OK,
			wantHeader:  metadata.Pairs("x-request-id", "r1", "x-switchyard-route", "a/b"),
			wantTrailer: metadata.Pairs("x-t", "1"),
		},
		{
			name: "failure before the header: trailers-only",
			handler: func(ctx context.Context) error {
				_ = grpc.SetHeader(ctx, metadata.Pairs("retry-after", "3"))
				_ = grpc.SetTrailer(ctx, metadata.Pairs("x-t", "1"))
				st, _ := status.New(codes.ResourceExhausted, "slow down").WithDetails(detail)
				return st.Err()
			},
			wantCode:    codes.ResourceExhausted,
			wantHeader:  nil,
			wantTrailer: metadata.Pairs("retry-after", "3", "x-t", "1"),
		},
		{
			name: "failure after SendHeader",
			handler: func(ctx context.Context) error {
				_ = grpc.SendHeader(ctx, metadata.Pairs("x-request-id", "r2"))
				if err := grpc.SetHeader(ctx, metadata.Pairs("late", "1")); err == nil {
					return errors.New("SetHeader after SendHeader succeeded")
				}
				return status.Error(codes.Unavailable, "down")
			},
			wantCode:    codes.Unavailable,
			wantHeader:  metadata.Pairs("x-request-id", "r2"),
			wantTrailer: metadata.MD{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChat(t, &fakeChat{unary: func(ctx context.Context, _ *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
				if err := tc.handler(ctx); err != nil {
					return nil, err
				}
				return &pb.CreateChatCompletionResponse{}, nil
			}})
			var header, trailer metadata.MD
			_, err := c.CreateChatCompletion(context.Background(), &pb.CreateChatCompletionRequest{}, grpc.Header(&header), grpc.Trailer(&trailer))
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tc.wantCode)
			}
			if fmt.Sprint(header) != fmt.Sprint(tc.wantHeader) {
				t.Errorf("header = %v, want %v", header, tc.wantHeader)
			}
			if fmt.Sprint(trailer) != fmt.Sprint(tc.wantTrailer) {
				t.Errorf("trailer = %v, want %v", trailer, tc.wantTrailer)
			}
			if tc.wantCode == codes.ResourceExhausted {
				ds := status.Convert(err).Details()
				if len(ds) != 1 || !proto.Equal(ds[0].(proto.Message), detail) {
					t.Errorf("details = %v, want %v", ds, detail)
				}
			}
		})
	}
}

var errSentinel = errors.New("sentinel")

func TestUnaryErrors(t *testing.T) {
	st, _ := status.New(codes.FailedPrecondition, "context too long").
		WithDetails(&errdetails.ErrorInfo{Reason: "CONTEXT_LENGTH", Domain: "switchyard"})
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		message string
	}{
		{"status with details", st.Err(), codes.FailedPrecondition, "context too long"},
		{"plain error", fmt.Errorf("wrapped: %w", errSentinel), codes.Unknown, "wrapped: sentinel"},
		{"context canceled", context.Canceled, codes.Canceled, "context canceled"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "context deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChat(t, &fakeChat{unary: func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
				return nil, tc.err
			}})
			resp, err := c.CreateChatCompletion(context.Background(), &pb.CreateChatCompletionRequest{})
			if resp != nil {
				t.Errorf("response = %v, want nil", resp)
			}
			got := status.Convert(err)
			if got.Code() != tc.code || got.Message() != tc.message {
				t.Errorf("status = %v %q, want %v %q", got.Code(), got.Message(), tc.code, tc.message)
			}
			if errors.Is(err, errSentinel) {
				t.Error("the handler's error value reached the client; want only its status")
			}
			if want, ok := status.FromError(tc.err); ok && !proto.Equal(got.Proto(), want.Proto()) {
				t.Errorf("status proto = %v, want %v", got.Proto(), want.Proto())
			}
		})
	}
}

func TestUnaryCancellationReachesHandler(t *testing.T) {
	started := make(chan struct{})
	handlerErr := make(chan error, 1)
	c := newChat(t, &fakeChat{unary: func(ctx context.Context, _ *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		close(started)
		<-ctx.Done()
		handlerErr <- ctx.Err()
		return nil, ctx.Err()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := c.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{})
	if status.Code(err) != codes.Canceled {
		t.Errorf("client error = %v, want CANCELED", err)
	}
	if err := <-handlerErr; !errors.Is(err, context.Canceled) {
		t.Errorf("handler ctx error = %v, want context.Canceled", err)
	}
}

func TestUnaryDoneContextSkipsHandler(t *testing.T) {
	var calls atomic.Int32
	c := newChat(t, &fakeChat{unary: func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		calls.Add(1)
		return &pb.CreateChatCompletionResponse{}, nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := c.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("error = %v, want DEADLINE_EXCEEDED", err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("handler ran %d times, want 0", n)
	}
}

func TestInterceptorOrder(t *testing.T) {
	var mu sync.Mutex
	var trace []string
	rec := func(s string) { mu.Lock(); trace = append(trace, s); mu.Unlock() }
	unary := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			rec(name + ">" + info.FullMethod)
			resp, err := h(ctx, req)
			rec("<" + name)
			return resp, err
		}
	}
	stream := func(name string) grpc.StreamServerInterceptor {
		return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			rec(fmt.Sprintf("%s>%s server=%t", name, info.FullMethod, info.IsServerStream))
			err := h(srv, ss)
			rec("<" + name)
			return err
		}
	}
	c := newChat(t, &fakeChat{
		unary: func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
			rec("handler")
			return &pb.CreateChatCompletionResponse{}, nil
		},
		stream: func(_ *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
			rec("stream handler")
			return nil
		},
	}, WithUnaryInterceptors(unary("a"), unary("b"), unary("c")), WithStreamInterceptors(stream("x"), stream("y")))

	if _, err := c.CreateChatCompletion(context.Background(), &pb.CreateChatCompletionRequest{}); err != nil {
		t.Fatal(err)
	}
	s, err := c.StreamChatCompletion(context.Background(), &pb.StreamChatCompletionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("Recv = %v, want io.EOF", err)
	}
	want := fmt.Sprint([]string{
		"a>/switchyard.v1.ChatService/CreateChatCompletion", "b>/switchyard.v1.ChatService/CreateChatCompletion",
		"c>/switchyard.v1.ChatService/CreateChatCompletion", "handler", "<c", "<b", "<a",
		"x>/switchyard.v1.ChatService/StreamChatCompletion server=true", "y>/switchyard.v1.ChatService/StreamChatCompletion server=true",
		"stream handler", "<y", "<x",
	})
	mu.Lock()
	defer mu.Unlock()
	if got := fmt.Sprint(trace); got != want {
		t.Errorf("order:\n got %s\nwant %s", got, want)
	}
}

func TestServerStream(t *testing.T) {
	detail := &errdetails.ErrorInfo{Reason: "UPSTREAM_RESET", Domain: "switchyard"}
	failed, _ := status.New(codes.Unavailable, "upstream reset").WithDetails(detail)
	tests := []struct {
		name        string
		send        int
		sendHeader  bool
		err         error
		wantErr     *status.Status // nil: io.EOF
		wantHeader  metadata.MD
		wantTrailer metadata.MD
	}{
		{"messages then EOF", 3, false, nil, nil, metadata.Pairs("x-request-id", "r"), metadata.Pairs("x-t", "1")},
		{"messages then error with details", 2, false, failed.Err(), failed, metadata.Pairs("x-request-id", "r"), metadata.Pairs("x-t", "1")},
		{"error before anything: trailers-only", 0, false, failed.Err(), failed, nil, metadata.Pairs("x-request-id", "r", "x-t", "1")},
		{"header sent, no messages", 0, true, nil, nil, metadata.Pairs("x-request-id", "r"), metadata.Pairs("x-t", "1")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newChat(t, &fakeChat{stream: func(in *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
				if err := s.SetHeader(metadata.Pairs("x-request-id", "r")); err != nil {
					return err
				}
				s.SetTrailer(metadata.Pairs("x-t", "1"))
				if tc.sendHeader {
					if err := s.SendHeader(nil); err != nil {
						return err
					}
				}
				for i := range tc.send {
					if err := s.Send(&pb.StreamChatCompletionResponse{Id: fmt.Sprintf("%s-%d", in.GetRequest().GetModel(), i)}); err != nil {
						return err
					}
				}
				return tc.err
			}})
			var trailerOpt metadata.MD
			s, err := c.StreamChatCompletion(context.Background(),
				&pb.StreamChatCompletionRequest{Request: &pb.CreateChatCompletionRequest{Model: "m"}}, grpc.Trailer(&trailerOpt))
			if err != nil {
				t.Fatal(err)
			}
			h, err := s.Header()
			if err != nil || fmt.Sprint(h) != fmt.Sprint(tc.wantHeader) {
				t.Errorf("Header() = %v, %v; want %v, nil", h, err, tc.wantHeader)
			}
			var ids []string
			for {
				m, err := s.Recv()
				if err != nil {
					if tc.wantErr == nil && err != io.EOF {
						t.Errorf("end = %v, want io.EOF", err)
					}
					if tc.wantErr != nil && !proto.Equal(status.Convert(err).Proto(), tc.wantErr.Proto()) {
						t.Errorf("end = %v, want %v", err, tc.wantErr.Err())
					}
					break
				}
				ids = append(ids, m.GetId())
			}
			if len(ids) != tc.send {
				t.Errorf("received %v, want %d messages", ids, tc.send)
			}
			for i, id := range ids {
				if want := fmt.Sprintf("m-%d", i); id != want {
					t.Errorf("message %d = %q, want %q", i, id, want)
				}
			}
			if got := s.Trailer(); fmt.Sprint(got) != fmt.Sprint(tc.wantTrailer) {
				t.Errorf("Trailer() = %v, want %v", got, tc.wantTrailer)
			}
			if fmt.Sprint(trailerOpt) != fmt.Sprint(tc.wantTrailer) {
				t.Errorf("grpc.Trailer option = %v, want %v", trailerOpt, tc.wantTrailer)
			}
		})
	}
}

// TestStreamFlowControl checks that a handler can run at most the buffer ahead of the reader, and
// that cancelling the caller unblocks it.
func TestStreamFlowControl(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		handlerErr := make(chan error, 1)
		c := newChat(t, &fakeChat{stream: func(_ *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
			for {
				if err := s.Send(&pb.StreamChatCompletionResponse{}); err != nil {
					handlerErr <- err
					return err
				}
				sent.Add(1)
			}
		}}, WithStreamBuffer(2))
		ctx, cancel := context.WithCancel(context.Background())
		s, err := c.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := sent.Load(); n != 2 {
			t.Fatalf("sent %d before any read, want 2 (the buffer)", n)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := sent.Load(); n != 3 {
			t.Fatalf("sent %d after one read, want 3", n)
		}
		cancel()
		if err := <-handlerErr; status.Code(err) != codes.Canceled {
			t.Errorf("blocked Send returned %v, want CANCELED", err)
		}
		if _, err := s.Recv(); status.Code(err) != codes.Canceled && err != nil {
			t.Errorf("Recv after cancel = %v, want CANCELED or a buffered message", err)
		}
	})
}

func TestStreamHeaderBeforeFirstMessage(t *testing.T) {
	release := make(chan struct{})
	c := newChat(t, &fakeChat{stream: func(_ *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
		if err := s.SendHeader(metadata.Pairs("x-switchyard-route", "up/m")); err != nil {
			return err
		}
		<-release
		return s.Send(&pb.StreamChatCompletionResponse{Id: "1"})
	}})
	s, err := c.StreamChatCompletion(context.Background(), &pb.StreamChatCompletionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.Header() // must not wait for the first message
	if err != nil || first(h, "x-switchyard-route") != "up/m" {
		t.Errorf("Header() = %v, %v", h, err)
	}
	if tr := s.Trailer(); tr != nil {
		t.Errorf("Trailer() before the end = %v, want nil", tr)
	}
	close(release)
	if m, err := s.Recv(); err != nil || m.GetId() != "1" {
		t.Errorf("Recv = %v, %v", m, err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Errorf("Recv = %v, want io.EOF", err)
	}
}

func TestStreamDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		handlerErr := make(chan error, 1)
		c := newChat(t, &fakeChat{stream: func(_ *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
			<-s.Context().Done()
			handlerErr <- s.Context().Err()
			return s.Context().Err()
		}})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := c.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("Recv = %v, want DEADLINE_EXCEEDED", err)
		}
		if err := <-handlerErr; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("handler ctx = %v, want deadline exceeded", err)
		}
	})
}

// echoDesc is a bidirectional stream service over wrapperspb.StringValue.
var echoDesc = grpc.ServiceDesc{
	ServiceName: "test.Echo",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName: "Bidi", ServerStreams: true, ClientStreams: true,
		Handler: func(_ any, ss grpc.ServerStream) error {
			for {
				in := new(wrapperspb.StringValue)
				err := ss.RecvMsg(in)
				if err == io.EOF {
					return ss.SendMsg(wrapperspb.String("bye"))
				}
				if err != nil {
					return err
				}
				if err := ss.SendMsg(wrapperspb.String("echo " + in.GetValue())); err != nil {
					return err
				}
			}
		},
	}},
}

func TestBidiStreamCloseSend(t *testing.T) {
	ch := New()
	ch.RegisterService(&echoDesc, struct{}{})
	s, err := ch.NewStream(context.Background(), &echoDesc.Streams[0], "/test.Echo/Bidi")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range []string{"a", "b"} {
		if err := s.SendMsg(wrapperspb.String(w)); err != nil {
			t.Fatal(err)
		}
		m := new(wrapperspb.StringValue)
		if err := s.RecvMsg(m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m.GetValue())
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(wrapperspb.String("late")); err == nil {
		t.Error("SendMsg after CloseSend succeeded")
	}
	m := new(wrapperspb.StringValue)
	if err := s.RecvMsg(m); err != nil {
		t.Fatal(err)
	}
	got = append(got, m.GetValue())
	if err := s.RecvMsg(m); err != io.EOF {
		t.Errorf("RecvMsg = %v, want io.EOF", err)
	}
	if want := "[echo a echo b bye]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestConcurrentCalls(t *testing.T) {
	c := newChat(t, &fakeChat{
		unary: func(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			_ = grpc.SetHeader(ctx, metadata.Pairs("x-echo", first(md, "x-id")))
			return &pb.CreateChatCompletionResponse{Id: in.GetModel()}, nil
		},
		stream: func(in *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
			for i := range 5 {
				if err := s.Send(&pb.StreamChatCompletionResponse{Id: fmt.Sprintf("%s/%d", in.GetRequest().GetModel(), i)}); err != nil {
					return err
				}
			}
			return nil
		},
	})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 32 {
		wg.Go(func() {
			for i := range 20 {
				id := fmt.Sprintf("g%d-%d", g, i)
				ctx := metadata.AppendToOutgoingContext(context.Background(), "x-id", id)
				var h metadata.MD
				resp, err := c.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: id}, grpc.Header(&h))
				if err != nil || resp.GetId() != id || first(h, "x-echo") != id {
					errs <- fmt.Errorf("unary %s: %v %v %v", id, resp.GetId(), h, err)
					return
				}
				s, err := c.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: &pb.CreateChatCompletionRequest{Model: id}})
				if err != nil {
					errs <- err
					return
				}
				for j := 0; ; j++ {
					m, err := s.Recv()
					if err == io.EOF && j == 5 {
						break
					}
					if err != nil || m.GetId() != fmt.Sprintf("%s/%d", id, j) {
						errs <- fmt.Errorf("stream %s at %d: %v %v", id, j, m.GetId(), err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestTelemetry(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	var handlerSpan trace.SpanContext
	c := newChat(t, &fakeChat{unary: func(ctx context.Context, in *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		handlerSpan = trace.SpanContextFromContext(ctx)
		if in.GetModel() == "fail" {
			return nil, status.Error(codes.Internal, "boom")
		}
		return &pb.CreateChatCompletionResponse{}, nil
	}}, WithTracerProvider(tp), WithMeterProvider(mp))

	ctx, parent := tp.Tracer("test").Start(context.Background(), "POST /v1/chat/completions")
	if _, err := c.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{Model: "fail"}); status.Code(err) != codes.Internal {
		t.Fatalf("error = %v, want INTERNAL", err)
	}
	parent.End()

	got := spans.GetSpans()
	if len(got) != 3 {
		t.Fatalf("%d spans, want 2 server spans and the parent", len(got))
	}
	for i, s := range got[:2] {
		if s.Name != "switchyard.v1.ChatService/CreateChatCompletion" || s.SpanKind != trace.SpanKindServer {
			t.Errorf("span %d = %q kind %v", i, s.Name, s.SpanKind)
		}
		if s.Parent.SpanID() != parent.SpanContext().SpanID() || s.SpanContext.TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %d is not a child of the caller's span", i)
		}
		attrs := attribute.NewSet(s.Attributes...)
		if v, _ := attrs.Value("rpc.method"); v.AsString() != "switchyard.v1.ChatService/CreateChatCompletion" {
			t.Errorf("span %d rpc.method = %q", i, v.AsString())
		}
		if v, _ := attrs.Value("rpc.system.name"); v.AsString() != "grpc" {
			t.Errorf("span %d rpc.system.name = %q", i, v.AsString())
		}
		wantCode, wantStatus := "OK", otelcodes.Unset
		if i == 1 {
			wantCode, wantStatus = "INTERNAL", otelcodes.Error
		}
		if v, _ := attrs.Value("rpc.response.status_code"); v.AsString() != wantCode {
			t.Errorf("span %d rpc.response.status_code = %q, want %q", i, v.AsString(), wantCode)
		}
		if s.Status.Code != wantStatus {
			t.Errorf("span %d status = %v, want %v", i, s.Status.Code, wantStatus)
		}
	}
	if handlerSpan.SpanID() != got[1].SpanContext.SpanID() {
		t.Error("the handler's context does not carry the server span")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == "rpc.server.call.duration" {
				for _, dp := range h.DataPoints {
					count += dp.Count
				}
			}
		}
	}
	if count != 2 {
		t.Errorf("rpc.server.call.duration count = %d, want 2", count)
	}
}

func TestCallerSpanWithoutTracer(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	var got trace.SpanContext
	c := newChat(t, &fakeChat{unary: func(ctx context.Context, _ *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		got = trace.SpanContextFromContext(ctx)
		return &pb.CreateChatCompletionResponse{}, nil
	}})
	ctx, span := tp.Tracer("t").Start(context.Background(), "caller")
	defer span.End()
	if _, err := c.CreateChatCompletion(ctx, &pb.CreateChatCompletionRequest{}); err != nil {
		t.Fatal(err)
	}
	if got.SpanID() != span.SpanContext().SpanID() {
		t.Error("handler does not see the caller's span (log lines would lose the trace id)")
	}
}

func TestUnknownMethodAndRegistration(t *testing.T) {
	ch := New()
	pb.RegisterChatServiceServer(ch, &fakeChat{unary: func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		return &pb.CreateChatCompletionResponse{}, nil
	}})
	err := ch.Invoke(context.Background(), "/nope.Service/X", &pb.CreateChatCompletionRequest{}, new(pb.CreateChatCompletionResponse))
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown method: %v, want UNIMPLEMENTED", err)
	}
	if _, err := ch.NewStream(context.Background(), &grpc.StreamDesc{}, "/switchyard.v1.ChatService/CreateChatCompletion"); status.Code(err) != codes.Unimplemented {
		t.Errorf("stream on a unary method: %v, want UNIMPLEMENTED", err)
	}
	// A reply of another type than the handler's response is an INTERNAL error, not a panic.
	err = ch.Invoke(context.Background(), "/switchyard.v1.ChatService/CreateChatCompletion", &pb.CreateChatCompletionRequest{}, new(pb.Model))
	if status.Code(err) == codes.OK {
		t.Error("mismatched reply type succeeded")
	}

	for name, f := range map[string]func(){
		"duplicate": func() {
			c := New()
			pb.RegisterChatServiceServer(c, &fakeChat{})
			pb.RegisterChatServiceServer(c, &fakeChat{})
		},
		"wrong impl":       func() { New().RegisterService(&pb.ChatService_ServiceDesc, struct{}{}) },
		"after first call": func() { pb.RegisterModelServiceServer(ch, pb.UnimplementedModelServiceServer{}) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestCanonical(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.OK: "OK", codes.Canceled: "CANCELLED", codes.InvalidArgument: "INVALID_ARGUMENT",
		codes.DeadlineExceeded: "DEADLINE_EXCEEDED", codes.Unauthenticated: "UNAUTHENTICATED", codes.DataLoss: "DATA_LOSS",
	} {
		if got := canonical(c); got != want {
			t.Errorf("canonical(%v) = %q, want %q", c, got, want)
		}
	}
}

// TestStreamReady: Ready tells whether Recv would return at once — a queued message or the end —
// and is reachable through the generated client's wrapper, as the REST gateway reaches it.
func TestStreamReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		c := newChat(t, &fakeChat{stream: func(_ *pb.StreamChatCompletionRequest, s grpc.ServerStreamingServer[pb.StreamChatCompletionResponse]) error {
			for range 2 {
				if err := s.Send(&pb.StreamChatCompletionResponse{}); err != nil {
					return err
				}
			}
			<-gate
			return nil
		}})
		s, err := c.StreamChatCompletion(context.Background(), &pb.StreamChatCompletionRequest{})
		if err != nil {
			t.Fatal(err)
		}
		g, ok := s.(*grpc.GenericClientStream[pb.StreamChatCompletionRequest, pb.StreamChatCompletionResponse])
		if !ok {
			t.Fatalf("stream is %T", s)
		}
		r, ok := g.ClientStream.(interface{ Ready() bool })
		if !ok {
			t.Fatalf("%T has no Ready", g.ClientStream)
		}
		synctest.Wait()
		for i := range 2 {
			if !r.Ready() {
				t.Fatalf("message %d queued but not Ready", i)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if r.Ready() {
			t.Fatal("Ready while the handler waits")
		}
		close(gate)
		synctest.Wait()
		if !r.Ready() {
			t.Fatal("not Ready after the handler returned")
		}
		if _, err := s.Recv(); err != io.EOF {
			t.Fatalf("Recv after the end = %v, want EOF", err)
		}
	})
}
