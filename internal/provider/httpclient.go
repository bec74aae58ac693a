package provider

import (
	"crypto/tls"
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

func newTransport(cfg Config) *http.Transport {
	idle := cfg.MaxIdleConns
	if idle <= 0 {
		idle = defaultMaxIdleConns
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: keepAlive}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          idle,
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   tlsHandshakeTimeout,
		ResponseHeaderTimeout: responseHeaderTimeout,
		ExpectContinueTimeout: expectContinueTimeout,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
}
