package app

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/server/interceptor"
)

// defaultConfigYAML is used when no config file is given: the mock provider only, no auth, every
// listener on loopback.
//
//go:embed default.yaml
var defaultConfigYAML []byte

// Environment variables read by LoadConfig.
const (
	EnvConfig    = "SWITCHYARD_CONFIG"     // config file used when --config is not given
	EnvHTTPAddr  = "SWITCHYARD_HTTP_ADDR"  // overrides server.http_addr
	EnvGRPCAddr  = "SWITCHYARD_GRPC_ADDR"  // overrides server.grpc_addr
	EnvAdminAddr = "SWITCHYARD_ADMIN_ADDR" // overrides server.admin_addr
	EnvDataDir   = "SWITCHYARD_DATA_DIR"   // where default SQLite and jsonl files live (SetDataDir); default ./data
)

// Defaults applied to fields a config file leaves out.
const (
	DefaultHTTPAddr          = "127.0.0.1:8080"
	DefaultGRPCAddr          = "127.0.0.1:9090"
	DefaultAdminAddr         = "127.0.0.1:8081"
	DefaultMaxBodyBytes      = 32 << 20
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultBodyReadTimeout   = 30 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxConnections    = 4096
)

// Config is the whole configuration of one Switchyard process, as read from one YAML file.
type Config struct {
	Server    ServerConfig      `yaml:"server"`
	Log       LogConfig         `yaml:"log"`
	Auth      auth.Config       `yaml:"auth"`
	Providers []provider.Config `yaml:"providers"`
	// Aliases maps a model name clients may use to "provider/model": a route with one target,
	// its provider's retry: policy (default DESIGN.md's) and the default breaker policy.
	Aliases map[string]string `yaml:"aliases,omitempty"`
	// Routes are model names served by several targets with a strategy, retries, a circuit
	// breaker and fallbacks (docs/routing.md).
	Routes []router.RouteConfig `yaml:"routes,omitempty"`
	// Prices maps "provider/model" to its price per million tokens, for the cost strategy; a
	// route target's own prices override it.
	Prices map[string]router.PriceConfig `yaml:"prices,omitempty"`
	// Sessions configures server-side sessions (docs/sessions.md).
	Sessions SessionsConfig `yaml:"sessions"`
	// Keys configures managed API keys (KeyService; keys.go).
	Keys KeysConfig `yaml:"keys"`
	// Audit configures the audit log (docs/audit.md; audit.go).
	Audit AuditConfig `yaml:"audit"`
	// Limits configures rate limits and token quotas per tenant and API key (limits.go).
	Limits LimitsConfig `yaml:"limits"`
	// Runtime tunes the Go garbage collector for the serve command (runtime.go).
	Runtime RuntimeConfig `yaml:"runtime"`
}

// routerConfig is the routing part of c.
func (c *Config) routerConfig() router.Config {
	rc := router.Config{Routes: c.Routes, Aliases: c.Aliases, Prices: c.Prices}
	for _, p := range c.Providers {
		if p.Retry != nil {
			if rc.ProviderRetry == nil {
				rc.ProviderRetry = map[string]router.RetryConfig{}
			}
			// A conversion, not a copy field by field: it compiles only while the two types
			// have the same fields.
			rc.ProviderRetry[p.Name] = router.RetryConfig(*p.Retry)
		}
	}
	return rc
}

