package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/internal/audit"
)

func TestAuditConfig(t *testing.T) {
	const key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" // 32 zero bytes
	cases := []struct {
		name, yaml, wantErr string // wantErr "" means valid
	}{
		{"default (on)", "", ""},
		{"off", "audit: {enabled: false}\n", ""},
		{"sql default", "audit: {enabled: true}\n", ""},
		{"postgres", "audit: {enabled: true, sql: {driver: postgres, dsn: 'postgres://x/y'}}\n", ""},
		{"jsonl", "audit: {enabled: true, sink: jsonl, file: /tmp/a.jsonl}\n", ""},
		{"bodies", "audit: {enabled: true, bodies: {enabled: true, redact_paths: [request.messages], redact_patterns: ['sk-\\w+'], encryption: {keys: [{id: k, key: " + key + ", primary: true}]}}}\n", ""},
		{"unknown sink", "audit: {enabled: true, sink: kafka}\n", `audit.sink: unknown sink "kafka"`},
		{"postgres without dsn", "audit: {enabled: true, sql: {driver: postgres}}\n", "audit.sql.dsn"},
		{"unknown driver", "audit: {enabled: true, sql: {driver: oracle}}\n", "audit.sql.driver"},
		{"short retention", "audit: {enabled: true, retention: 1h}\n", "audit.retention"},
		{"negative prune interval", "audit: {enabled: true, prune_interval: -1s}\n", "audit.prune_interval"},
		{"bad pattern", "audit: {enabled: true, bodies: {redact_patterns: ['(']}}\n", "audit.bodies"},
		{"bad key", "audit: {enabled: true, bodies: {encryption: {keys: [{id: k, key: AAAA, primary: true}]}}}\n", "audit.bodies.encryption"},
		{"unknown field", "audit: {enabeld: true}\n", "enabeld"},
		{"spool", "audit: {spool: {dir: /tmp/s, max_bytes: 1048576, fsync: always}, required_tenants: [acme, '*'], on_spool_full: fail_open}\n", ""},
		{"no spool", "audit: {spool: {max_bytes: -1}}\n", ""},
		{"bad spool size", "audit: {spool: {max_bytes: -2}}\n", "audit.spool.max_bytes"},
		{"bad fsync", "audit: {spool: {fsync: sometimes}}\n", "audit.spool.fsync"},
		{"bad policy", "audit: {on_spool_full: fail_maybe}\n", "audit.on_spool_full"},
		{"reserved required tenant", "audit: {required_tenants: [_unauthenticated]}\n", "audit.required_tenants"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(base+c.yaml), env(nil))
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("error %v; want valid", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("error %v; want one containing %q", err, c.wantErr)
			}
		})
	}
	cfg, err := ParseConfig([]byte(base+"audit: {enabled: true}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Audit; a.Sink != AuditSinkSQL || a.Retention != audit.DefaultRetention || a.PruneInterval != DefaultAuditPruneInterval ||
		a.BufferSize != audit.DefaultBufferSize || a.Bodies.Enabled {
		t.Errorf("defaults = %+v", a)
	}
	if a, sp := cfg.Audit, cfg.Audit.Spool; sp.Dir != DefaultAuditSpoolDir || sp.MaxBytes != audit.DefaultSpoolMaxBytes || sp.Fsync != audit.FsyncInterval ||
		sp.FsyncInterval != audit.DefaultSpoolFsyncInterval || a.OnSpoolFull != audit.FailClosed || len(a.RequiredTenants) != 0 {
		t.Errorf("spool defaults = %+v, on_spool_full %q, required %v", sp, a.OnSpoolFull, a.RequiredTenants)
	}
}

// TestAuditOnByDefault: the audit log is on unless turned off, on SQLite in data/; SetDataDir
// moves the default files, and only those, into a directory.
func TestAuditOnByDefault(t *testing.T) {
	cases := []struct {
		name, yaml  string
		wantEnabled bool
		wantDataDir string // after SetDataDir("/tmp/t")
		wantFile    string
	}{
		{"embedded default", "", true, "/tmp/t", ""},
		{"omitted", base, true, "/tmp/t", ""},
		{"section without enabled", base + "audit: {retention: 48h}\n", true, "/tmp/t", ""},
		{"empty section", base + "audit:\n", true, "/tmp/t", ""},
		{"off", base + "audit: {enabled: false}\n", false, "/tmp/t", ""},
		{"own data dir", base + "audit: {sql: {data_dir: /var/sy}}\n", true, "/var/sy", ""},
		{"own file", base + "audit: {sql: {dsn: /var/a.db}}\n", true, "", ""},
		{"jsonl default file", base + "audit: {sink: jsonl}\n", true, "/tmp/t", "/tmp/t/audit.jsonl"},
		{"jsonl own file", base + "audit: {sink: jsonl, file: /var/a.jsonl}\n", true, "/tmp/t", "/var/a.jsonl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cfg *Config
			if c.yaml == "" {
				cfg = DefaultConfig()
			} else {
				var err error
				if cfg, err = ParseConfig([]byte(c.yaml), env(nil)); err != nil {
					t.Fatal(err)
				}
			}
			if cfg.Audit.Enabled != c.wantEnabled {
				t.Fatalf("enabled %v, want %v", cfg.Audit.Enabled, c.wantEnabled)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			cfg.SetDataDir("/tmp/t")
			if cfg.Audit.SQL.DataDir != c.wantDataDir || (c.wantFile != "" && cfg.Audit.File != c.wantFile) {
				t.Errorf("after SetDataDir: data dir %q file %q; want %q %q", cfg.Audit.SQL.DataDir, cfg.Audit.File, c.wantDataDir, c.wantFile)
			}
			if c.wantEnabled && cfg.Audit.Spool.Dir != "/tmp/t/audit-spool" {
				t.Errorf("after SetDataDir: spool dir %q, want /tmp/t/audit-spool", cfg.Audit.Spool.Dir)
			}
		})
	}
}

// TestAuditJSONL runs the gateway with the JSON-lines sink: every request is a line, the chain
// verifies with `switchyard audit verify`, and AuditService is not served.
func TestAuditJSONL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := testConfig()
	cfg.Audit = AuditConfig{Enabled: true, Sink: AuditSinkJSONL, File: file}
	cfg.Audit.applyDefaults()
	cfg.Audit.Spool.Dir = filepath.Join(t.TempDir(), "spool")
	inst, err := Start(context.Background(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	const n = 7
	for i := range n {
		if code, body, err := chat(http.DefaultClient, inst.HTTPAddr(), "mock/echo", nil); err != nil || code != 200 {
			t.Fatalf("chat %d: %d %s %v", i, code, body, err)
		}
	}
	resp, err := http.Get("http://" + inst.HTTPAddr() + "/admin/v1/audit/records")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound { // UNIMPLEMENTED: the service is not registered
		t.Errorf("AuditService with the jsonl sink: %d, want 404", resp.StatusCode)
	}
	if err := inst.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The chats; the call of an unregistered service never reaches the interceptors.
	if lines := bytes.Count(data, []byte("\n")); lines != n {
		t.Errorf("%d lines, want %d", lines, n)
	}
	cfgFile := filepath.Join(t.TempDir(), "c.yaml")
	yaml := fmt.Sprintf("%saudit: {enabled: true, sink: jsonl, file: %q}\n", base, file)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"audit", "verify", "--config", cfgFile}, env(nil), &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "OK") {
		t.Fatalf("audit verify = %v, %q", err, out.String())
	}
	if err := os.WriteFile(file, bytes.Replace(data, []byte(`"seq":3,`), []byte(`"seq":33,`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Run(context.Background(), []string{"audit", "verify", "--config", cfgFile}, env(nil), &out, io.Discard); err == nil || !strings.Contains(out.String(), `record 33: sequence gap`) {
		t.Fatalf("audit verify of an edited file = %v, %q", err, out.String())
	}
	if err := Run(context.Background(), []string{"audit", "check"}, env(nil), io.Discard, io.Discard); err == nil {
		t.Error(`"audit check" accepted`)
	}
}

// TestDataDirFromEnv: SWITCHYARD_DATA_DIR moves the default SQLite files (the container image
// points it at its /data volume); an explicit dsn stays.
func TestDataDirFromEnv(t *testing.T) {
	cfg, err := LoadConfig("", env(map[string]string{EnvDataDir: "/data"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Audit.SQL.DataDir; got != "/data" {
		t.Errorf("audit data dir = %q, want /data", got)
	}
	f := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(f, []byte(base+"audit: {sql: {dsn: /var/a.db}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg, err = LoadConfig(f, env(map[string]string{EnvDataDir: "/data"})); err != nil {
		t.Fatal(err)
	}
	if cfg.Audit.SQL.DSN != "/var/a.db" || cfg.Audit.SQL.DataDir != "" {
		t.Errorf("audit sql = %+v, want the explicit dsn untouched", cfg.Audit.SQL)
	}
}
