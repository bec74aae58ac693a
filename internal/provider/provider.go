// Package provider builds llm.Provider values from configuration. The registry of provider types
// is built in one visible place (internal/app) and panics on duplicates, like database/sql.
package provider

import (
	"fmt"
	"sort"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/batch"
)

// Config configures one provider instance. Name is how model names refer to it ("openai" in
// "openai/gpt-4o"); Type selects the native protocol.
type Config struct {
	Name    string            `yaml:"name"`
	Type    string            `yaml:"type"`               // openai, mock, ...
	BaseURL string            `yaml:"base_url,omitempty"` // e.g. https://api.openai.com/v1
	APIKey  string            `yaml:"api_key,omitempty"`  // sent as the provider expects
	Models  []string          `yaml:"models,omitempty"`   // served models; empty means any model name is passed through
	Headers map[string]string `yaml:"headers,omitempty"`  // extra headers on every upstream request
	// Timeout bounds one upstream call without a deadline of its own (0: the request's deadline only).
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// The connection pool and protocol to an HTTP upstream (the gRPC adapters keep one HTTP/2
	// connection of their own and ignore them); see docs/providers.md, "Connections".
	//
	// MaxIdleConns bounds pooled keep-alive connections to the upstream (0: a default of 256).
	MaxIdleConns int `yaml:"max_idle_conns,omitempty"`
	// Batching, when set, merges short embedding requests to the same model into one upstream
	// call (internal/provider/batch; docs/providers.md, "Micro-batching"). Off when absent.
	Batching *batch.Config `yaml:"batching,omitempty"`
	// MaxConnsPerHost bounds all connections to the upstream, dialing, in use and idle; a request
	// finding none free waits for one (0: no bound, the default).
	MaxConnsPerHost int `yaml:"max_conns_per_host,omitempty"`
	// IdleConnTimeout closes a pooled connection idle this long (0: a default of 90s).
	IdleConnTimeout time.Duration `yaml:"idle_conn_timeout,omitempty"`
	// HTTP2 says how to speak HTTP/2 to the upstream: "auto" (the default: HTTP/2 when a TLS
	// upstream offers it by ALPN, else HTTP/1.1), "off" (HTTP/1.1 only) or "h2c" (HTTP/2 only:
	// without TLS by prior knowledge for http:// URLs, by ALPN for https:// ones).
	HTTP2 string `yaml:"http2,omitempty"`
	// Retry is the retry policy of this provider's pinned names ("name/model") and of the
	// aliases pointing at it (nil: DESIGN.md's default, 1s doubling, at most 3 retries). Routes
	// keep their own retry: block. The router validates and applies it (docs/routing.md).
	Retry *RetryConfig `yaml:"retry,omitempty"`
	// TemperatureMapping says how an OpenAI-range temperature (0–2) reaches an upstream whose
	// range is narrower (Anthropic's 0–1): "clamp" (the default: values above the native maximum
	// are cut to it, with a warning) or "linear" (t × native_max / 2, keeping the relative
	// position). Adapters whose range is OpenAI's send temperature unchanged either way.
	TemperatureMapping string `yaml:"temperature_mapping,omitempty"`
	// Options are settings specific to one provider type (api_version, num_ctx, ...). Each
	// adapter package documents its keys and validates them in New.
	Options map[string]string `yaml:"options,omitempty"`
}

// RetryConfig is the YAML shape of a provider's retry: block. It has router.RetryConfig's fields
// (internal/app converts one to the other, which keeps the two identical; this package may not
// import the router); zero fields take DESIGN.md's defaults.
type RetryConfig struct {
	MaxRetries     *int          `yaml:"max_retries,omitempty"`     // retries after the first attempt; default 3, 0 disables
	InitialBackoff time.Duration `yaml:"initial_backoff,omitempty"` // ceiling of the first backoff; default 1s
	Multiplier     float64       `yaml:"multiplier,omitempty"`      // ceiling growth per retry; default 2
	MaxBackoff     time.Duration `yaml:"max_backoff,omitempty"`     // largest ceiling; default 30s
	RetryAfterCap  time.Duration `yaml:"retry_after_cap,omitempty"` // largest Retry-After honoured; default 30s
}

// Factory builds a provider from its configuration.
type Factory func(cfg Config) (llm.Provider, error)

// Registry maps provider types to factories. It is filled at start-up and read-only afterwards,
// so it is safe for concurrent reads.
type Registry struct {
	factories map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{factories: map[string]Factory{}} }

// Register adds a provider type. It panics if typ is empty, f is nil, or typ is already registered.
func (r *Registry) Register(typ string, f Factory) {
	if typ == "" || f == nil {
		panic("provider: Register with empty type or nil factory")
	}
	if _, dup := r.factories[typ]; dup {
		panic("provider: Register called twice for type " + typ)
	}
	r.factories[typ] = f
}

// Types lists the registered types, sorted.
func (r *Registry) Types() []string {
	ts := make([]string, 0, len(r.factories))
	for t := range r.factories {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// New builds the provider cfg describes.
func (r *Registry) New(cfg Config) (llm.Provider, error) {
	f, ok := r.factories[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("provider %q: unknown type %q (known: %v)", cfg.Name, cfg.Type, r.Types())
	}
	p, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("provider %q: %w", cfg.Name, err)
	}
	return p, nil
}