// ServerConfig configures the three listeners. Addresses are host:port; port 0 picks a free port
// (tests), an empty host listens on every interface.
type ServerConfig struct {
	HTTPAddr  string `yaml:"http_addr"`  // OpenAI-compatible REST
	GRPCAddr  string `yaml:"grpc_addr"`  // native gRPC
	AdminAddr string `yaml:"admin_addr"` // /metrics, /healthz, /readyz, /debug/pprof
	// MaxBodyBytes caps a REST request body; gRPC messages may be 1 MiB larger (protobuf overhead).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownTimeout bounds the whole graceful shutdown: draining REST (streams included), then gRPC.
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"` // keep-alive connections idle longer are closed
	// MaxInflightBodyBytes caps the bytes of REST request bodies being read or held by calls at
	// once; a request finding no room is answered 503 server_busy (docs/edge.md). Default: an
	// eighth of the cgroup memory limit (or of the RAM), within [64 MiB, 4 GiB], at least
	// max_body_bytes.
	MaxInflightBodyBytes int64 `yaml:"max_inflight_body_bytes"`
	// BodyReadTimeout bounds reading one REST request body; slower clients get 408 and are
	// disconnected. Default 30s.
	BodyReadTimeout time.Duration `yaml:"body_read_timeout"`
	// MaxHeaderBytes caps a REST or admin request's header block (431 above it). Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConnections caps the REST listener's open connections; further ones wait in the
	// kernel's accept queue until one closes. Default 4096.
	MaxConnections int `yaml:"max_connections"`
	// GatewayTransport is how the REST gateway reaches the gRPC services: "inproc" (default; an
	// in-process channel running the same interceptors, no sockets or serialization) or
	// "loopback" (a gRPC client connection to the process's own gRPC listener). Empty means
	// "inproc". See
	// bench/README.md for the measurements behind the default.
	GatewayTransport string `yaml:"gateway_transport"`
	// TLS turns on TLS (and optionally mTLS for gRPC callers) for the REST and gRPC listeners.
	TLS TLSConfig `yaml:"tls"`
	// H2C serves HTTP/2 without TLS (prior knowledge) on the REST listener next to HTTP/1.1 when
	// TLS is off (with TLS, HTTP/2 is negotiated by ALPN). Default true (docs/edge.md).
	H2C bool `yaml:"h2c"`
	// CompressStreams compresses REST server-sent event streams for clients that accept gzip or
	// zstd, flushing after each event. Default false: JSON answers of 1 KiB or more are compressed
	// either way; a compressor per open stream costs memory (docs/edge.md, "Compression").
	CompressStreams bool `yaml:"compress_streams"`

	// RequestLimits bound the shape of a request within MaxBodyBytes: messages, tools, content
	// parts, stop sequences, embedding inputs, rerank documents, tool-call argument bytes and JSON
	// schema depth.
	// A zero field means its default (filled in by ParseConfig), a negative one turns that
	// limit off (docs/limits.md).
	RequestLimits interceptor.RequestLimits `yaml:"request_limits"`
}

// Gateway transports (ServerConfig.GatewayTransport).
const (
	TransportInproc   = "inproc"
	TransportLoopback = "loopback"
)

// LogConfig configures the process logger.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or text
}

// LoadConfig reads the config file at path, or the embedded default config when path is empty,
// expands ${VAR} and ${VAR:-default} in its values with getenv, applies the SWITCHYARD_*_ADDR
// overrides and the defaults, and validates the result against the built-in provider types.
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	data := defaultConfigYAML
	name := "default config"
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		name = path
	}
	return loadConfig(data, name, getenv, newRegistry().Types())
}

// loadConfig is LoadConfig for the file contents data (named name in errors), validated against
// providerTypes.
func loadConfig(data []byte, name string, getenv func(string) string, providerTypes []string) (*Config, error) {
	cfg, err := ParseConfig(data, getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	for env, field := range map[string]*string{
		EnvHTTPAddr:  &cfg.Server.HTTPAddr,
		EnvGRPCAddr:  &cfg.Server.GRPCAddr,
		EnvAdminAddr: &cfg.Server.AdminAddr,
	} {
		if v := getenv(env); v != "" {
			*field = v
		}
	}
	if dir := getenv(EnvDataDir); dir != "" {
		cfg.SetDataDir(dir)
	}
	if err := cfg.validate(providerTypes); err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return cfg, nil
}

// DefaultConfig returns the embedded default config with defaults applied, ignoring the
// environment. Tests start from it and set the listener addresses to "127.0.0.1:0".
func DefaultConfig() *Config {
	cfg, err := ParseConfig(defaultConfigYAML, func(string) string { return "" })
	if err != nil {
		panic("app: embedded default config: " + err.Error())
	}
	return cfg
}

// ParseConfig decodes one YAML document strictly (unknown fields are errors), expanding ${VAR} and
// ${VAR:-default} in scalar values (never in keys) with getenv, and applies the defaults. It does
// not validate: call Validate.
//
// ${VAR} whose value is empty is an error, so a missing secret is caught at load; write
// ${VAR:-} to allow an empty value. A '$' not followed by '{' is kept as is; "$${" yields a
// literal "${".
func ParseConfig(data []byte, getenv func(string) string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if doc.Kind == 0 {
		return nil, errors.New("parse: empty document")
	}
	if err := checkKnownFields(data); err != nil {
		return nil, err
	}
	var missing []string
	expandNode(&doc, getenv, &missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment variables not set: %s (use ${NAME:-default} for optional values)",
			strings.Join(slices.Compact(slices.Sorted(slices.Values(missing))), ", "))
	}
	// Booleans defaulting to true are set before decoding: afterwards a zero bool cannot tell an
	// omitted field from an explicit false.
	cfg := Config{Server: ServerConfig{H2C: true}, Audit: AuditConfig{Enabled: true}}
	if err := doc.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	cfg.applyDefaults()
	return &cfg, nil
}

