package provider

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Upstream transport limits. None of them bounds a whole call: a streamed answer may last minutes,
// and per-call limits come from the request's context (see Config.Timeout).
const (
	defaultMaxIdleConns   = 256
	dialTimeout           = 10 * time.Second
	keepAlive             = 30 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	idleConnTimeout       = 90 * time.Second
	expectContinueTimeout = time.Second
	// responseHeaderTimeout is a backstop for a wedged upstream when the caller set no deadline.
	// It is generous because a blocking chat completion sends its headers only once the whole
	// answer is generated.
	responseHeaderTimeout = 10 * time.Minute
)

// NewHTTPClient returns a client for calling one upstream: pooled keep-alive connections
// (cfg.MaxIdleConns per host, 256 by default), HTTP/2 when the server offers it, TLS 1.2 or newer,
// and OpenTelemetry instrumentation so each upstream call is a child span of the caller's trace
// (context propagated with the global propagator). The client has no overall Timeout, which would
// cut long streams; adapters bound each call through its context instead. Safe for concurrent use.
func NewHTTPClient(cfg Config) *http.Client {
	return &http.Client{Transport: traced(newTransport(cfg))}
}

// HTTP/2 modes (Config.HTTP2).
const (
	HTTP2Auto = "auto"
	HTTP2Off  = "off"
	HTTP2H2C  = "h2c"
)

// ValidateTransport checks cfg's connection pool and HTTP/2 settings.
func ValidateTransport(cfg Config) error {
	var errs []error
	if cfg.MaxIdleConns < 0 {
		errs = append(errs, errors.New("max_idle_conns must not be negative"))
	}
	if cfg.MaxConnsPerHost < 0 {
		errs = append(errs, errors.New("max_conns_per_host must not be negative"))
	}
	if cfg.IdleConnTimeout < 0 {
		errs = append(errs, errors.New("idle_conn_timeout must not be negative"))
	}
	switch cfg.HTTP2 {
	case "", HTTP2Auto, HTTP2Off, HTTP2H2C:
	default:
		errs = append(errs, fmt.Errorf("http2: %q is not %s, %s or %s", cfg.HTTP2, HTTP2Auto, HTTP2Off, HTTP2H2C))
	}
	return errors.Join(errs...)
}

func newTransport(cfg Config) *http.Transport {
	idle := cfg.MaxIdleConns
	if idle <= 0 {
		idle = defaultMaxIdleConns
	}
	idleTimeout := cfg.IdleConnTimeout
	if idleTimeout <= 0 {
		idleTimeout = idleConnTimeout
	}
	var protocols http.Protocols
	switch cfg.HTTP2 {
	case HTTP2Off:
		protocols.SetHTTP1(true)
	case HTTP2H2C:
		protocols.SetHTTP2(true)
		protocols.SetUnencryptedHTTP2(true) // without HTTP1: http:// URLs speak HTTP/2 from the first byte
	default:
		protocols.SetHTTP1(true)
		protocols.SetHTTP2(true) // by ALPN over TLS
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     protocols.HTTP2(),
		Protocols:             &protocols,
		MaxIdleConns:          idle,
		MaxIdleConnsPerHost:   idle,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       idleTimeout,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}
