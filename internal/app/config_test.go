package app

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/batch"
	"github.com/switchyard/switchyard/server/interceptor"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// base is a minimal valid config; cases append or replace parts of it.
const base = `
providers:
  - name: mock
    type: mock
    models: [echo]
`

func TestParseConfigExpansion(t *testing.T) {
	vars := map[string]string{
		"KEY":    "sk-123",
		"LIMIT":  "1048576",
		"TRICKY": "a: b # c",
		"NUM":    "0123",
	}
	cases := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"plain reference", base + "    api_key: ${KEY}\n", func(t *testing.T, c *Config) {
			want(t, "api_key", c.Providers[0].APIKey, "sk-123")
		}},
		{"default when unset", base + "    base_url: ${NOPE:-http://x/v1}\n", func(t *testing.T, c *Config) {
			want(t, "base_url", c.Providers[0].BaseURL, "http://x/v1")
		}},
		{"default ignored when set", base + "    api_key: ${KEY:-fallback}\n", func(t *testing.T, c *Config) {
			want(t, "api_key", c.Providers[0].APIKey, "sk-123")
		}},
		{"empty default", base + "    api_key: ${NOPE:-}\n", func(t *testing.T, c *Config) {
			want(t, "api_key", c.Providers[0].APIKey, "")
		}},
		{"embedded in text", base + "    base_url: https://${NOPE:-host}:8443/${KEY}\n", func(t *testing.T, c *Config) {
			want(t, "base_url", c.Providers[0].BaseURL, "https://host:8443/sk-123")
		}},
		{"literal dollars survive", base + "    headers:\n      X-A: pa$word\n      X-B: \"$KEY\"\n      X-C: $${KEY}\n      X-D: \"$\"\n", func(t *testing.T, c *Config) {
			h := c.Providers[0].Headers
			want(t, "X-A", h["X-A"], "pa$word")
			want(t, "X-B", h["X-B"], "$KEY")
			want(t, "X-C", h["X-C"], "${KEY}")
			want(t, "X-D", h["X-D"], "$")
		}},
		{"value with YAML syntax stays one string", base + "    api_key: ${TRICKY}\n", func(t *testing.T, c *Config) {
			want(t, "api_key", c.Providers[0].APIKey, "a: b # c")
		}},
		{"number from env", base + "server:\n  max_body_bytes: ${LIMIT}\n", func(t *testing.T, c *Config) {
			if c.Server.MaxBodyBytes != 1<<20 {
				t.Errorf("max_body_bytes = %d, want %d", c.Server.MaxBodyBytes, 1<<20)
			}
		}},
		{"request limits: set, off and defaulted", base + "server:\n  request_limits: {max_messages: 100, max_tools: -1}\n", func(t *testing.T, c *Config) {
			l := c.Server.RequestLimits
			if l.MaxMessages != 100 || l.MaxTools != -1 || l.MaxStop != interceptor.DefaultMaxStop ||
				l.MaxSchemaDepth != interceptor.DefaultMaxSchemaDepth {
				t.Errorf("request_limits = %+v; want max_messages 100, max_tools -1 and the other defaults", l)
			}
		}},
		{"numeric-looking string keeps its digits", base + "    api_key: ${NUM}\n", func(t *testing.T, c *Config) {
			want(t, "api_key", c.Providers[0].APIKey, "0123")
		}},
		{"keys are not expanded", base + "aliases: {\"${KEY}\": mock/echo}\n", func(t *testing.T, c *Config) {
			if c.Aliases["${KEY}"] != "mock/echo" {
				t.Errorf("aliases = %v, want the literal key ${KEY}", c.Aliases)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml), env(vars))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func want(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name, yaml, wantErr string
	}{
		{"unset variables are listed", base + "    api_key: ${B_KEY}\n    base_url: ${A_URL}/v1\n", "A_URL, B_KEY"},
		{"unknown field", base + "server: {http_adr: 127.0.0.1:1}\n", "line 6: field http_adr not found"},
		{"unknown provider field", base + "    modles: [x]\n", "field modles not found"},
		{"bad duration", base + "server: {shutdown_timeout: soon}\n", "line 6: cannot unmarshal !!str `soon` into time.Duration"},
		{"line numbers are the file's", "\n\n# comment\n" + base + "\n\nserver:\n  idle_timeout: [1]\n", "line 12: cannot unmarshal !!seq"},
		{"not YAML", "server: [\n", "parse"},
		{"empty", "", "empty document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), env(nil))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c, err := ParseConfig([]byte(base), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if s.HTTPAddr != "127.0.0.1:8080" || s.GRPCAddr != "127.0.0.1:9090" || s.AdminAddr != "127.0.0.1:8081" {
		t.Errorf("addresses = %s %s %s, want the loopback defaults", s.HTTPAddr, s.GRPCAddr, s.AdminAddr)
	}
	if s.MaxBodyBytes != 32<<20 || s.ShutdownTimeout != 30*time.Second || s.ReadHeaderTimeout != 10*time.Second || s.IdleTimeout <= 0 {
		t.Errorf("server = %+v, want the documented defaults", s)
	}
	if s.BodyReadTimeout != 30*time.Second || s.MaxHeaderBytes != 64<<10 || s.MaxConnections != 4096 ||
		s.MaxInflightBodyBytes < 64<<20 || s.MaxInflightBodyBytes > 4<<30 {
		t.Errorf("edge settings = %+v, want the documented defaults", s)
	}
	if !s.H2C || s.CompressStreams {
		t.Errorf("h2c %v, compress_streams %v; want true, false", s.H2C, s.CompressStreams)
	}
	if c.Log.Level != "info" || c.Log.Format != "json" || c.Auth.Mode != "none" {
		t.Errorf("log, auth = %+v, %+v; want info/json and none", c.Log, c.Auth)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Providers) != 1 || c.Providers[0].Type != "mock" || strings.Join(c.Providers[0].Models, ",") != "echo,tools,embed,rerank" {
		t.Errorf("providers = %+v, want the mock with echo, tools, embed, rerank", c.Providers)
	}
	if _, err := buildRouter(newRegistry(), c); err != nil {
		t.Errorf("default config does not build: %v", err)
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name, yaml, wantErr string // wantErr "" means valid
	}{
		{"valid", base, ""},
		{"unknown provider type", base + "  - {name: x, type: carrier-pigeon}\n", `unknown type "carrier-pigeon"`},
		{"duplicate provider", base + "  - {name: mock, type: mock}\n", "duplicate provider name"},
		{"provider without name", base + "  - {type: mock}\n", "name is required"},
		{"slash in provider name", base + "  - {name: a/b, type: mock}\n", "must not contain '/'"},
		{"no providers", "log: {level: info}\n", "at least one provider"},
		{"alias to unknown model", base + "aliases: {fast: mock/turbo}\n", `does not list model "turbo"`},
		{"alias to unknown provider", base + "aliases: {fast: nope/echo}\n", `unknown provider "nope"`},
		{"alias without provider", base + "aliases: {fast: echo}\n", "not provider/model"},
		{"alias with slash", base + "aliases: {a/b: mock/echo}\n", "must not contain '/'"},
		{"alias to provider passing any model", "providers: [{name: any, type: mock}]\naliases: {fast: any/whatever}\n", ""},
		{"bad address", base + "server: {http_addr: localhost}\n", "server.http_addr"},
		{"bad port", base + "server: {grpc_addr: '127.0.0.1:99999'}\n", "port must be a number"},
		{"same address twice", base + "server: {http_addr: '127.0.0.1:7000', admin_addr: '127.0.0.1:7000'}\n", "is also server.http_addr"},
		{"ephemeral ports may repeat", base + "server: {http_addr: '127.0.0.1:0', grpc_addr: '127.0.0.1:0', admin_addr: '127.0.0.1:0'}\n", ""},
		{"bad log level", base + "log: {level: loud}\n", "log.level"},
		{"bad log format", base + "log: {format: xml}\n", "log.format"},
		{"negative body limit", base + "server: {max_body_bytes: -1}\n", "max_body_bytes"},
		{"body budget below the body limit", base + "server: {max_body_bytes: 2000000, max_inflight_body_bytes: 1000000}\n", "max_inflight_body_bytes"},
		{"body budget fits the body limit", base + "server: {max_body_bytes: 1000000, max_inflight_body_bytes: 1000000}\n", ""},
		{"negative body deadline", base + "server: {body_read_timeout: -1s}\n", "server.body_read_timeout"},
		{"negative header cap", base + "server: {max_header_bytes: -1}\n", "server.max_header_bytes"},
		{"negative connection cap", base + "server: {max_connections: -1}\n", "server.max_connections"},
		{"batching with defaults", base + "  - {name: emb, type: openai, batching: {}}\n", ""},
		{"batching set", base + "  - {name: emb, type: openai, batching: {max_batch: 8, window: 2ms, max_inputs: 64, max_tokens: 4096}}\n", ""},
		{"batching of one", base + "  - {name: emb, type: openai, batching: {max_batch: 1}}\n", "batching: max_batch 1"},
		{"batching window too long", base + "  - {name: emb, type: openai, batching: {window: 1s}}\n", "batching: window 1s"},
		{"batching without embeddings", base + "  - {name: a, type: anthropic, api_key: k, batching: {}}\n", `type "anthropic" serves no embeddings`},
		{"h2c off, streams compressed", base + "server: {h2c: false, compress_streams: true}\n", ""},
		{"provider pool and HTTP/2", base + "  - {name: up, type: openai, base_url: 'http://x/v1', max_idle_conns: 8, max_conns_per_host: 16, idle_conn_timeout: 30s, http2: h2c}\n", ""},
		{"provider HTTP/2 unknown", base + "  - {name: up, type: openai, base_url: 'http://x/v1', http2: h3}\n", `providers[1] (up): http2: "h3" is not auto, off or h2c`},
		{"provider negative conns", base + "  - {name: up, type: openai, base_url: 'http://x/v1', max_conns_per_host: -1}\n", "max_conns_per_host must not be negative"},
		{"provider negative idle timeout", base + "  - {name: up, type: openai, base_url: 'http://x/v1', idle_conn_timeout: -1s}\n", "idle_conn_timeout must not be negative"},
		{"temperature mapping linear", base + "  - {name: a, type: anthropic, api_key: k, temperature_mapping: linear}\n", ""},
		{"temperature mapping clamp", base + "  - {name: a, type: anthropic, api_key: k, temperature_mapping: clamp}\n", ""},
		{"temperature mapping unknown", base + "  - {name: a, type: anthropic, api_key: k, temperature_mapping: log}\n", `providers[1] (a): temperature_mapping: "log" is not clamp or linear`},
		{"provider retry", base + "  - {name: up, type: openai, base_url: 'http://x/v1', retry: {max_retries: 0, initial_backoff: 100ms, multiplier: 3, max_backoff: 1s, retry_after_cap: 5s}}\n", ""},
		{"provider retry multiplier below 1", base + "  - {name: up, type: openai, base_url: 'http://x/v1', retry: {multiplier: 0.5}}\n", "providers (up).retry.multiplier: must be at least 1"},
		{"provider retry negative", base + "  - {name: up, type: openai, base_url: 'http://x/v1', retry: {max_retries: -1}}\n", "providers (up).retry.max_retries: must not be negative"},
		{"unknown auth mode", base + "auth: {mode: magic}\n", "auth"},
		{"api_key mode without keys", base + "auth: {mode: api_key}\n", "api_keys"},

		// Auth "none" only on loopback.
		{"none on all interfaces", base + "server: {http_addr: '0.0.0.0:8080'}\n", "set auth.mode: api_key"},
		{"none on empty host", base + "server: {grpc_addr: ':9090'}\n", "server.grpc_addr"},
		{"none on IPv6 any", base + "server: {admin_addr: '[::]:8081'}\n", "server.admin_addr"},
		{"none on a LAN address", base + "server: {http_addr: '192.168.1.10:8080'}\n", "not a loopback address"},
		{"none on localhost", base + "server: {http_addr: 'localhost:8080'}\n", ""},
		{"none on 127.0.0.2", base + "server: {http_addr: '127.0.0.2:8080'}\n", ""},
		{"none on ::1", base + "server: {http_addr: '[::1]:8080'}\n", ""},
		{"api_key on all interfaces", base + "server: {http_addr: '0.0.0.0:8080', grpc_addr: ':9090'}\n" +
			"auth: {mode: api_key, api_keys: [{name: k, key: secret, tenant: t}]}\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadConfigEnvOverrides(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(base+"server: {http_addr: '127.0.0.1:1111'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(path, env(map[string]string{
		EnvHTTPAddr:  "127.0.0.1:2222",
		EnvAdminAddr: "localhost:3333",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want(t, "http_addr", c.Server.HTTPAddr, "127.0.0.1:2222")
	want(t, "grpc_addr", c.Server.GRPCAddr, DefaultGRPCAddr)
	want(t, "admin_addr", c.Server.AdminAddr, "localhost:3333")

	// The override is validated too: auth none on every interface is refused.
	_, err = LoadConfig(path, env(map[string]string{EnvGRPCAddr: "0.0.0.0:9090"}))
	if err == nil || !strings.Contains(err.Error(), "auth.mode") {
		t.Fatalf("LoadConfig = %v, want the loopback rule", err)
	}

	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml"), env(nil)); err == nil {
		t.Fatal("LoadConfig of a missing file succeeded")
	}
}

// exampleEnv is what configs/switchyard.example.yaml needs.
var exampleEnv = map[string]string{
	"OPENAI_API_KEY":     "sk-openai-secret",
	"ANTHROPIC_API_KEY":  "sk-ant-secret",
	"GEMINI_API_KEY":     "AIza-gemini-secret",
	"DEEPSEEK_API_KEY":   "sk-deepseek-secret",
	"SWITCHYARD_API_KEY": "sy-client-secret",
}

func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig("../../configs/switchyard.example.yaml", env(exampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Mode != "api_key" {
		t.Errorf("auth.mode = %q, want api_key", c.Auth.Mode)
	}
	byName := map[string]string{}
	for _, p := range c.Providers {
		byName[p.Name] = p.BaseURL
	}
	for name, url := range map[string]string{
		"openai":    "https://api.openai.com/v1",
		"anthropic": "https://api.anthropic.com",
		"gemini":    "https://generativelanguage.googleapis.com/v1beta",
		"deepseek":  "https://api.deepseek.com/v1",
		"local":     "http://127.0.0.1:8000/v1",
		"mock":      "",
	} {
		if got, ok := byName[name]; !ok || got != url {
			t.Errorf("provider %s base_url = %q (present %v), want %q", name, got, ok, url)
		}
	}
	if _, err := buildRouter(newRegistry(), c); err != nil {
		t.Errorf("example config does not build: %v", err)
	}

	// Without its keys the example is refused, naming them.
	_, err = LoadConfig("../../configs/switchyard.example.yaml", env(nil))
	if err == nil || !strings.Contains(err.Error(), "ANTHROPIC_API_KEY, DEEPSEEK_API_KEY, GEMINI_API_KEY, OPENAI_API_KEY, SWITCHYARD_API_KEY") {
		t.Errorf("LoadConfig without env = %v, want the missing variables named", err)
	}
}

func TestRedacted(t *testing.T) {
	c, err := LoadConfig("../../configs/switchyard.example.yaml", env(exampleEnv))
	if err != nil {
		t.Fatal(err)
	}
	c.Providers[0].Headers = map[string]string{"X-Org": "org-secret"}
	c.Providers[1].Options = map[string]string{"secret_access_key": "aws-secret-key", "session_token": "aws-session-token", "region": "us-east-1"}
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"sk-openai-secret", "sk-ant-secret", "AIza-gemini-secret", "sk-deepseek-secret", "sy-client-secret", "org-secret", "aws-secret-key", "aws-session-token"} {
		if bytes.Contains(out, []byte(secret)) {
			t.Errorf("redacted config contains %q:\n%s", secret, out)
		}
	}
	for _, kept := range []string{"REDACTED", "https://api.openai.com/v1", "shutdown_timeout: 30s", "X-Org"} {
		if !bytes.Contains(out, []byte(kept)) {
			t.Errorf("redacted config lacks %q:\n%s", kept, out)
		}
	}
	// The printed config is itself a valid config.
	if _, err := ParseConfig(out, env(nil)); err != nil {
		t.Errorf("redacted config does not parse: %v", err)
	}
	if c.Providers[0].APIKey != "sk-openai-secret" {
		t.Error("Redacted modified the config")
	}
}

func TestRunCommands(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfgPath, []byte(base+"    api_key: ${KEY}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		args       []string
		env        map[string]string
		wantErr    string
		wantStdout []string
		notStdout  []string
	}{
		{name: "version", args: []string{"version"}, wantStdout: []string{"switchyard dev"}},
		{name: "help", args: []string{"help"}, wantStdout: []string{"switchyard serve"}},
		{name: "no command", args: nil, wantErr: "no command"},
		{name: "unknown command", args: []string{"fly"}, wantErr: `unknown command "fly"`},
		{name: "config without check", args: []string{"config"}, wantErr: "config check"},
		{name: "config check default", args: []string{"config", "check"}, wantStdout: []string{"type: mock", "127.0.0.1:8080"}},
		{
			name: "config check file", args: []string{"config", "check", "--config", cfgPath},
			env:        map[string]string{"KEY": "very-secret"},
			wantStdout: []string{"api_key: REDACTED"}, notStdout: []string{"very-secret"},
		},
		{
			name: "config check from SWITCHYARD_CONFIG", args: []string{"config", "check"},
			env:        map[string]string{EnvConfig: cfgPath, "KEY": "very-secret"},
			wantStdout: []string{"api_key: REDACTED"},
		},
		{name: "config check invalid", args: []string{"config", "check", "--config", cfgPath}, wantErr: "KEY"},
		{name: "bad flag", args: []string{"serve", "--confg", "x"}, wantErr: "flag provided but not defined"},
		{name: "serve with invalid config", args: []string{"serve", "-config", cfgPath}, wantErr: "KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := Run(context.Background(), tc.args, env(tc.env), &stdout, &stderr)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("Run = %v, want nil; stderr:\n%s", err, stderr.String())
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Run = %v, want an error containing %q", err, tc.wantErr)
			}
			for _, s := range tc.wantStdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tc.notStdout {
				if strings.Contains(stdout.String(), s) {
					t.Errorf("stdout contains %q:\n%s", s, stdout.String())
				}
			}
		})
	}
}

// TestBatchingTypes checks batchingTypes against the adapters: each listed type builds an
// llm.Embedder that the batching wrapper accepts, and each other type does not serve embeddings.
func TestBatchingTypes(t *testing.T) {
	reg := newRegistry()
	for _, typ := range reg.Types() {
		cfg := provider.Config{Name: "p", Type: typ, BaseURL: "http://127.0.0.1:1", APIKey: "k", Batching: &batch.Config{}}
		if typ == "kserve" || typ == "grpc" {
			cfg.BaseURL = "127.0.0.1:1"
		}
		if typ == "bedrock" { // AWS credentials, not an api_key; a region
			cfg.APIKey, cfg.Options = "", map[string]string{"region": "us-east-1"}
		}
		p, err := reg.New(cfg)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		_, isEmbedder := p.(llm.Embedder)
		if listed := slices.Contains(batchingTypes, typ); listed != isEmbedder {
			t.Errorf("type %s: in batchingTypes %v, serves embeddings %v", typ, listed, isEmbedder)
		}
		closeProviders([]llm.Provider{p}, nil)
	}

	c, err := ParseConfig([]byte(base+"  - {name: emb, type: mock, batching: {max_batch: 3}}\n"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	backends, built, err := buildBackends(reg, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The mock reranks too: batching wraps it and keeps its rerank.
	if !strings.HasPrefix(fmt.Sprintf("%T", backends["emb"].Provider), "*batch.") {
		t.Errorf("provider with batching is %T, want a batching provider", backends["emb"].Provider)
	}
	if _, ok := backends["emb"].Provider.(llm.Reranker); !ok {
		t.Errorf("batching hid the mock's rerank: %T", backends["emb"].Provider)
	}
	if strings.HasPrefix(fmt.Sprintf("%T", backends["mock"].Provider), "*batch.") {
		t.Error("provider without batching was wrapped")
	}
	closeProviders(fresh(built, nil), nil)
}
