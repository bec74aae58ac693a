package gateway

import (
	"net/http"
	"slices"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestSpanNames checks server spans are named by route, not by path (ids would explode the
// number of names) and not by the internal stream path. It replaces the global tracer provider,
// so it does not run in parallel.
func TestSpanNames(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	h := newHarness(t, Options{})
	do(t, "POST", h.url+"/v1/chat/completions", `{"model":"mock/echo","messages":[]}`)
	do(t, "POST", h.url+"/chat/completions", `{"model":"mock/echo","stream":true,"messages":[]}`)
	do(t, "GET", h.url+"/v1/models/mock/echo", "")
	do(t, "GET", h.url+"/v1/unknown/thing", "")

	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	want := []string{"POST /v1/chat/completions", "POST /v1/chat/completions", "GET /v1/models/{id}", http.MethodGet}
	if !slices.Equal(names, want) {
		t.Errorf("span names = %q, want %q", names, want)
	}
}
