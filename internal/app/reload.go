package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/batch"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/server"
)

// Live reconfiguration (docs/routing.md, "Live switching"):
//
//   - The config file given with WithConfigFile is watched (its directory, so editors' rename
//     writes and Kubernetes ConfigMap symlink swaps are seen); a change of its contents is
//     applied like AdminService.ReloadConfig. Failures are logged and the running config stays.
//   - A reload builds the providers whose settings changed (unchanged ones are reused, with
//     their connection pools), builds a router over the current router's State (breakers and
//     latency figures carry over) and swaps it in atomically. Requests in flight finish on the
//     router they started with.
//   - Providers that were replaced and implement io.Closer are closed once every router retired
//     so far has no execution in flight (router.InFlight), checked from providerCloseDelay after
//     the swap and at most until providerCloseMax.
//   - Live fields: providers, aliases, routes, prices. Fields that need a restart (server.*,
//     auth, log) are ignored with a warning and reported by ReloadConfig.

// providerCloseDelay covers a request that loaded the old router but has not started executing
// its plan yet (router.InFlight does not count it). A variable for tests.
var providerCloseDelay = time.Second

// Timing of closing replaced providers and of the file watch.
const (
	// providerClosePoll is how often the retired routers' in-flight counts are checked.
	providerClosePoll = 100 * time.Millisecond
	// providerCloseMax closes replaced providers even if requests still run on them.
	providerCloseMax = 15 * time.Minute
	// watchDebounce gathers the events of one save into one reload.
	watchDebounce = 100 * time.Millisecond
	// watchPoll is the polling interval when the file system cannot be watched.
	watchPoll = time.Second
)

// WithConfigFile names the file cfg was loaded from, so AdminService.ReloadConfig can re-read it
// and the instance watches it for changes. The file is re-read with WithGetenv's environment for
// ${VAR} references and the SWITCHYARD_*_ADDR overrides. Without it, reloads are refused;
// repoints still work.
func WithConfigFile(path string) Option { return func(o *startOptions) { o.configPath = path } }

// builtProvider is a provider built from its config, kept so a reload can reuse it when its
// config did not change.
type builtProvider struct {
	cfg provider.Config
	p   llm.Provider
}

// sameProvider reports whether a and b build the same provider: retry: is the router's policy,
// applied by the new router, so a change there alone keeps the provider and its connections.
func sameProvider(a, b provider.Config) bool {
	a.Retry, b.Retry = nil, nil
	return reflect.DeepEqual(a, b)
}

// buildBackends builds every provider of cfg, reusing those of reuse whose config is unchanged.
// On failure it closes what it built.
func buildBackends(reg *provider.Registry, cfg *Config, reuse map[string]builtProvider) (map[string]router.Backend, map[string]builtProvider, error) {
	backends := make(map[string]router.Backend, len(cfg.Providers))
	built := make(map[string]builtProvider, len(cfg.Providers))
	for _, pc := range cfg.Providers {
		bp, ok := reuse[pc.Name]
		if !ok || !sameProvider(bp.cfg, pc) {
			p, err := reg.New(pc)
			if err == nil && pc.Batching != nil {
				if bp, berr := batch.Wrap(p, *pc.Batching, tenantOf); berr != nil {
					closeProviders([]llm.Provider{p}, nil)
					err = fmt.Errorf("provider %q: %w", pc.Name, berr)
				} else {
					p = bp.WithRest()
				}
			}
			if err != nil {
				closeProviders(fresh(built, reuse), nil)
				return nil, nil, err
			}
			bp = builtProvider{cfg: pc, p: p}
		}
		built[pc.Name] = bp
		backends[pc.Name] = router.Backend{Provider: bp.p, Models: pc.Models, KeyID: router.KeyID(pc.APIKey)}
	}
	return backends, built, nil
}

// tenantOf is the batching partition: requests of different tenants are never merged into one
// upstream call (docs/providers.md, "Micro-batching").
func tenantOf(ctx context.Context) string {
	if p, ok := auth.FromContext(ctx); ok {
		return p.Tenant
	}
	return ""
}

// fresh returns the providers of now that are not in before.
func fresh(now, before map[string]builtProvider) []llm.Provider {
	var out []llm.Provider
	for n, bp := range now {
		if old, ok := before[n]; !ok || old.p != bp.p {
			out = append(out, bp.p)
		}
	}
	return out
}

// closeProviders closes those of ps that implement io.Closer, logging failures to log (if not nil).
func closeProviders(ps []llm.Provider, log *slog.Logger) {
	for _, p := range ps {
		if c, ok := p.(io.Closer); ok {
			if err := c.Close(); err != nil && log != nil {
				log.Warn("closing a replaced provider", "err", err)
			}
		}
	}
}

