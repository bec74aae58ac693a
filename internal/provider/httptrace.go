package provider

import (
	"net/http"

	"github.com/switchyard/switchyard/internal/telemetry"
)

// traced wraps an upstream transport in OpenTelemetry instrumentation: each call is a client span
// (a child of the caller's), its trace context injected with the global propagator, and the
// http.client.* metrics (telemetry.NewHTTPTransport, a lean stand-in for otelhttp's transport).
func traced(rt http.RoundTripper) http.RoundTripper { return telemetry.NewHTTPTransport(rt) }
