package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor: clients may compress
	"google.golang.org/grpc/keepalive"

	"github.com/switchyard/switchyard/gateway"
	_ "github.com/switchyard/switchyard/internal/grpczstd" // registers the zstd compressor likewise
	"github.com/switchyard/switchyard/internal/inproc"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/interceptor"
)

// chains are the interceptor chains, outermost first (server/interceptor declares the order).
// The gRPC server and the in-process channel run the same ones.
type chains struct {
	unary  []grpc.UnaryServerInterceptor
	stream []grpc.StreamServerInterceptor
}

// newChains builds the chains over d's logger, authenticator, limiter and audit log, validating
// requests against lim (server.request_limits).
func newChains(d *deps, lim interceptor.RequestLimits) chains {
	icfg := interceptor.Config{Logger: d.log, Authenticator: d.authn, Limiter: d.limiter, RequestLimits: lim}
	icfg.Auditor, icfg.AuditBodyMax = d.audit.auditor(), d.audit.bodyMax()
	return chains{unary: interceptor.Unary(icfg), stream: interceptor.Stream(icfg)}
}

// msgLimit is the largest gRPC message the server and the loopback gateway connection accept: a
// whole request body plus protobuf framing.
func msgLimit(cfg ServerConfig) int { return int(cfg.MaxBodyBytes + 1<<20) }

// otelOptions point otelgrpc's stats handlers at tel's providers.
func otelOptions(tel *telemetry.Telemetry) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tel.TracerProvider()),
		otelgrpc.WithMeterProvider(tel.MeterProvider()),
		otelgrpc.WithPropagators(tel.Propagator()),
	}
}

// grpcServerOptions are the gRPC server's options: the otelgrpc stats handler, TLS when
// configured, the chains, the message limits and the keepalive policy.
func grpcServerOptions(cfg ServerConfig, d *deps, c chains) []grpc.ServerOption {
	limit := msgLimit(cfg)
	return []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler(otelOptions(d.tel)...)),
		d.tls.grpcOption(),
		grpc.ChainUnaryInterceptor(c.unary...),
		grpc.ChainStreamInterceptor(c.stream...),
		grpc.MaxRecvMsgSize(limit),
		grpc.MaxSendMsgSize(limit),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	}
}

// registerServices registers the gateway's services on reg: the API (chat, embeddings, rerank, models,
// sessions), AdminService, and KeyService and AuditService when they are on. Start registers them
// on the gRPC server and, with the inproc gateway transport, on the in-process channel, so both
// serve the same set. Health and reflection are the gRPC server's alone.
func (i *Instance) registerServices(reg grpc.ServiceRegistrar, d *deps) {
	server.Register(reg, i.routes.Load, server.WithSessions(d.sessions))
	server.RegisterAdmin(reg, i)
	d.keys.register(reg)
	d.audit.register(reg)
}

// restHandler builds the REST gateway over gatewayConn. The gateway adds its own HTTP telemetry handler
// (global providers, which telemetry.Setup set).
func (i *Instance) restHandler(ctx context.Context, cfg ServerConfig, d *deps, c chains, grpcAddr net.Addr) (http.Handler, error) {
	gwCtx, gwCancel := context.WithCancel(context.WithoutCancel(ctx))
	d.closers.add(gwCancel)
	conn, err := i.gatewayConn(cfg, d, c, grpcAddr)
	if err != nil {
		return nil, err
	}
	h, err := gateway.New(gwCtx, conn, gateway.Options{
		MaxBodyBytes: cfg.MaxBodyBytes, Logger: d.log,
		Authenticate:         edgeAuthenticate(d.authn, d.audit),
		MaxInflightBodyBytes: cfg.MaxInflightBodyBytes,
		BodyReadTimeout:      cfg.BodyReadTimeout,
		CompressStreams:      cfg.CompressStreams,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return h, nil
}

// gatewayConn is the REST gateway's connection to the services. It is a gRPC client connection,
// so REST requests run through the same interceptors as native gRPC calls: by default an
// in-process channel (same chains, a server span and the rpc.server.call.duration metric like
// the stats handler's, no sockets or serialization); with gateway_transport: loopback, the
// process's own gRPC listener at grpcAddr, uncompressed, with the message limit raised to match
// the server's.
func (i *Instance) gatewayConn(cfg ServerConfig, d *deps, c chains, grpcAddr net.Addr) (grpc.ClientConnInterface, error) {
	if cfg.GatewayTransport != TransportLoopback {
		ch := inproc.New(
			inproc.WithUnaryInterceptors(c.unary...),
			inproc.WithStreamInterceptors(c.stream...),
			inproc.WithTracerProvider(d.tel.TracerProvider()),
			inproc.WithMeterProvider(d.tel.MeterProvider()),
		)
		i.registerServices(ch, d)
		return ch, nil
	}
	limit := msgLimit(cfg)
	conn, err := grpc.NewClient(loopbackTarget(grpcAddr),
		grpc.WithTransportCredentials(d.tls.loopbackCreds()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelOptions(d.tel)...)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(limit), grpc.MaxCallSendMsgSize(limit)),
	)
	if err != nil {
		return nil, fmt.Errorf("gateway connection to %s: %w", grpcAddr, err)
	}
	i.gwConn = conn
	d.closers.add(func() { _ = conn.Close() })
	return conn, nil
}