// checkKnownFields reports fields of data that Config does not have, with their line numbers.
// Node.Decode has no strict mode, so a strict Decoder runs over the unexpanded text; its type
// errors (a "${LIMIT}" where a number belongs) are not errors yet and are ignored here.
func checkKnownFields(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var probe Config
	var te *yaml.TypeError
	if err := dec.Decode(&probe); !errors.As(err, &te) {
		return nil // syntax errors were reported by the first parse
	}
	var unknown []string
	for _, msg := range te.Errors {
		if strings.Contains(msg, "not found in type") {
			unknown = append(unknown, msg)
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown fields: %s", strings.Join(unknown, "; "))
	}
	return nil
}

// envRef matches $${...} (an escaped literal) and ${NAME} / ${NAME:-default}.
var envRef = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandNode expands env references in the scalar values below n, recording unset names.
func expandNode(n *yaml.Node, getenv func(string) string, missing *[]string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			expandNode(c, getenv, missing)
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 { // values only; keys stay literal
			expandNode(n.Content[i], getenv, missing)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = expand(n.Value, getenv, missing)
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
			// A plain scalar was typed as a string because of the "${"; let the expanded value
			// resolve afresh, so `max_body_bytes: ${LIMIT}` decodes as a number.
			n.Tag = ""
		}
	}
}

func expand(s string, getenv func(string) string, missing *[]string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$${" {
			return "${"
		}
		sub := envRef.FindStringSubmatch(m)
		name, hasDefault, def := sub[1], sub[2] != "", sub[3]
		if v := getenv(name); v != "" {
			return v
		}
		if hasDefault {
			return def
		}
		*missing = append(*missing, name)
		return ""
	})
}

func (c *Config) applyDefaults() {
	s := &c.Server
	setDefault(&s.HTTPAddr, DefaultHTTPAddr)
	setDefault(&s.GRPCAddr, DefaultGRPCAddr)
	setDefault(&s.AdminAddr, DefaultAdminAddr)
	setDefault(&s.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&s.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&s.IdleTimeout, DefaultIdleTimeout)
	setDefault(&s.BodyReadTimeout, DefaultBodyReadTimeout)
	setDefault(&s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&s.MaxConnections, DefaultMaxConnections)
	setDefault(&s.MaxInflightBodyBytes, defaultBodyBudget(s.MaxBodyBytes)) // after MaxBodyBytes
	c.Runtime.applyDefaults()
	setDefault(&s.GatewayTransport, TransportInproc)
	s.RequestLimits = s.RequestLimits.WithDefaults()
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "json")
	setDefault(&c.Auth.Mode, auth.ModeNone)
	c.Sessions.applyDefaults()
	c.Limits.applyDefaults()
	c.Keys.applyDefaults()
	c.Audit.applyDefaults()
}

// SetDataDir makes every embedded SQLite database that would default to the working directory's
// data/ (the audit log, keys and session archives with no dsn and no data_dir), and the jsonl
// audit file and the audit spool left at their defaults, live in dir instead. Tests pass
// t.TempDir(), so that audit, on by default, writes no files into package directories.
func (c *Config) SetDataDir(dir string) {
	for _, db := range []*database.Config{&c.Audit.SQL, &c.Keys.SQL, &c.Sessions.SQL} {
		if (db.Driver == "" || db.Driver == database.SQLite) && db.DSN == "" && db.DataDir == "" {
			db.DataDir = dir
		}
	}
	if c.Audit.File == DefaultAuditFile {
		c.Audit.File = filepath.Join(dir, filepath.Base(DefaultAuditFile))
	}
	if c.Audit.Spool.Dir == DefaultAuditSpoolDir {
		c.Audit.Spool.Dir = filepath.Join(dir, filepath.Base(DefaultAuditSpoolDir))
	}
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}

// Validate checks the config against the built-in provider types. Errors name the offending
// field; all problems found are joined.
func (c *Config) Validate() error { return c.validate(newRegistry().Types()) }

