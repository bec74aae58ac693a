// Package telemetry sets up OpenTelemetry tracing and metrics for the process and builds its
// loggers. It is a leaf: it imports nothing of the project's.
//
// Tracing: spans are always created (so trace ids reach the logs), and exported over OTLP only when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. Metrics: a Prometheus
// registry private to the Telemetry value, served by MetricsHandler.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry owns the process's tracer and meter providers. Its methods are safe for concurrent use.
type Telemetry struct {
	tp         *sdktrace.TracerProvider
	mp         *sdkmetric.MeterProvider
	propagator propagation.TextMapPropagator
	metrics    http.Handler
}

// Option adjusts Setup.
type Option func(*options)

type options struct {
	spanExporters []sdktrace.SpanExporter
	noGlobal      bool
}

// WithSpanExporter adds an exporter that receives every ended span synchronously, in addition to
// any OTLP exporter. Tests use it with tracetest.NewInMemoryExporter.
func WithSpanExporter(e sdktrace.SpanExporter) Option {
	return func(o *options) { o.spanExporters = append(o.spanExporters, e) }
}

// WithoutGlobal keeps Setup from installing its providers and propagator as the otel globals.
// Code that receives the providers explicitly (TracerProvider, MeterProvider) is unaffected.
func WithoutGlobal() Option {
	return func(o *options) { o.noGlobal = true }
}

// Setup builds the tracer and meter providers for serviceName at version and, unless WithoutGlobal
// is given, installs them and a TraceContext+Baggage propagator as the otel globals.
//
// Sampling is parent-based: a sampled parent is always followed; root spans are sampled at the
// ratio in OTEL_TRACES_SAMPLER_ARG (0..1) when set, else always. The OTLP trace exporter is used
// only when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set; it speaks
// HTTP/protobuf unless OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL is "grpc".
// The exporter reads its other settings (headers, TLS, timeout) from the standard OTEL_* variables.
//
// Call Shutdown to flush and release the providers.
func Setup(ctx context.Context, serviceName, version string, getenv func(string) string, opts ...Option) (*Telemetry, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName(serviceName), semconv.ServiceVersion(version)),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry.Setup: resource: %w", err)
	}

	sampler, err := rootSampler(getenv)
	if err != nil {
		return nil, fmt.Errorf("telemetry.Setup: %w", err)
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sampler)),
	}
	exp, err := otlpExporter(ctx, getenv)
	if err != nil {
		return nil, fmt.Errorf("telemetry.Setup: %w", err)
	}
	if exp != nil {
		tpOpts = append(tpOpts, sdktrace.WithBatcher(exp))
	}
	for _, e := range o.spanExporters {
		tpOpts = append(tpOpts, sdktrace.WithSyncer(e))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)

	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry.Setup: go collector: %w", err), tp.Shutdown(ctx))
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry.Setup: process collector: %w", err), tp.Shutdown(ctx))
	}
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("telemetry.Setup: prometheus exporter: %w", err), tp.Shutdown(ctx))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(promExp))

	t := &Telemetry{
		tp:         tp,
		mp:         mp,
		propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		metrics:    promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
	if !o.noGlobal {
		otel.SetTracerProvider(tp)
		otel.SetMeterProvider(mp)
		otel.SetTextMapPropagator(t.propagator)
	}
	return t, nil
}

// rootSampler returns the sampler for spans without a parent.
func rootSampler(getenv func(string) string) (sdktrace.Sampler, error) {
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
	if arg == "" {
		return sdktrace.AlwaysSample(), nil
	}
	ratio, err := strconv.ParseFloat(arg, 64)
	if err != nil || ratio < 0 || ratio > 1 {
		return nil, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG %q: want a ratio between 0 and 1", arg)
	}
	return sdktrace.TraceIDRatioBased(ratio), nil
}

// otlpExporter returns the OTLP span exporter the environment asks for, or nil.
func otlpExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch proto {
	case "grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp grpc trace exporter: %w", err)
		}
		return exp, nil
	case "", "http/protobuf":
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlp http trace exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("OTLP protocol %q: want grpc or http/protobuf", proto)
	}
}

// TracerProvider returns the provider to pass to instrumentation explicitly.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// MeterProvider returns the provider to pass to instrumentation explicitly.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }

// Propagator returns the TraceContext+Baggage propagator.
func (t *Telemetry) Propagator() propagation.TextMapPropagator { return t.propagator }

// MetricsHandler serves the metrics in the Prometheus text format (Go runtime, process and every
// instrument created from MeterProvider).
func (t *Telemetry) MetricsHandler() http.Handler { return t.metrics }

// Shutdown flushes pending spans and stops both providers. ctx bounds the flush.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	if err := t.tp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: tracer provider shutdown: %w", err))
	}
	if err := t.mp.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("telemetry: meter provider shutdown: %w", err))
	}
	return errors.Join(errs...)
}
