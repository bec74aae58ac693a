// Package e2e drives a whole Switchyard (app.Start on loopback ports) with real clients: the
// official OpenAI Go SDK, the generated gRPC client, grpcurl and plain net/http, against a real
// HTTP server speaking OpenAI's wire format as the upstream.
package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/app"
)

const (
	clientKey   = "sk-e2e-client-0123456789"
	upstreamKey = "sk-upstream-secret"
)

// gateway is a running Switchyard plus the fake upstream it calls.
type gateway struct {
	*app.Instance
	up *fakeOpenAI
}

func (g *gateway) restURL() string { return "http://" + g.HTTPAddr() }

// startGateway starts Switchyard with API-key auth, the mock provider and an OpenAI-compatible
// provider "up" pointed at a fresh fake upstream; extra is appended to the YAML config. Pinned
// "up/..." names keep their retries (3, the default), with backoffs short enough for a fast suite
// (the fake's 429 says Retry-After: 7).
func startGateway(t *testing.T, extra string, opts ...app.Option) *gateway {
	t.Helper()
	up := newFakeOpenAI(t)
	yaml := fmt.Sprintf(`
server:
  http_addr: 127.0.0.1:0
  grpc_addr: 127.0.0.1:0
  admin_addr: 127.0.0.1:0
  max_body_bytes: 1048576
  shutdown_timeout: 5s
auth:
  mode: api_key
  api_keys:
    - {name: e2e, key: %q, tenant: e2e}
providers:
  - {name: mock, type: mock, models: [echo, tools, embed]}
  - {name: up, type: openai, base_url: %q, api_key: %q, retry: {initial_backoff: 1ms, max_backoff: 2ms, retry_after_cap: 5ms}}
aliases:
  chat: up/gpt-ok
%s`, clientKey, up.URL+"/v1", upstreamKey, extra)
	return &gateway{Instance: startYAML(t, yaml, opts...), up: up}
}

// startYAML starts Switchyard with the YAML config yaml (no environment) and shuts it down when
// t ends.
func startYAML(t *testing.T, yaml string, opts ...app.Option) *app.Instance {
	t.Helper()
	cfg, err := app.ParseConfig([]byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return startConfig(t, cfg, opts...)
}

// startConfig validates cfg, starts Switchyard with it (default SQLite files in a temp dir) and
// shuts it down when t ends.
func startConfig(t *testing.T, cfg *app.Config, opts ...app.Option) *app.Instance {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	cfg.SetDataDir(t.TempDir()) // audit is on, as in production, with its SQLite file in the test's dir
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	inst, err := app.Start(t.Context(), cfg, append([]app.Option{app.WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := inst.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return inst
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
