package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/oklog/run"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// listeners are the instance's three bound sockets.
type listeners struct {
	grpc, rest, admin net.Listener // rest is wrapped in TLS when configured
}

// listen binds the gRPC, REST and admin addresses, in that order, adding each listener's close
// to c.
func listen(ctx context.Context, cfg ServerConfig, tls *serverTLS, c *closers) (listeners, error) {
	var lc net.ListenConfig
	bind := func(name, addr string) (net.Listener, error) {
		lis, err := lc.Listen(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s on %s: %w", name, addr, err)
		}
		c.add(func() { _ = lis.Close() })
		return lis, nil
	}
	var l listeners
	var err error
	if l.grpc, err = bind("gRPC", cfg.GRPCAddr); err != nil {
		return l, err
	}
	if l.rest, err = bind("REST", cfg.HTTPAddr); err != nil {
		return l, err
	}
	l.rest = tls.restListener(netutil.LimitListener(l.rest, cfg.MaxConnections))
	if l.admin, err = bind("admin", cfg.AdminAddr); err != nil {
		return l, err
	}
	return l, nil
}

// maxConcurrentStreams caps the HTTP/2 streams of one REST connection (HTTP/2 over TLS, or h2c).
const maxConcurrentStreams = 100

// newHTTPServer builds the REST or admin server serving h, logging its errors to log. Slow
// clients are cut off by ReadHeaderTimeout (headers) and the gateway's body_read_timeout (bodies).
// It speaks HTTP/1.1 and, over TLS, HTTP/2; with h2c also HTTP/2 without TLS (prior knowledge:
// a client that starts with the HTTP/2 preface; the Upgrade: h2c dance is not supported).
func newHTTPServer(cfg ServerConfig, h http.Handler, log *slog.Logger, h2c bool) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(h2c)
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		Protocols:         &protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: maxConcurrentStreams},
		// No WriteTimeout: it would cut long SSE streams. Upstream calls are bounded by the
		// request's context and the providers' timeouts instead.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// servers are what the actors run.
type servers struct {
	lis         listeners
	grpc        *grpc.Server
	rest, admin *http.Server
}

// actors returns the run group serving s until ctx ends or Shutdown is called. Actors are
// interrupted in the order they are added, one after another: that order is the shutdown order
// of Start's doc comment. The first interrupt fixes the deadline the later ones share;
// cancelDeadline releases it once the group has returned.
func (i *Instance) actors(ctx context.Context, cfg ServerConfig, log *slog.Logger, s servers) (g *run.Group, cancelDeadline func()) {
	g = &run.Group{}
	var deadline context.Context
	cancel := context.CancelFunc(func() {})
	g.Add(func() error {
		select {
		case <-ctx.Done():
		case <-i.stop:
		}
		return nil
	}, func(error) {
		i.stopOnce.Do(func() { close(i.stop) }) // returns execute when another actor failed
		deadline, cancel = context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		i.draining.Store(true)
		i.health.Shutdown() // NOT_SERVING, and stays so
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	})
	g.Add(serveHTTP("REST", i.httpAddr, s.rest, s.lis.rest), func(error) {
		if err := s.rest.Shutdown(deadline); err != nil {
			log.Warn("REST drain cut short", "err", err)
			_ = s.rest.Close()
		}
	})
	g.Add(func() error {
		if err := s.grpc.Serve(s.lis.grpc); err != nil {
			return fmt.Errorf("serve gRPC on %s: %w", i.grpcAddr, err)
		}
		return nil
	}, func(error) {
		stopGRPC(deadline, s.grpc, log)
	})
	g.Add(serveHTTP("admin", i.adminAddr, s.admin, s.lis.admin), func(error) {
		if err := s.admin.Shutdown(deadline); err != nil {
			_ = s.admin.Close()
		}
	})
	return g, func() { cancel() }
}

// serveHTTP is an actor serving s on lis until s is shut down.
func serveHTTP(name, addr string, s *http.Server, lis net.Listener) func() error {
	return func() error {
		if err := s.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s on %s: %w", name, addr, err)
		}
		return nil
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

// run runs the actors until they have stopped, then closes everything Start built (telemetry and
// the log flushed last), records the error that stopped them and closes done.
func (i *Instance) run(g *run.Group, cancelDeadline func(), d *deps) {
	err := g.Run()
	cancelDeadline()
	d.close(func() {
		if err != nil {
			d.log.Error("stopped", "err", err)
		} else {
			d.log.Info("stopped")
		}
	})
	i.err = err
	close(i.done)
}

// serve waits for the loopback gateway connection, starts watching the config file and reports
// SERVING. If the gateway connection fails, it shuts the instance down.
func (i *Instance) serve(ctx context.Context, cfg *Config, d *deps, configPath string) error {
	if i.gwConn != nil {
		if err := waitReady(ctx, i.gwConn); err != nil {
			_ = i.Shutdown(context.WithoutCancel(ctx))
			return fmt.Errorf("gateway connection to own gRPC listener: %w", err)
		}
	}
	if configPath != "" {
		i.live.watch(i.stop)
	}
	i.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, l := range []struct{ name, addr string }{
		{"rest", i.httpAddr}, {"grpc", i.grpcAddr}, {"admin", i.adminAddr},
	} {
		d.log.Info("listening", "listener", l.name, "addr", l.addr, "tls", d.tls != nil)
	}
	d.log.Info("started", "version", fullVersion(), "providers", len(cfg.Providers), "auth", cfg.Auth.Mode)
	return nil
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