// liveConfig applies reloads and repoints to an instance. Its methods are safe for concurrent
// use; changes are serialized.
type liveConfig struct {
	inst   *Instance
	reg    *provider.Registry
	path   string
	getenv func(string) string
	log    *slog.Logger

	mu        sync.Mutex
	cfg       *Config // the running config (as loaded; repoints are not in it)
	providers map[string]builtProvider
	hash      [sha256.Size]byte // of the config file contents last applied or rejected
	retired   []*router.Router  // replaced routers that may still have requests in flight
	repointed atomic.Bool
	closing   sync.WaitGroup // goroutines closing replaced providers
}

func newLiveConfig(inst *Instance, reg *provider.Registry, cfg *Config, providers map[string]builtProvider,
	path string, getenv func(string) string, log *slog.Logger) *liveConfig {
	l := &liveConfig{inst: inst, reg: reg, path: path, getenv: getenv, log: log, cfg: cfg, providers: providers}
	if path != "" {
		if data, err := os.ReadFile(path); err == nil {
			l.hash = sha256.Sum256(data)
		}
	}
	return l
}

// Reload re-reads the config file and applies it (see liveConfig). Errors are *llm.Error:
// KindInvalidArgument for an invalid config, which leaves the running one in place.
func (i *Instance) Reload(context.Context) (server.ReloadResult, error) {
	data, err := i.live.read()
	if err != nil {
		return server.ReloadResult{}, err
	}
	return i.live.apply(data)
}

// Repoint points the route or alias name at targets ("provider/model", in priority order) until
// the next reload (router.Router.Repoint). Errors are *llm.Error of KindInvalidArgument.
func (i *Instance) Repoint(_ context.Context, name string, targets []string) error {
	return i.live.repoint(name, targets)
}

// Router returns the router serving now.
func (i *Instance) Router() *router.Router { return i.routes.Load() }

// Repointed reports whether Repoint changed the routing since the last reload.
func (i *Instance) Repointed() bool { return i.live.repointed.Load() }

var _ server.Admin = (*Instance)(nil)

func (l *liveConfig) read() ([]byte, error) {
	if l.path == "" {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Code: "no_config_file",
			Message: "the gateway was started without a config file: nothing to reload"}
	}
	data, err := os.ReadFile(l.path)
	if err != nil {
		return nil, llm.Wrap(llm.KindInvalidArgument, err, "reload: cannot read the config file")
	}
	return data, nil
}

// apply loads data as the new config and swaps in its routing.
func (l *liveConfig) apply(data []byte) (server.ReloadResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	res := server.ReloadResult{Path: l.path}
	l.hash = sha256.Sum256(data)
	reject := func(err error) (server.ReloadResult, error) {
		l.log.Error("config reload rejected: the running config stays", "path", l.path, "err", err)
		return res, &llm.Error{Kind: llm.KindInvalidArgument, Code: "invalid_config",
			Message: "config reload rejected: " + err.Error()}
	}
	cfg, err := loadConfig(data, l.path, l.getenv, l.reg.Types())
	if err != nil {
		return reject(err)
	}
	res.IgnoredFields = restartFields(l.cfg, cfg)
	if len(res.IgnoredFields) > 0 {
		l.log.Warn("config reload: these fields need a restart and were ignored", "fields", res.IgnoredFields)
		cfg.Server, cfg.Auth, cfg.Log = l.cfg.Server, l.cfg.Auth, l.cfg.Log
	}
	backends, built, err := buildBackends(l.reg, cfg, l.providers)
	if err != nil {
		return reject(err)
	}
	old := l.inst.routes.Load()
	nr, err := old.Reconfigure(backends, cfg.routerConfig())
	if err != nil {
		closeProviders(fresh(built, l.providers), nil)
		return reject(err)
	}
	res.ChangedRoutes = changedRoutes(old, nr)
	l.swap(old, nr)
	replaced := fresh(l.providers, built)
	l.cfg, l.providers = cfg, built
	l.repointed.Store(false)
	l.closeWhenIdle(replaced)
	l.log.Info("config reloaded", "path", l.path, "changed_routes", res.ChangedRoutes,
		"replaced_providers", len(replaced))
	return res, nil
}

