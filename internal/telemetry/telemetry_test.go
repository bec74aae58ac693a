package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/telemetry"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoggerAddsTraceIDs(t *testing.T) {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	spanCtx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	cases := []struct {
		name      string
		ctx       context.Context
		wantTrace string
		wantSpan  string
	}{
		{"span in context", spanCtx, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"},
		{"no span", context.Background(), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := telemetry.NewLogger(&buf, slog.LevelInfo, "json").With("component", "test")
			log.InfoContext(tc.ctx, "hello", "k", "v")
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("log line %q is not JSON: %v", buf.String(), err)
			}
			if line["msg"] != "hello" || line["k"] != "v" || line["component"] != "test" {
				t.Errorf("line = %v, want msg, k and component", line)
			}
			gotTrace, _ := line["trace_id"].(string)
			gotSpan, _ := line["span_id"].(string)
			if gotTrace != tc.wantTrace || gotSpan != tc.wantSpan {
				t.Errorf("trace_id, span_id = %q, %q; want %q, %q", gotTrace, gotSpan, tc.wantTrace, tc.wantSpan)
			}
		})
	}
}

func TestLoggerLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	log := telemetry.NewLogger(&buf, slog.LevelWarn, "text")
	log.Info("dropped")
	log.Warn("kept")
	out := buf.String()
	if strings.Contains(out, "dropped") {
		t.Errorf("info line written at warn level: %q", out)
	}
	if !strings.Contains(out, "msg=kept") {
		t.Errorf("text output %q lacks msg=kept", out)
	}
}

func TestSetupWithoutEndpoint(t *testing.T) {
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	tel, err := telemetry.Setup(ctx, "switchyard-test", "v0", env(nil), telemetry.WithSpanExporter(spans), telemetry.WithoutGlobal())
	if err != nil {
		t.Fatal(err)
	}

	// A span whose context came in over the wire is continued (parent-based sampling) and exported.
	carrier := propagation.HeaderCarrier(http.Header{})
	carrier.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	remote := tel.Propagator().Extract(ctx, carrier)
	_, span := tel.TracerProvider().Tracer("test").Start(remote, "op")
	span.End()
	got := spans.GetSpans()
	if len(got) != 1 || got[0].SpanContext.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("spans = %+v, want one span in the incoming trace", got)
	}
	if got[0].Resource == nil || !strings.Contains(got[0].Resource.String(), "service.name=switchyard-test") {
		t.Errorf("resource = %v, want service.name", got[0].Resource)
	}

	counter, err := tel.MeterProvider().Meter("test").Int64Counter("switchyard_test_requests")
	if err != nil {
		t.Fatal(err)
	}
	counter.Add(ctx, 3)
	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"switchyard_test_requests_total", "go_goroutines"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s:\n%.2000s", want, body)
		}
	}

	if err := tel.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSetupSamplerArg(t *testing.T) {
	cases := []struct {
		arg     string
		wantErr bool
	}{
		{"0.25", false},
		{"1", false},
		{"1.5", true},
		{"half", true},
	}
	for _, tc := range cases {
		t.Run(tc.arg, func(t *testing.T) {
			tel, err := telemetry.Setup(context.Background(), "s", "v", env(map[string]string{"OTEL_TRACES_SAMPLER_ARG": tc.arg}), telemetry.WithoutGlobal())
			if (err != nil) != tc.wantErr {
				t.Fatalf("Setup err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil {
				_ = tel.Shutdown(context.Background())
			}
		})
	}
}

func TestSetupRejectsUnknownProtocol(t *testing.T) {
	_, err := telemetry.Setup(context.Background(), "s", "v", env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon",
	}), telemetry.WithoutGlobal())
	if err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("err = %v, want an unknown-protocol error", err)
	}
}
