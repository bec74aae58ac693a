package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// benchKey is the API key of BenchmarkChain's full chain.
const benchKey = "sk-bench-0123456789abcdef"

// BenchmarkChain measures one non-streaming REST chat request through a whole instance (mock
// provider, one keep-alive client, requests one after another) with the request chain bare
// (auth none, no limits, no audit) and full (API-key auth, limits on the memory backend with
// limits no request reaches, and the audit log on SQLite). bench/README.md records the figures
// and the ratio full/none.
func BenchmarkChain(b *testing.B) {
	for _, c := range []struct {
		name, yaml string
		anonymous  int // status of a request without the key: proves the chain is the one configured
	}{
		{"none", "auth: {mode: none}\n", http.StatusOK},
		{"full", fmt.Sprintf(`
auth:
  mode: api_key
  api_keys: [{name: bench, key: %q, tenant: bench}]
limits:
  backend: memory
  default: {rpm: 1000000000, tpm: 1000000000000, tpd: 1000000000000}
audit:
  enabled: true
  sink: sql
  sql: {driver: sqlite, dsn: %q}
`, benchKey, filepath.Join(b.TempDir(), "audit.db")), http.StatusUnauthorized},
	} {
		b.Run(c.name, func(b *testing.B) {
			addr := startBench(b, c.yaml)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			b.Cleanup(client.CloseIdleConnections)
			body := `{"model":"mock/echo","messages":[{"role":"user","content":"hi"}]}`
			send := func(key string) (int, error) {
				req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/chat/completions", strings.NewReader(body))
				if err != nil {
					return 0, err
				}
				req.Header.Set("Content-Type", "application/json")
				if key != "" {
					req.Header.Set("Authorization", "Bearer "+key)
				}
				resp, err := client.Do(req)
				if err != nil {
					return 0, err
				}
				defer resp.Body.Close()
				_, err = io.Copy(io.Discard, resp.Body)
				return resp.StatusCode, err
			}
			do := func() error {
				code, err := send(benchKey)
				if err == nil && code != http.StatusOK {
					err = fmt.Errorf("status %d", code)
				}
				return err
			}
			if code, err := send(""); err != nil || code != c.anonymous {
				b.Fatalf("request without a key: %d, %v; want %d", code, err, c.anonymous)
			}
			if err := do(); err != nil { // warm the connection and the instance
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := do(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// startBench starts an instance on loopback with the mock provider and the config section
// extra, and returns its HTTP address.
func startBench(b *testing.B, extra string) string {
	b.Helper()
	cfg, err := ParseConfig([]byte(`
server: {http_addr: 127.0.0.1:0, grpc_addr: 127.0.0.1:0, admin_addr: 127.0.0.1:0}
providers: [{name: mock, type: mock, models: [echo]}]
`+extra), func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	cfg.SetDataDir(b.TempDir())
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	inst, err := Start(context.Background(), cfg, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := inst.Shutdown(context.Background()); err != nil {
			b.Errorf("Shutdown: %v", err)
		}
	})
	return inst.HTTPAddr()
}
