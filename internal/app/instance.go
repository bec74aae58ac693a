package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/run"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip codec: clients may compress
	"google.golang.org/grpc/health"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/switchyard/switchyard/gateway"
	"github.com/switchyard/switchyard/internal/inproc"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/internal/telemetry"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/interceptor"
)

// The process logger's buffering (when Start builds the logger itself).
const (
	logBufferSize    = 64 << 10
	logFlushInterval = 100 * time.Millisecond
)

// Option adjusts Start.
type Option func(*startOptions)

type startOptions struct {
	log           *slog.Logger
	getenv        func(string) string
	telemetryOpts []telemetry.Option
	extraTypes    []extraType
	configPath    string // WithConfigFile
}

type extraType struct {
	typ string
	f   provider.Factory
}

// WithLogger sets the logger. Without it, Start logs to stderr as cfg.Log says.
func WithLogger(l *slog.Logger) Option { return func(o *startOptions) { o.log = l } }

// WithGetenv sets how telemetry reads its OTEL_* environment. Without it the environment is
// ignored (no OTLP export), which keeps tests hermetic; Run passes os.Getenv.
func WithGetenv(getenv func(string) string) Option {
	return func(o *startOptions) { o.getenv = getenv }
}

// WithSpanExporter adds a span exporter that receives every ended span synchronously, e.g.
// tracetest.NewInMemoryExporter() in a test asserting that one trace spans REST, gRPC and upstream.
// The instance shuts e down when it stops (an InMemoryExporter then forgets its spans: read them
// before, or wrap it).
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *startOptions) { o.telemetryOpts = append(o.telemetryOpts, telemetry.WithSpanExporter(e)) }
}

// WithProviderType registers an extra provider type for this instance, next to the built-in ones,
// so a test can configure providers of a type it implements itself. Registering a built-in type
// panics.
func WithProviderType(typ string, f provider.Factory) Option {
	return func(o *startOptions) { o.extraTypes = append(o.extraTypes, extraType{typ, f}) }
}

// Instance is a running gateway. Its methods are safe for concurrent use.
type Instance struct {
	httpAddr, grpcAddr, adminAddr string

	health   *health.Server
	gwConn   *grpc.ClientConn // loopback transport only; nil for inproc
	routes   atomic.Pointer[router.Router]
	live     *liveConfig // reloads and repoints (reload.go)
	draining atomic.Bool

	stopOnce sync.Once
	stop     chan struct{} // closed by Shutdown
	done     chan struct{} // closed when everything has stopped
	err      error         // set before done is closed
}

// HTTPAddr returns the bound REST address, host:port (the real port when configured with :0).
func (i *Instance) HTTPAddr() string { return i.httpAddr }

// GRPCAddr returns the bound gRPC address, host:port.
func (i *Instance) GRPCAddr() string { return i.grpcAddr }

// AdminAddr returns the bound admin address, host:port (/metrics, /healthz, /readyz, /debug/pprof/).
func (i *Instance) AdminAddr() string { return i.adminAddr }

// Done is closed once the instance has stopped completely.
func (i *Instance) Done() <-chan struct{} { return i.done }

// Wait blocks until the instance has stopped (its context was cancelled, Shutdown was called, or a
// listener failed) and returns nil for a requested stop, else the error that stopped it.
func (i *Instance) Wait() error {
	<-i.done
	return i.err
}