func (l *liveConfig) repoint(name string, targets []string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.inst.routes.Load()
	nr, err := old.Repoint(name, targets)
	if err != nil {
		return &llm.Error{Kind: llm.KindInvalidArgument, Code: "invalid_route", Message: err.Error()}
	}
	l.swap(old, nr)
	l.repointed.Store(true)
	l.log.Info("route repointed", "route", name, "targets", targets)
	return nil
}

// swap publishes nr and retires old. l.mu is held.
func (l *liveConfig) swap(old, nr *router.Router) {
	l.inst.routes.Store(nr)
	l.retired = slices.DeleteFunc(l.retired, func(r *router.Router) bool { return r.InFlight() == 0 })
	l.retired = append(l.retired, old)
}

// closeWhenIdle closes ps (those implementing io.Closer) once every router retired so far has
// no execution in flight. l.mu is held.
func (l *liveConfig) closeWhenIdle(ps []llm.Provider) {
	if !slices.ContainsFunc(ps, func(p llm.Provider) bool { _, ok := p.(io.Closer); return ok }) {
		return
	}
	waitFor := slices.Clone(l.retired)
	l.closing.Go(func() {
		deadline := time.NewTimer(providerCloseMax)
		defer deadline.Stop()
		tick := time.NewTicker(providerClosePoll)
		defer tick.Stop()
		start := time.Now()
		for time.Since(start) < providerCloseDelay || slices.ContainsFunc(waitFor, func(r *router.Router) bool { return r.InFlight() > 0 }) {
			select {
			case <-tick.C:
			case <-deadline.C:
				l.log.Warn("closing replaced providers with requests still in flight", "after", providerCloseMax.String())
				closeProviders(ps, l.log)
				return
			case <-l.inst.done:
				closeProviders(ps, l.log)
				return
			}
		}
		closeProviders(ps, l.log)
	})
}

// changedRoutes lists the routes and aliases whose targets differ between old and nr, or that
// exist in only one of them.
func changedRoutes(old, nr *router.Router) []string {
	targets := func(r *router.Router) map[string]string {
		m := map[string]string{}
		for _, ri := range r.Routes() {
			s := ""
			for _, t := range ri.Targets {
				s += t.Name() + ","
			}
			m[ri.Name] = s
		}
		return m
	}
	a, b := targets(old), targets(nr)
	var out []string
	for n, s := range b {
		if a[n] != s {
			out = append(out, n)
		}
	}
	for n := range a {
		if _, ok := b[n]; !ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// restartFields names the fields of next that differ from cur and need a restart: every
// server.* field (listeners, limits, timeouts, transport), auth, and log.
func restartFields(cur, next *Config) []string {
	var out []string
	cv, nv := reflect.ValueOf(cur.Server), reflect.ValueOf(next.Server)
	for i := range cv.NumField() {
		if cv.Field(i).Interface() != nv.Field(i).Interface() {
			out = append(out, "server."+cv.Type().Field(i).Tag.Get("yaml"))
		}
	}
	if !reflect.DeepEqual(cur.Auth, next.Auth) {
		out = append(out, "auth")
	}
	if cur.Log != next.Log {
		out = append(out, "log")
	}
	return out
}

// watch starts reloading the config file when its contents change, until stop is closed. It
// watches the file's directory (set up before watch returns); if that fails it polls the file
// every watchPoll.
func (l *liveConfig) watch(stop <-chan struct{}) {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(l.path)); err != nil {
			_ = w.Close()
		}
	}
	if err != nil {
		l.log.Warn("config watch: cannot watch the directory, polling instead", "path", l.path, "err", err)
		go l.poll(stop)
		return
	}
	go l.watchEvents(w, stop)
}

// changed reloads the config file if its contents differ from those last applied or rejected.
func (l *liveConfig) changed() {
	data, err := os.ReadFile(l.path)
	if err != nil {
		l.log.Warn("config watch: cannot read the config file", "path", l.path, "err", err)
		return
	}
	l.mu.Lock()
	same := sha256.Sum256(data) == l.hash
	l.mu.Unlock()
	if !same {
		_, _ = l.apply(data) // logged by apply
	}
}

func (l *liveConfig) poll(stop <-chan struct{}) {
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			l.changed()
		}
	}
}

func (l *liveConfig) watchEvents(w *fsnotify.Watcher, stop <-chan struct{}) {
	defer w.Close()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-stop:
			return
		case _, ok := <-w.Events:
			if !ok {
				return
			}
			// Any event in the directory may be the file changing (rename writes, symlink swaps):
			// the contents' hash decides.
			debounce.Reset(watchDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				l.log.Warn("config watch", "err", err)
			}
			debounce.Reset(watchDebounce)
		case <-debounce.C:
			l.changed()
		}
	}
}
