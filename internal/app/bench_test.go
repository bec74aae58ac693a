package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchKey is the API key of BenchmarkChain's full chain.
const benchKey = "sk-bench-0123456789abcdef"

// BenchmarkChain measures one non-streaming REST chat request through a whole instance (mock
// provider, one keep-alive client, requests one after another) with the request chain bare
// ("none": auth none, no limits, audit off) and "full": API-key auth, limits on the memory
// backend with limits no request reaches, and the audit log on SQLite. "auth", "limits" and
// "audit" turn on one of the three alone, to split the difference. bench/README.md records the
// figures and the ratios to "none".
func BenchmarkChain(b *testing.B) {
	const (
		auth   = "auth: {mode: api_key, api_keys: [{name: bench, key: %q, tenant: bench}]}\n"
		limits = "limits: {backend: memory, default: {rpm: 1000000000, tpm: 1000000000000, tpd: 1000000000000}}\n"
		audit  = "audit: {enabled: true, sink: sql, sql: {driver: sqlite, dsn: %q}}\n"
		off    = "auth: {mode: none}\n" // audit is on by default: each case says whether it wants it
	)
	auditOn := fmt.Sprintf(audit, filepath.Join(b.TempDir(), "audit.db"))
	authOn := fmt.Sprintf(auth, benchKey)
	for _, c := range []struct {
		name, yaml string
		anonymous  int // status of a request without the key: proves the chain is the one configured
	}{
		{"none", off + "audit: {enabled: false}\n", http.StatusOK},
		{"auth", authOn + "audit: {enabled: false}\n", http.StatusUnauthorized},
		{"limits", off + limits + "audit: {enabled: false}\n", http.StatusOK},
		{"audit", off + auditOn, http.StatusOK},
		{"full", authOn + limits + auditOn, http.StatusUnauthorized},
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
			cpu0 := processCPU(b)
			for range b.N {
				if err := do(); err != nil {
					b.Fatal(err)
				}
			}
			// The process's CPU time (client, instance and the audit writer's background work)
			// per request: steadier than ns/op on a shared machine, where wall time includes
			// waiting for a core.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
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

// processCPU is the user and system CPU time the process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
