package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/telemetry"
)

// The process logger's buffering (when Start builds the logger itself).
const (
	logBufferSize    = 64 << 10
	logFlushInterval = 100 * time.Millisecond
)

// telemetryFlushTimeout bounds the telemetry flush when the instance closes.
const telemetryFlushTimeout = 5 * time.Second

// closers is a cleanup list: closeAll calls the functions added, last added first, each once.
type closers []func()

// add appends f to the list.
func (c *closers) add(f func()) { *c = append(*c, f) }

// closeAll calls every function added and empties the list, so a second call does nothing.
func (c *closers) closeAll() {
	for len(*c) > 0 {
		last := len(*c) - 1
		f := (*c)[last]
		*c = (*c)[:last]
		f()
	}
}

// deps is what Start builds before it listens: the process's logger and telemetry and what the
// request chain and the services use. Its closers undo them, and the listeners and connections
// Start adds after them, in reverse: the servers' collaborators first, telemetry last. The
// instance closes them once its servers have stopped; Start, when it fails halfway.
type deps struct {
	log      *slog.Logger
	flushLog func() // flushes the log Start built; does nothing for WithLogger's
	tel      *telemetry.Telemetry
	authn    auth.Authenticator // the configured credentials, then the managed keys
	keys     *managedKeys       // nil when keys are off
	tls      *serverTLS         // nil without TLS
	audit    *auditLog          // nil when audit is off
	limiter  *limits.Limiter    // nil when no limits are set
	sessions *session.Manager
	closers  closers
}

// buildDeps builds the deps in dependency order, and the instance's router and live config on
// inst. If that fails, it closes what it built.
func buildDeps(ctx context.Context, cfg *Config, o *startOptions, reg *provider.Registry, inst *Instance) (*deps, error) {
	d := newDeps(o.log, cfg.Log)
	if err := d.build(ctx, cfg, o, reg, inst); err != nil {
		d.close(nil)
		return nil, err
	}
	return d, nil
}

// newDeps starts the deps with the logger: log, or without it one writing cfg's level and format
// to stderr.
func newDeps(log *slog.Logger, cfg LogConfig) *deps {
	d := &deps{log: log, flushLog: func() {}}
	if log == nil {
		// One access-log line per request: batching the lines into fewer writes saves a write
		// system call per request. Lines reach stderr within logFlushInterval, and at shutdown.
		lw := telemetry.NewBufferedWriter(os.Stderr, logBufferSize, logFlushInterval)
		d.flushLog = func() { _ = lw.Close() }
		level, _ := parseLevel(cfg.Level)
		d.log = telemetry.NewLogger(lw, level, cfg.Format)
	}
	return d
}

// build sets up telemetry, the routes, the authenticator, TLS and the stores, adding each one's
// cleanup to d.closers as it goes.
func (d *deps) build(ctx context.Context, cfg *Config, o *startOptions, reg *provider.Registry, inst *Instance) error {
	tel, err := telemetry.Setup(ctx, ServiceName, Version, o.getenv, o.telemetryOpts...)
	if err != nil {
		return err
	}
	d.tel = tel
	d.closers.add(func() { d.flushTelemetry(ctx) })
	if err := inst.buildRoutes(reg, cfg, o, d.log); err != nil {
		return err
	}
	if err := d.buildAuthn(ctx, cfg); err != nil {
		return err
	}
	if d.tls, err = buildTLS(cfg.Server.TLS); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return d.buildStores(ctx, cfg)
}

// flushTelemetry flushes and stops telemetry, within telemetryFlushTimeout.
func (d *deps) flushTelemetry(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), telemetryFlushTimeout)
	defer cancel()
	if err := d.tel.Shutdown(ctx); err != nil {
		d.log.Warn("telemetry flush", "err", err)
	}
}

// buildRoutes builds the configured providers and the router over them, and the live config that
// reloads and repoints them (reload.go).
func (i *Instance) buildRoutes(reg *provider.Registry, cfg *Config, o *startOptions, log *slog.Logger) error {
	backends, built, err := buildBackends(reg, cfg, nil)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	rt, err := router.Build(backends, cfg.routerConfig(), router.NewState(router.WithLogger(log)))
	if err != nil {
		closeProviders(fresh(built, nil), log)
		return fmt.Errorf("config: %w", err)
	}
	// The router is swapped atomically: a reload or repoint replaces it without dropping
	// requests.
	i.routes.Store(rt)
	i.live = newLiveConfig(i, reg, cfg, built, o.configPath, o.getenv, log)
	return nil
}

// buildAuthn builds the authenticator requests go through: the configured credentials, then the
// managed keys when they are on (keys.go). One cleanup closes both: first the credentials' (JWKS
// refreshes), then the key store.
func (d *deps) buildAuthn(ctx context.Context, cfg *Config) error {
	authn, closeAuth, err := buildAuth(cfg.Auth, d.log)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	d.authn, d.keys, err = buildKeys(ctx, cfg.Keys, cfg.Auth.Mode, authn, d.log)
	if err != nil {
		closeAuth()
		return err
	}
	d.closers.add(func() {
		closeAuth()
		d.keys.close()
	})
	return nil
}

// buildStores opens the audit log, the limiter and the session store. They are built in that
// order so that they close in the reverse: the sessions, which erase a user's audit bodies
// through the audit log, before it, and the audit log last, once every finished request is
// written.
func (d *deps) buildStores(ctx context.Context, cfg *Config) error {
	var err error
	if d.audit, err = buildAudit(ctx, cfg.Audit, d.tel.MeterProvider(), d.log); err != nil {
		return err
	}
	d.closers.add(d.audit.close)
	limiter, closeLimits, err := buildLimits(ctx, cfg.Limits, d.tel.MeterProvider(), d.log)
	if err != nil {
		return err
	}
	d.limiter = limiter
	d.closers.add(closeLimits)
	sessions, closeSessions, err := buildSessions(ctx, cfg.Sessions, d.log)
	if err != nil {
		return err
	}
	d.sessions = sessions
	d.closers.add(closeSessions)
	sessions.SetUserEraser(d.audit.userEraser())
	return nil
}

// close runs the cleanup list, then last (if not nil) to write the last log lines, and flushes
// the log.
func (d *deps) close(last func()) {
	d.closers.closeAll()
	if last != nil {
		last()
	}
	d.flushLog()
}
