// Package telemetry sets up OpenTelemetry tracing for authz and the issuer:
// an OTLP exporter when tracing is on, nothing at all when it is off, and
// the propagators that continue a trace Envoy started (W3C traceparent, and
// B3 when present).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config is the tracing section of both processes' configuration.
type Config struct {
	// Enabled turns tracing on; off, no span is ever made.
	Enabled bool `yaml:"enabled"`
	// Endpoint is the OTLP/gRPC collector, host:port.
	Endpoint string `yaml:"endpoint"`
	// Insecure sends spans without TLS (a collector on the node or in the
	// pod).
	Insecure bool `yaml:"insecure"`
	// SampleRatio is the share of traces started here that are recorded;
	// a trace Envoy started keeps Envoy's decision.
	SampleRatio float64 `yaml:"sample_ratio"`
}

// DefaultConfig is tracing off, ready for a collector on localhost.
func DefaultConfig() Config {
	return Config{Endpoint: "localhost:4317", Insecure: true, SampleRatio: 0.01}
}

// Validate reports what is wrong with c, naming the settings under prefix.
func (c Config) Validate(prefix string) []error {
	var errs []error
	if c.Enabled && c.Endpoint == "" {
		errs = append(errs, fmt.Errorf("%s.endpoint: required when %s.enabled (host:port of an OTLP/gRPC collector)", prefix, prefix))
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("%s.sample_ratio: %v must be between 0 and 1", prefix, c.SampleRatio))
	}
	return errs
}

// Tracing is what a process traces with.
type Tracing struct {
	// Provider makes the process's tracers (a no-op one when off).
	Provider trace.TracerProvider
	// Propagator reads and writes trace context in headers.
	Propagator propagation.TextMapPropagator
	// Enabled says whether spans are made at all: the request path skips
	// even reading trace headers when not.
	Enabled  bool
	shutdown func(context.Context) error
}

// Propagator continues traces from W3C traceparent/tracestate and from B3
// (single b3 header or X-B3-* headers), and writes W3C.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(
		propagation.TraceContext{}, propagation.Baggage{},
		b3.New(b3.WithInjectEncoding(b3.B3SingleHeader|b3.B3MultipleHeader)),
	)
}

// Start sets tracing up for service. With tracing off it returns a no-op
// provider and exports nothing.
func Start(ctx context.Context, cfg Config, service string, log *slog.Logger) (*Tracing, error) {
	if !cfg.Enabled {
		return &Tracing{Provider: noop.NewTracerProvider(), Propagator: Propagator(), shutdown: noShutdown}, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exporter, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", cfg.Endpoint, err)
	}
	version := "(devel)"
	if info, ok := debug.ReadBuildInfo(); ok {
		version = info.Main.Version
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service), semconv.ServiceVersion(version)))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	provider := NewProvider(sdktrace.NewBatchSpanProcessor(exporter), cfg.SampleRatio, res)
	log.Info("tracing", "endpoint", cfg.Endpoint, "sample_ratio", cfg.SampleRatio)
	return &Tracing{Provider: provider, Propagator: Propagator(), Enabled: true, shutdown: provider.Shutdown}, nil
}

// NewProvider is the SDK provider both processes use: parent-based
// sampling (a trace Envoy sampled is recorded, one it did not is not), and
// ratio sampling for traces that start here.
func NewProvider(processor sdktrace.SpanProcessor, ratio float64, res *resource.Resource) *sdktrace.TracerProvider {
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSpanProcessor(processor),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	}
	if res != nil {
		opts = append(opts, sdktrace.WithResource(res))
	}
	return sdktrace.NewTracerProvider(opts...)
}

func noShutdown(context.Context) error { return nil }

// Shutdown flushes the spans not yet exported, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := t.shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("tracing: flushing spans: %w", err)
	}
	return nil
}
