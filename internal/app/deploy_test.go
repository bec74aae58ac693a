package app

import (
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
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

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       map[string]any    `yaml:"build"`
		Profiles    []string          `yaml:"profiles"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestDockerCompose(t *testing.T) {
	var c composeFile
	readYAML(t, "docker-compose.yml", &c)
	sy, ok := c.Services["switchyard"]
	if !ok {
		t.Fatal("no switchyard service")
	}
	if sy.Build["context"] != "." {
		t.Errorf("switchyard build context = %v, want .", sy.Build["context"])
	}
	for _, name := range []string{"redis", "postgres"} {
		if s, ok := c.Services[name]; !ok || len(s.Profiles) == 0 {
			t.Errorf("service %s missing or not optional (no profiles)", name)
		}
	}

	// The mounted config exists and is the file SWITCHYARD_CONFIG names.
	cfgPath := sy.Environment[EnvConfig]
	var cfgSource string
	for _, v := range sy.Volumes {
		parts := strings.Split(v, ":")
		if strings.HasPrefix(parts[0], ".") {
			if _, err := os.Stat(filepath.Join(repoRoot, parts[0])); err != nil {
				t.Errorf("volume source %s: %v", parts[0], err)
			}
			if len(parts) > 1 && parts[1] == cfgPath {
				cfgSource = parts[0]
			}
		} else if _, ok := c.Volumes[parts[0]]; !ok {
			t.Errorf("named volume %s is not declared", parts[0])
		}
	}
	for _, s := range c.Services {
		for _, v := range s.Volumes {
			if name := strings.Split(v, ":")[0]; !strings.HasPrefix(name, ".") {
				if _, ok := c.Volumes[name]; !ok {
					t.Errorf("named volume %s is not declared", name)
				}
			}
		}
	}
	if cfgSource == "" {
		t.Fatalf("no volume mounts a config at %s=%q", EnvConfig, cfgPath)
	}

	// That config loads with the variables compose passes (keys set), and the ports it listens on
	// are the published container ports.
	vars := map[string]string{}
	composeDefault := regexp.MustCompile(`^\$\{[A-Z_]+:-(.*)\}$`)
	for k, v := range sy.Environment {
		if m := composeDefault.FindStringSubmatch(v); m != nil {
			v = m[1]
		}
		if v == "" {
			v = "set-by-user-" + k
		}
		vars[k] = v
	}
	cfg, err := LoadConfig(filepath.Join(repoRoot, cfgSource), env(vars))
	if err != nil {
		t.Fatal(err)
	}
	var published []int
	for _, p := range sy.Ports {
		parts := strings.Split(p, ":")
		n, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil {
			t.Fatalf("port %q: %v", p, err)
		}
		published = append(published, n)
	}
	for _, addr := range []string{cfg.Server.HTTPAddr, cfg.Server.GRPCAddr, cfg.Server.AdminAddr} {
		if p := port(t, addr); !slices.Contains(published, p) {
			t.Errorf("config listens on %s but compose publishes %v", addr, published)
		}
		if isLoopback(addr) {
			t.Errorf("config listens on %s: unreachable from outside the container", addr)
		}
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
	var c composeFile
	readYAML(t, "docker-compose.yml", &c)
	if want := c.Services["switchyard"].Environment[EnvConfig]; envConfig != want {
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
