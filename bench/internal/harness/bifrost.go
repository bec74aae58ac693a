package harness

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// BifrostOptions says how to start a Bifrost gateway (github.com/maximhq/bifrost, the
// transports/bifrost-http binary) for comparison.
type BifrostOptions struct {
	Binary       string // path to a bifrost-http binary
	UpstreamAddr string // host:port of the OpenAI-compatible upstream (the Upstream above)
	// Pin runs it alone on CPU 0 (taskset) with GOMAXPROCS=1, as StartGateway does.
	Pin bool
}

// BifrostConfig is the config.json written into Bifrost's app dir: request logging off, no
// config or logs store (no database), one OpenAI provider key whose base URL is the upstream,
// no retries. Clients send models as "openai/<model>". Everything else is Bifrost's default
// (concurrency 1000 and buffer 5000 per provider, 5000 connections per host, log level info).
func BifrostConfig(upstreamAddr string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"client":       map[string]any{"enable_logging": false},
		"config_store": map[string]any{"enabled": false},
		"logs_store":   map[string]any{"enabled": false},
		"providers": map[string]any{
			"openai": map[string]any{
				"keys": []map[string]any{{"name": "bench", "value": "sk-upstream", "models": []string{}, "weight": 1.0}},
				// The OpenAI provider appends /v1/chat/completions to base_url.
				"network_config": map[string]any{"base_url": "http://" + upstreamAddr, "max_retries": 0},
			},
		},
	}, "", "  ")
}

// StartBifrost starts a Bifrost binary with BifrostConfig in a temp app dir and waits up to 30 s
// for GET /health. HTTP_PROXY and HTTPS_PROXY point at a closed loopback port: at start Bifrost
// tries to download model catalogues and pricing, which must fail at once rather than reach out.
// The returned Gateway has HTTPAddr (the OpenAI-compatible API) and AdminAddr set to the same
// address (Bifrost serves /metrics there); GRPCAddr is empty.
func StartBifrost(o BifrostOptions) (*Gateway, error) {
	abs, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bifrost-bench")
	if err != nil {
		return nil, err
	}
	cfg, err := BifrostConfig(o.UpstreamAddr)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	closed, err := freeAddr() // nothing listens there once freeAddr returns
	if err != nil {
		return nil, err
	}
	host, port, _ := net.SplitHostPort(addr)
	g := &Gateway{Dir: dir, Procs: "default", HTTPAddr: addr, AdminAddr: addr}
	args := []string{abs, "-app-dir", dir, "-host", host, "-port", port}
	if o.Pin {
		args = append([]string{"taskset", "-c", "0"}, args...)
		g.Procs = "1"
	}
	g.cmd = exec.Command(args[0], args[1:]...)
	g.cmd.Dir = dir
	g.cmd.Env = append(os.Environ(), "HTTP_PROXY=http://"+closed, "HTTPS_PROXY=http://"+closed,
		"http_proxy=http://"+closed, "https_proxy=http://"+closed, "NO_PROXY=", "no_proxy=")
	if o.Pin {
		g.cmd.Env = append(g.cmd.Env, "GOMAXPROCS=1")
	}
	logf, err := os.Create(filepath.Join(dir, "bifrost.log"))
	if err != nil {
		return nil, err
	}
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.logPath = logf.Name()
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bifrost: %w", err)
	}
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 600 {
			g.Stop()
			log, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("bifrost not healthy after 30s; log:\n%s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.IdleRSS = g.RSSMiB()
	return g, nil
}