func (c *Config) validate(providerTypes []string) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	s := c.Server
	addrs := []struct{ field, addr string }{
		{"server.http_addr", s.HTTPAddr},
		{"server.grpc_addr", s.GRPCAddr},
		{"server.admin_addr", s.AdminAddr},
	}
	seen := map[string]string{}
	for _, a := range addrs {
		if err := checkListenAddr(a.addr); err != nil {
			add("%s: %w", a.field, err)
			continue
		}
		if _, port, _ := net.SplitHostPort(a.addr); port != "0" {
			if prev, dup := seen[a.addr]; dup {
				add("%s: %q is also %s", a.field, a.addr, prev)
			}
			seen[a.addr] = a.field
		}
	}
	if t := s.GatewayTransport; t != "" && t != TransportInproc && t != TransportLoopback {
		add("server.gateway_transport: %q is not %q or %q", t, TransportInproc, TransportLoopback)
	}
	if s.MaxBodyBytes <= 0 {
		add("server.max_body_bytes: must be positive, got %d", s.MaxBodyBytes)
	}
	if s.MaxInflightBodyBytes < s.MaxBodyBytes {
		add("server.max_inflight_body_bytes: %d is less than server.max_body_bytes (%d): the largest body could never be read",
			s.MaxInflightBodyBytes, s.MaxBodyBytes)
	}
	if s.MaxHeaderBytes <= 0 {
		add("server.max_header_bytes: must be positive, got %d", s.MaxHeaderBytes)
	}
	if s.MaxConnections <= 0 {
		add("server.max_connections: must be positive, got %d", s.MaxConnections)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"server.shutdown_timeout", s.ShutdownTimeout},
		{"server.read_header_timeout", s.ReadHeaderTimeout},
		{"server.idle_timeout", s.IdleTimeout},
		{"server.body_read_timeout", s.BodyReadTimeout},
	} {
		if d.v <= 0 {
			add("%s: must be positive, got %v", d.field, d.v)
		}
	}

	c.Runtime.validate(add)

	if _, err := parseLevel(c.Log.Level); err != nil {
		add("log.level: %w", err)
	}
	if c.Log.Format != "json" && c.Log.Format != "text" {
		add("log.format: %q is not json or text", c.Log.Format)
	}

	if _, err := auth.New(c.Auth); err != nil {
		add("auth: %w", err)
	}
	c.validateTLS(add)
	if c.Auth.Mode == "" || c.Auth.Mode == auth.ModeNone {
		for _, a := range addrs {
			if checkListenAddr(a.addr) == nil && !isLoopback(a.addr) {
				add("auth.mode is %q but %s %q is not a loopback address: anyone who can reach it could use "+
					"your provider keys; set auth.mode: api_key (with auth.api_keys), or listen on 127.0.0.1",
					auth.ModeNone, a.field, a.addr)
			}
		}
	}

	if len(c.Providers) == 0 {
		add("providers: at least one provider is required")
	}
	c.validateVariant(add)          // what this build (edge) leaves out: variant.go
	models := map[string][]string{} // provider name -> declared models
	for i, p := range c.Providers {
		where := fmt.Sprintf("providers[%d]", i)
		if p.Name != "" {
			where += " (" + p.Name + ")"
		}
		switch {
		case p.Name == "":
			add("%s: name is required", where)
		case strings.ContainsAny(p.Name, "/ "):
			add("%s: name must not contain '/' or spaces", where)
		default:
			if _, dup := models[p.Name]; dup {
				add("%s: duplicate provider name", where)
			}
			models[p.Name] = p.Models
		}
		if !slices.Contains(providerTypes, p.Type) && !slices.Contains(leftOut.ProviderTypes, p.Type) { // left out: validateVariant
			add("%s: unknown type %q (known: %s)", where, p.Type, strings.Join(providerTypes, ", "))
		}
		if p.Timeout < 0 {
			add("%s: timeout must not be negative", where)
		}
		if err := provider.ValidateTemperatureMapping(p.TemperatureMapping); err != nil {
			add("%s: %w", where, err)
		}
		if err := provider.ValidateTransport(p); err != nil {
			add("%s: %w", where, err)
		}
		if p.Batching != nil {
			if err := p.Batching.Validate(); err != nil {
				add("%s: batching: %w", where, err)
			}
			if !slices.Contains(batchingTypes, p.Type) {
				add("%s: batching: type %q serves no embeddings (batching applies to %s)", where, p.Type, strings.Join(batchingTypes, ", "))
			}
		}
	}

	if err := c.routerConfig().Validate(models); err != nil {
		errs = append(errs, err)
	}
	c.Sessions.validate(add)
	c.Limits.validate(add)
	c.Keys.validate(add)
	c.Audit.validate(add)
	return errors.Join(errs...)
}

// checkListenAddr accepts host:port with a numeric port (0 allowed) and any host.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}

// isLoopback reports whether the listen address binds loopback only: 127.0.0.0/8, ::1 or
// "localhost". An empty host or an unspecified address (0.0.0.0, ::) binds every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}

// secretKeys are mapping keys whose values Redacted hides, wherever they appear.
var secretKeys = []string{"api_key", "key", "password", "secret", "hmac_secret", "token", "dsn", // a DSN may hold a password
	"secret_access_key", "session_token"} // AWS credentials in a bedrock provider's options

// Redacted returns the effective config as YAML with secrets replaced by "REDACTED": every
// api_key, key, password, secret, token, secret_access_key and session_token value and every
// header value.
func (c *Config) Redacted() ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	redact(&n, false)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// redact hides secret scalars below n; all is true below a "headers" key.
func redact(n *yaml.Node, all bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if all && n.Value != "" {
			n.SetString("REDACTED")
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i].Value, n.Content[i+1]
			switch {
			case k == "headers":
				redact(v, true)
			case slices.Contains(secretKeys, k):
				redact(v, true)
			default:
				redact(v, all)
			}
		}
	default:
		for _, c := range n.Content {
			redact(c, all)
		}
	}
}
