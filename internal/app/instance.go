package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/internal/telemetry"
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
// Steps 2 and 3 share one deadline, server.shutdown_timeout after the shutdown began. Between
// steps 4 and 5, what Start built is closed, last built first: the gateway's connection, the
// session store, the limiter, the audit log (which by then has every finished request), the
// authenticator and the key store. The log is flushed after telemetry. If Start fails halfway, it
// closes what it built in the same way.
func Start(ctx context.Context, cfg *Config, opts ...Option) (*Instance, error) {
	o := newStartOptions(opts)
	reg := o.registry()
	if err := cfg.validate(reg.Types()); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	inst := newInstance()
	d, err := buildDeps(ctx, cfg, &o, reg, inst) // deps.go
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Instance, error) {
		d.close(nil)
		return nil, err
	}
	lis, err := listen(ctx, cfg.Server, d.tls, &d.closers) // servers.go
	if err != nil {
		return fail(err)
	}
	inst.grpcAddr, inst.httpAddr, inst.adminAddr = lis.grpc.Addr().String(), lis.rest.Addr().String(), lis.admin.Addr().String()

	c := newChains(d, cfg.Server.RequestLimits) // services.go
	grpcSrv := grpc.NewServer(grpcServerOptions(cfg.Server, d, c)...)
	inst.registerServices(grpcSrv, d)
	healthpb.RegisterHealthServer(grpcSrv, inst.health)
	reflection.Register(grpcSrv)
	// With the inproc transport, restHandler registers the services on the in-process channel too.
	restHandler, err := inst.restHandler(ctx, cfg.Server, d, c, lis.grpc.Addr())
	if err != nil {
		return fail(err)
	}

	g, cancelDeadline := inst.actors(ctx, cfg.Server, d.log, servers{ // servers.go
		lis:   lis,
		grpc:  grpcSrv,
		rest:  newHTTPServer(cfg.Server, restHandler, d.log, cfg.Server.H2C && d.tls == nil),
		admin: newHTTPServer(cfg.Server, inst.adminHandler(d.tel.MetricsHandler()), d.log, false),
	})
	go inst.run(g, cancelDeadline, d)
	if err := inst.serve(ctx, cfg, d, o.configPath); err != nil {
		return nil, err
	}
	return inst, nil
}

// newStartOptions applies opts over the defaults.
func newStartOptions(opts []Option) startOptions {
	o := startOptions{getenv: func(string) string { return "" }}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// registry is the built-in provider registry plus WithProviderType's types.
func (o *startOptions) registry() *provider.Registry {
	reg := newRegistry()
	for _, e := range o.extraTypes {
		reg.Register(e.typ, e.f)
	}
	return reg
}

// newInstance returns an instance that is not serving yet: its health service reports
// NOT_SERVING until Start has finished.
func newInstance() *Instance {
	inst := &Instance{stop: make(chan struct{}), done: make(chan struct{}), health: health.NewServer()}
	inst.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return inst
}