// Shutdown starts the graceful shutdown, if it has not started, and waits for it to finish or for
// ctx to end. The shutdown itself is bounded by server.shutdown_timeout, not by ctx. It returns
// Wait's error, or ctx's error if ctx ended first.
func (i *Instance) Shutdown(ctx context.Context) error {
	i.stopOnce.Do(func() { close(i.stop) })
	select {
	case <-i.done:
		return i.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start validates cfg, builds the gateway and starts serving on its three listeners. It returns
// once every listener is bound and the health service reports SERVING; the addresses are then
// known (HTTPAddr, GRPCAddr, AdminAddr). The instance runs until ctx is cancelled or Shutdown is
// called; then it shuts down in order:
//
//  1. the gRPC health service and /readyz report NOT_SERVING;
//  2. the REST server stops accepting and waits for in-flight requests, SSE streams included;
//  3. the gRPC server stops gracefully (GracefulStop), forced (Stop) at the deadline;
//  4. the admin server stops;
//  5. telemetry is flushed.
//
// Steps 2 and 3 share one deadline, server.shutdown_timeout after the shutdown began.
func Start(ctx context.Context, cfg *Config, opts ...Option) (*Instance, error) {
	o := startOptions{getenv: func(string) string { return "" }}
	for _, opt := range opts {
		opt(&o)
	}
	reg := newRegistry()
	for _, e := range o.extraTypes {
		reg.Register(e.typ, e.f)
	}
	if err := cfg.validate(reg.Types()); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	inst := &Instance{stop: make(chan struct{}), done: make(chan struct{})}
	// cleanup undoes what Start built so far if it fails.
	var cleanup []func()
	log := o.log
	flushLog := func() {}
	if log == nil {
		// One access-log line per request: batching the lines into fewer writes saves a write
		// system call per request. Lines reach stderr within logFlushInterval, and at shutdown.
		lw := telemetry.NewBufferedWriter(os.Stderr, logBufferSize, logFlushInterval)
		flushLog = func() { _ = lw.Close() }
		cleanup = append(cleanup, flushLog)
		level, _ := parseLevel(cfg.Log.Level)
		log = telemetry.NewLogger(lw, level, cfg.Log.Format)
	}
	fail := func(err error) (*Instance, error) {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, err
	}

	tel, err := telemetry.Setup(ctx, ServiceName, Version, o.getenv, o.telemetryOpts...)
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, func() { _ = tel.Shutdown(context.WithoutCancel(ctx)) })

	backends, built, err := buildBackends(reg, cfg, nil)
	if err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	rt, err := router.Build(backends, cfg.routerConfig(), router.NewState(router.WithLogger(log)))
	if err != nil {
		closeProviders(fresh(built, nil), log)
		return fail(fmt.Errorf("config: %w", err))
	}
	// The router is swapped atomically: a reload or repoint (reload.go) replaces it without
	// dropping requests.
	inst.routes.Store(rt)
	inst.live = newLiveConfig(inst, reg, cfg, built, o.configPath, o.getenv, log)
	authn, closeAuth, err := buildAuth(cfg.Auth, log)
	if err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	cleanup = append(cleanup, closeAuth)
	authn, keys, err := buildKeys(ctx, cfg.Keys, cfg.Auth.Mode, authn, log)
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, keys.close)
	tlsSetup, err := buildTLS(cfg.Server.TLS)
	if err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	sessions, closeSessions, err := buildSessions(ctx, cfg.Sessions, log)
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, closeSessions)
	limiter, closeLimits, err := buildLimits(ctx, cfg.Limits, tel.MeterProvider(), log)
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, closeLimits)
	aud, err := buildAudit(ctx, cfg.Audit, tel.MeterProvider(), log)
	if err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, aud.close)
	sessions.SetUserEraser(aud.userEraser())

	var lc net.ListenConfig
	listen := func(name, addr string) (net.Listener, error) {
		lis, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
		}
		cleanup = append(cleanup, func() { _ = lis.Close() })
		return lis, nil
	}
	grpcLis, err := listen("gRPC", cfg.Server.GRPCAddr)
	if err != nil {
		return fail(err)
	}
	httpLis, err := listen("REST", cfg.Server.HTTPAddr)
	if err != nil {
		return fail(err)
	}
	httpLis = tlsSetup.restListener(httpLis)
	adminLis, err := listen("admin", cfg.Server.AdminAddr)
	if err != nil {
		return fail(err)
	}
	inst.grpcAddr, inst.httpAddr, inst.adminAddr = grpcLis.Addr().String(), httpLis.Addr().String(), adminLis.Addr().String()

	// gRPC messages carry a whole request body plus protobuf framing.
	msgLimit := int(cfg.Server.MaxBodyBytes + 1<<20)

	inst.health = health.NewServer()
	inst.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	icfg := interceptor.Config{Logger: log, Authenticator: authn, Limiter: limiter}
	icfg.Auditor, icfg.AuditBodyMax = aud.auditor(), aud.bodyMax()
	unaryChain, streamChain := interceptor.Unary(icfg), interceptor.Stream(icfg)
	grpcSrv := grpc.NewServer(
		grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tel.TracerProvider()),
			otelgrpc.WithMeterProvider(tel.MeterProvider()),
			otelgrpc.WithPropagators(tel.Propagator()),
		)),
		tlsSetup.grpcOption(),
		grpc.ChainUnaryInterceptor(unaryChain...),
		grpc.ChainStreamInterceptor(streamChain...),
		grpc.MaxRecvMsgSize(msgLimit),
		grpc.MaxSendMsgSize(msgLimit),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Minute, Timeout: 20 * time.Second}),
	)
	server.Register(grpcSrv, inst.routes.Load, server.WithSessions(sessions))
	server.RegisterAdmin(grpcSrv, inst)
	keys.register(grpcSrv)
	aud.register(grpcSrv)
	healthgrpc.RegisterHealthServer(grpcSrv, inst.health)
	reflection.Register(grpcSrv)

	// The REST gateway reaches the services through a gRPC client connection, so REST requests
	// run through the same interceptors as native gRPC calls: by default an in-process channel
	// (same chains, a server span and the rpc.server.call.duration metric like the stats
	// handler's, no sockets or serialization); with gateway_transport: loopback, the process's
	// own gRPC listener, uncompressed, with the message limit raised to match the server's.
	var gwConn grpc.ClientConnInterface
	if cfg.Server.GatewayTransport == TransportLoopback {
		inst.gwConn, err = grpc.NewClient(loopbackTarget(grpcLis.Addr()),
			grpc.WithTransportCredentials(tlsSetup.loopbackCreds()),
			grpc.WithStatsHandler(otelgrpc.NewClientHandler(
				otelgrpc.WithTracerProvider(tel.TracerProvider()),
				otelgrpc.WithMeterProvider(tel.MeterProvider()),
				otelgrpc.WithPropagators(tel.Propagator()),
			)),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(msgLimit), grpc.MaxCallSendMsgSize(msgLimit)),
		)
		if err != nil {
			return fail(fmt.Errorf("gateway connection to %s: %w", grpcLis.Addr(), err))
		}
		cleanup = append(cleanup, func() { _ = inst.gwConn.Close() })
		gwConn = inst.gwConn
	} else {
		ch := inproc.New(
			inproc.WithUnaryInterceptors(unaryChain...),
			inproc.WithStreamInterceptors(streamChain...),
			inproc.WithTracerProvider(tel.TracerProvider()),
			inproc.WithMeterProvider(tel.MeterProvider()),
		)
		server.Register(ch, inst.routes.Load, server.WithSessions(sessions))
		server.RegisterAdmin(ch, inst)
		keys.register(ch)
		aud.register(ch)
		gwConn = ch
	}
	gwCtx, gwCancel := context.WithCancel(context.WithoutCancel(ctx))
	cleanup = append(cleanup, gwCancel)
	// The gateway adds its own otelhttp handler (global providers, which telemetry.Setup set).
	restHandler, err := gateway.New(gwCtx, gwConn, gateway.Options{MaxBodyBytes: cfg.Server.MaxBodyBytes, Logger: log})
	if err != nil {
		return fail(fmt.Errorf("gateway: %w", err))
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	restSrv := &http.Server{
		Handler:           restHandler,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		// No WriteTimeout: it would cut long SSE streams. Upstream calls are bounded by the
		// request's context and the providers' timeouts instead.
		ErrorLog: errLog,
	}
	adminSrv := &http.Server{
		Handler:           inst.adminHandler(tel.MetricsHandler()),
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		ErrorLog:          errLog,
	}

	// Actors are interrupted in the order they are added, one after another: that order is the
	// shutdown order. The first interrupt fixes the deadline the later ones share.
	var g run.Group
	var deadline context.Context
	var cancelDeadline context.CancelFunc = func() {}
	g.Add(func() error {
		select {
		case <-ctx.Done():
		case <-inst.stop:
		}
		return nil
	}, func(error) {
		inst.stopOnce.Do(func() { close(inst.stop) }) // returns execute when another actor failed
		deadline, cancelDeadline = context.WithTimeout(context.WithoutCancel(ctx), cfg.Server.ShutdownTimeout)
		inst.draining.Store(true)
		inst.health.Shutdown() // NOT_SERVING, and stays so
		log.Info("shutting down", "timeout", cfg.Server.ShutdownTimeout.String())
	})
	g.Add(func() error {
		if err := restSrv.Serve(httpLis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve REST on %s: %w", inst.httpAddr, err)
		}
		return nil
	}, func(error) {
		if err := restSrv.Shutdown(deadline); err != nil {
			log.Warn("REST drain cut short", "err", err)
			_ = restSrv.Close()
		}
	})
	g.Add(func() error {
		if err := grpcSrv.Serve(grpcLis); err != nil {
			return fmt.Errorf("serve gRPC on %s: %w", inst.grpcAddr, err)
		}
		return nil
	}, func(error) {
		stopGRPC(deadline, grpcSrv, log)
	})
	g.Add(func() error {
		if err := adminSrv.Serve(adminLis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve admin on %s: %w", inst.adminAddr, err)
		}
		return nil
	}, func(error) {
		if err := adminSrv.Shutdown(deadline); err != nil {
			_ = adminSrv.Close()
		}
	})

	go func() {
		err := g.Run()
		cancelDeadline()
		if inst.gwConn != nil {
			_ = inst.gwConn.Close()
		}
		gwCancel()
		closeSessions()
		closeLimits()
		aud.close() // after the servers: every finished request is written
		closeAuth()
		keys.close()
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if terr := tel.Shutdown(flushCtx); terr != nil {
			log.Warn("telemetry flush", "err", terr)
		}
		cancel()
		if err != nil {
			log.Error("stopped", "err", err)
		} else {
			log.Info("stopped")
		}
		flushLog()
		inst.err = err
		close(inst.done)
	}()

	if inst.gwConn != nil {
		if err := waitReady(ctx, inst.gwConn); err != nil {
			_ = inst.Shutdown(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("gateway connection to own gRPC listener: %w", err)
		}
	}
	if o.configPath != "" {
		inst.live.watch(inst.stop)
	}
	inst.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, l := range []struct{ name, addr string }{
		{"rest", inst.httpAddr}, {"grpc", inst.grpcAddr}, {"admin", inst.adminAddr},
	} {
		log.Info("listening", "listener", l.name, "addr", l.addr, "tls", tlsSetup != nil)
	}
	log.Info("started", "version", fullVersion(), "providers", len(cfg.Providers), "auth", cfg.Auth.Mode)
	return inst, nil
}

// loopbackTarget is the address to dial a listener bound to a: its own IP, or 127.0.0.1 when it
// listens on every interface.
func loopbackTarget(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// waitReady connects conn and waits until it is READY, ctx ends or the connection fails.
func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		switch s {
		case connectivity.Ready:
			return nil
		case connectivity.Shutdown:
			return errors.New("connection closed")
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("still %s: %w", s, ctx.Err())
		}
	}
}

// stopGRPC stops s gracefully, and forcibly once ctx ends.
func stopGRPC(ctx context.Context, s *grpc.Server, log *slog.Logger) {
	stopped := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		log.Warn("gRPC drain cut short: cancelling remaining calls")
		s.Stop()
		<-stopped
	}
}

// adminHandler serves /metrics, /healthz (the process is up), /readyz (it takes traffic) and
// /debug/pprof/.
func (i *Instance) adminHandler(metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := i.ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// ready reports why the instance should not take traffic, or nil: it is draining, the gRPC health
// service is not SERVING, or the gateway's connection to the gRPC listener is broken.
func (i *Instance) ready(ctx context.Context) error {
	if i.draining.Load() {
		return errors.New("shutting down")
	}
	resp, err := i.health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	if st := resp.GetStatus(); st != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %s", st)
	}
	if i.gwConn == nil { // in-process: always connected
		return nil
	}
	switch st := i.gwConn.GetState(); st {
	case connectivity.Ready:
	case connectivity.Idle:
		i.gwConn.Connect() // idle after inactivity: connects on the next call
	default:
		return fmt.Errorf("gateway connection %s", st)
	}
	return nil
}
