package grpczstd_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/internal/grpczstd"
)

// wire records the compressed and decoded sizes of the messages a client sent and received.
type wire struct {
	compressed, decoded     int
	inCompressed, inDecoded int
}

func (w *wire) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (w *wire) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (w *wire) HandleConn(context.Context, stats.ConnStats)                       {}
func (w *wire) HandleRPC(_ context.Context, s stats.RPCStats) {
	if out, ok := s.(*stats.OutPayload); ok {
		w.compressed += out.CompressedLength
		w.decoded += out.Length
	}
	if in, ok := s.(*stats.InPayload); ok {
		w.inCompressed += in.CompressedLength
		w.inDecoded += in.Length
	}
}

func TestZstdOverGRPC(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(1 << 20))
	hs := health.NewServer()
	long := strings.Repeat("service-name ", 5000) // 65 KB, very compressible
	hs.SetServingStatus(long, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	w := &wire{}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(w))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := healthpb.NewHealthClient(conn)
	ctx := context.Background()

	// The same call many times: pooled encoders and decoders are reused.
	for range 20 {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: long}, grpc.UseCompressor(grpczstd.Name))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("status %v", resp.GetStatus())
		}
	}
	if w.decoded < 20*len(long) || w.compressed*50 > w.decoded {
		t.Errorf("sent %d bytes for %d decoded, want at least 50x smaller", w.compressed, w.decoded)
	}
	// The server answers compressed as it was called: a 2-byte answer grows by a zstd frame's
	// header on the wire.
	if w.inDecoded != 20*2 || w.inCompressed <= w.inDecoded {
		t.Errorf("received %d bytes on the wire for %d decoded: the answers were not zstd frames", w.inCompressed, w.inDecoded)
	}

	// The server's message limit applies to the decoded size: a bomb is refused.
	bomb := strings.Repeat("a", 8<<20)
	_, err = client.Check(ctx, &healthpb.HealthCheckRequest{Service: bomb}, grpc.UseCompressor(grpczstd.Name))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("8 MiB decoded over a 1 MiB limit: %v, want ResourceExhausted", err)
	}
	// And the connection still works afterwards.
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: long}, grpc.UseCompressor(grpczstd.Name)); err != nil {
		t.Fatal(err)
	}
}
