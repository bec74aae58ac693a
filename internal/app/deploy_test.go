package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	composedotenv "github.com/compose-spec/compose-go/v2/dotenv"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"

	"github.com/switchyard/switchyard/internal/database"
)

// These tests keep the deployment files (no Docker or Kubernetes here) consistent with the code:
// the configs they ship load, and ports, paths and probes line up.

const repoRoot = "../.."

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// loadCompose loads dir/docker-compose.yml as docker compose does (compose-go, the loader it is
// built on), with every profile active and envFile (relative to dir) as the only environment: the
// shell's variables are not used, so a variable missing from envFile cannot hide behind one.
func loadCompose(dir, envFile string) (*composetypes.Project, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(abs, "docker-compose.yml")},
		composecli.WithWorkingDirectory(abs),
		composecli.WithEnvFiles(filepath.Join(abs, envFile)),
		composecli.WithDotEnv,
		composecli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// envValue is a service's environment variable as the container sees it ("" when unset).
func envValue(m composetypes.MappingWithEquals, k string) string {
	if v := m[k]; v != nil {
		return *v
	}
	return ""
}

// composeVar matches ${NAME...} references; $${ is compose's escape for a literal ${.
var composeVar = regexp.MustCompile(`(^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// checkCompose checks dir's docker-compose.yml by construction (no Docker engine here) and returns
// every problem found: it loads as Compose with envFile, every ${VAR} is defined in envFile, every
// host file it mounts exists inside dir, host ports do not collide, start-order conditions are
// satisfiable, the gateway's mounted config passes `switchyard config check` with the container's
// environment, and the gateway is configured to use the Redis, PostgreSQL and collector started.
func checkCompose(dir, envFile string) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	raw, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		return []error{err}
	}
	defined, err := composedotenv.GetEnvFromFile(map[string]string{}, []string{filepath.Join(dir, envFile)})
	if err != nil {
		return []error{err}
	}
	for _, m := range composeVar.FindAllStringSubmatch(string(raw), -1) {
		if _, ok := defined[m[2]]; !ok {
			fail("docker-compose.yml uses ${%s}, which %s does not define", m[2], envFile)
		}
	}

	p, err := loadCompose(dir, envFile)
	if err != nil {
		return append(errs, fmt.Errorf("compose-go: %w", err))
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return append(errs, err)
	}
	inRepo := func(what, path string) {
		rel, err := filepath.Rel(root, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			fail("%s: %s is outside the repository", what, path)
			return
		}
		if _, err := os.Stat(path); err != nil {
			fail("%s: %s does not exist in the repository", what, rel)
		}
	}

	type hostPort struct{ port, proto string }
	published := map[hostPort]string{}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == composetypes.VolumeTypeBind {
				inRepo("service "+name+" volume "+v.Target, v.Source)
			}
		}
		for _, f := range s.EnvFiles {
			inRepo("service "+name+" env_file", f.Path)
		}
		for _, c := range s.Configs {
			if cfg, ok := p.Configs[c.Source]; ok && cfg.File != "" {
				inRepo("service "+name+" config "+c.Source, cfg.File)
			}
		}
		for _, c := range s.Secrets {
			if sec, ok := p.Secrets[c.Source]; ok && sec.File != "" {
				inRepo("service "+name+" secret "+c.Source, sec.File)
			}
		}
		for _, pc := range s.Ports {
			if pc.Published == "" {
				continue
			}
			// One host port, whatever the address: 0.0.0.0:P and 127.0.0.1:P collide too.
			k := hostPort{pc.Published, pc.Protocol}
			if other, ok := published[k]; ok {
				fail("host port %s/%s published by both %s and %s", pc.Published, pc.Protocol, other, name)
			}
			published[k] = name
		}
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				fail("service %s depends on %s, which is not a service", name, dep)
				continue
			}
			if len(target.Profiles) > 0 && !slices.ContainsFunc(target.Profiles, func(pr string) bool { return slices.Contains(s.Profiles, pr) }) {
				fail("service %s depends on %s, which only starts with profiles %v", name, dep, target.Profiles)
			}
			if d.Condition == composetypes.ServiceConditionHealthy &&
				(target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0) {
				fail("service %s waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
			}
		}
	}

	gw, ok := p.Services["switchyard"]
	if !ok {
		return append(errs, errors.New("no switchyard service"))
	}
	if gw.Build == nil || gw.Build.Context != root {
		fail("switchyard is not built from the repository")
	}
	getenv := func(k string) string { return envValue(gw.Environment, k) }
	cfgPath := getenv(EnvConfig)
	var cfgSource string
	for _, v := range gw.Volumes {
		if v.Type == composetypes.VolumeTypeBind && v.Target == cfgPath {
			cfgSource = v.Source
		}
	}
	if cfgSource == "" {
		return append(errs, fmt.Errorf("no volume mounts a config at %s=%q", EnvConfig, cfgPath))
	}
	// What `switchyard config check` runs, with the environment compose gives the container.
	if err := checkConfig(cfgSource, getenv, io.Discard); err != nil {
		return append(errs, fmt.Errorf("%s: config check: %w", cfgSource, err))
	}
	cfg, err := LoadConfig(cfgSource, getenv)
	if err != nil {
		return append(errs, err)
	}
	var gwPorts []int
	for _, pc := range gw.Ports {
		gwPorts = append(gwPorts, int(pc.Target))
	}
	for _, addr := range []string{cfg.Server.HTTPAddr, cfg.Server.GRPCAddr, cfg.Server.AdminAddr} {
		_, ps, _ := net.SplitHostPort(addr)
		if n, _ := strconv.Atoi(ps); !slices.Contains(gwPorts, n) {
			fail("config listens on %s but compose publishes container ports %v", addr, gwPorts)
		}
		if isLoopback(addr) {
			fail("config listens on %s: unreachable from outside the container", addr)
		}
	}

	// The gateway uses what compose starts: each address names a service of the stack.
	service := func(what, hostport string) {
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			fail("%s %q: %v", what, hostport, err)
		} else if _, ok := p.Services[host]; !ok {
			fail("%s %q: %s is not a compose service", what, hostport, host)
		}
	}
	if cfg.Sessions.Backend != "tiered" {
		fail("sessions.backend = %q, want tiered (memory, Redis, PostgreSQL)", cfg.Sessions.Backend)
	}
	if cfg.Limits.Backend != "redis" {
		fail("limits.backend = %q, want redis", cfg.Limits.Backend)
	}
	for what, addrs := range map[string][]string{"sessions.redis": cfg.Sessions.Redis.Addrs, "limits.redis": cfg.Limits.Redis.Addrs} {
		if len(addrs) == 0 {
			fail("%s has no address", what)
		}
		for _, a := range addrs {
			service(what, a)
		}
	}
	if !cfg.Keys.Enabled || !cfg.Audit.Enabled {
		fail("keys.enabled = %v, audit.enabled = %v: want both", cfg.Keys.Enabled, cfg.Audit.Enabled)
	}
	for what, db := range map[string]database.Config{"sessions.sql": cfg.Sessions.SQL, "keys.sql": cfg.Keys.SQL, "audit.sql": cfg.Audit.SQL} {
		u, err := url.Parse(db.DSN)
		if db.Driver != "postgres" || err != nil {
			fail("%s = {driver: %q, dsn: %q}: want postgres with a URL (%v)", what, db.Driver, db.DSN, err)
			continue
		}
		service(what, u.Host)
	}
	if cfg.Audit.Sink != "sql" {
		fail("audit.sink = %q, want sql", cfg.Audit.Sink)
	}
	if u, err := url.Parse(getenv("OTEL_EXPORTER_OTLP_ENDPOINT")); err != nil || u.Host == "" {
		fail("OTEL_EXPORTER_OTLP_ENDPOINT = %q: want the collector's URL", getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	} else {
		service("OTEL_EXPORTER_OTLP_ENDPOINT", u.Host)
	}

	// Prometheus scrapes the gateway's admin port, under its service name.
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if data, err := os.ReadFile(filepath.Join(dir, "deploy/prometheus/prometheus.yml")); err != nil {
		fail("prometheus config: %v", err)
	} else if err := yaml.Unmarshal(data, &prom); err != nil {
		fail("deploy/prometheus/prometheus.yml: %v", err)
	} else {
		want := net.JoinHostPort("switchyard", strconv.Itoa(port4(cfg.Server.AdminAddr)))
		scraped := false
		for _, sc := range prom.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, tg := range st.Targets {
					service("prometheus job "+sc.JobName, tg)
					scraped = scraped || (tg == want && (sc.MetricsPath == "" || sc.MetricsPath == "/metrics"))
				}
			}
		}
		if !scraped {
			fail("prometheus does not scrape %s/metrics", want)
		}
	}
	return errs
}

// port4 is the port of a host:port address, 0 when there is none.
func port4(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}

func TestDockerCompose(t *testing.T) {
	for _, err := range checkCompose(repoRoot, ".env.example") {
		t.Error(err)
	}
}

// TestDockerComposeCheckFails shows that checkCompose finds what it is meant to find: a copy of
// the stack with a mounted file removed, a variable missing from the env file, and a healthcheck
// removed from a service others wait for.
func TestDockerComposeCheckFails(t *testing.T) {
	files := []string{"docker-compose.yml", ".env.example", "deploy/compose/switchyard.yaml",
		"deploy/otel-collector/config.yaml", "deploy/prometheus/prometheus.yml"}
	stack := func(t *testing.T, edit func(dir string)) string {
		dir := t.TempDir()
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(repoRoot, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		edit(dir)
		return dir
	}
	replace := func(t *testing.T, dir, f, old, new string) {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), old) {
			t.Fatalf("%s has no %q", f, old)
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		edit func(t *testing.T, dir string)
		want string
	}{
		{"mounted file missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "deploy/otel-collector/config.yaml")); err != nil {
				t.Fatal(err)
			}
		}, "deploy/otel-collector/config.yaml does not exist"},
		{"variable not in env file", func(t *testing.T, dir string) {
			replace(t, dir, ".env.example", "\nREDIS_PASSWORD=", "\n#REDIS_PASSWORD=")
		}, "${REDIS_PASSWORD}, which .env.example does not define"},
		{"waits for a service without healthcheck", func(t *testing.T, dir string) {
			replace(t, dir, "docker-compose.yml", `test: ["CMD-SHELL", "redis-cli ping | grep -q PONG"]`, "disable: true")
		}, "waits for redis to be healthy, but redis has no healthcheck"},
		{"host port collision", func(t *testing.T, dir string) {
			replace(t, dir, "docker-compose.yml", `"127.0.0.1:9091:9090"`, `"127.0.0.1:9090:9090"`)
		}, "host port 9090/tcp published by both"},
		{"gateway config invalid", func(t *testing.T, dir string) {
			replace(t, dir, "deploy/compose/switchyard.yaml", "backend: tiered", "backend: tired")
		}, "config check"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := stack(t, func(dir string) { c.edit(t, dir) })
			errs := checkCompose(dir, ".env.example")
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), c.want) }) {
				t.Errorf("errors %v, want one containing %q", errs, c.want)
			}
		})
	}
}

func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var exposed []int
	var envConfig string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "EXPOSE":
			for _, p := range f[1:] {
				n, _ := strconv.Atoi(p)
				exposed = append(exposed, n)
			}
		case "ENV":
			if k, v, ok := strings.Cut(f[1], "="); ok && k == EnvConfig {
				envConfig = v
			}
		case "COPY":
			if !strings.HasPrefix(f[1], "--from") {
				for _, src := range f[1 : len(f)-1] {
					if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
						t.Errorf("COPY source %s: %v", src, err)
					}
				}
			}
		}
	}
	d := DefaultConfig()
	for _, addr := range []string{d.Server.HTTPAddr, d.Server.GRPCAddr, d.Server.AdminAddr} {
		if !slices.Contains(exposed, port(t, addr)) {
			t.Errorf("Dockerfile EXPOSE %v lacks the port of %s", exposed, addr)
		}
	}
	p, err := loadCompose(repoRoot, ".env.example")
	if err != nil {
		t.Fatal(err)
	}
	if want := envValue(p.Services["switchyard"].Environment, EnvConfig); envConfig != want {
		t.Errorf("Dockerfile %s=%q, compose mounts the config at %q", EnvConfig, envConfig, want)
	}
}

type probe struct {
	HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
}

func TestKubernetesManifests(t *testing.T) {
	var cm struct {
		Metadata struct{ Name string }
		Data     map[string]string
	}
	readYAML(t, "deploy/kubernetes/configmap.yaml", &cm)
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args  []string
						Ports []struct {
							Name          string
							ContainerPort int `yaml:"containerPort"`
						}
						VolumeMounts []struct {
							Name      string
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
						ReadinessProbe probe `yaml:"readinessProbe"`
						LivenessProbe  probe `yaml:"livenessProbe"`
					}
					Volumes []struct {
						Name      string
						ConfigMap struct{ Name string } `yaml:"configMap"`
					}
				}
			}
		}
	}
	readYAML(t, "deploy/kubernetes/deployment.yaml", &dep)
	var svc struct {
		Spec struct {
			Ports []struct {
				Name       string
				TargetPort string `yaml:"targetPort"`
			}
		}
	}
	readYAML(t, "deploy/kubernetes/service.yaml", &svc)

	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}

	// The config path in args is a key of the ConfigMap mounted there.
	i := slices.Index(c.Args, "--config")
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("args %v lack --config", c.Args)
	}
	dir, key := path.Split(c.Args[i+1])
	var mounted string
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) == path.Clean(dir) {
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					mounted = v.ConfigMap.Name
				}
			}
		}
	}
	if mounted != cm.Metadata.Name {
		t.Errorf("%s is not mounted from ConfigMap %q", c.Args[i+1], cm.Metadata.Name)
	}
	raw, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap has no key %q", key)
	}

	// The shipped config is valid and its ports are the container's.
	cfg, err := ParseConfig([]byte(raw), func(k string) string { return "set-" + k })
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, addr := range map[string]string{"http": cfg.Server.HTTPAddr, "grpc": cfg.Server.GRPCAddr, "admin": cfg.Server.AdminAddr} {
		if ports[name] != port(t, addr) {
			t.Errorf("container port %s = %d, config listens on %s", name, ports[name], addr)
		}
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != "/readyz" || p.Port != "admin" {
		t.Errorf("readiness probe = %+v, want /readyz on admin", p)
	}
	if p := c.LivenessProbe.HTTPGet; p.Path != "/healthz" || p.Port != "admin" {
		t.Errorf("liveness probe = %+v, want /healthz on admin", p)
	}
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.TargetPort]; !ok || p.TargetPort == "admin" {
			t.Errorf("service port %s targets %q: not a public container port", p.Name, p.TargetPort)
		}
	}
}
