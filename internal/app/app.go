// Package app is Switchyard's composition root: it loads the configuration, builds the provider
// registry, the router, the gRPC server, the REST gateway and the admin server, and runs them with
// an ordered, bounded shutdown. Only cmd/switchyard (and end-to-end tests) import it.
//
// Start (instance.go) reads top to bottom: options and validation; the dependencies (deps.go:
// logger, telemetry, router and live config, authenticator and managed keys, TLS, audit log,
// limiter, sessions), each adding its cleanup to one list; the listeners (servers.go); the
// interceptor chains and the gRPC server, on which registerServices (services.go) registers the
// services, as it does on the in-process channel the REST gateway uses by default; the REST and
// admin servers; and the actors that run them and stop them in order. When the actors have
// stopped, or when Start fails halfway, the cleanup list is closed, last built first: telemetry
// and the log are flushed last.
//
// Tests run a whole gateway in-process:
//
//	cfg := app.DefaultConfig()
//	cfg.Server.HTTPAddr, cfg.Server.GRPCAddr, cfg.Server.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
//	inst, err := app.Start(ctx, cfg, app.WithLogger(slog.New(slog.DiscardHandler)))
//	if err != nil { t.Fatal(err) }
//	t.Cleanup(func() { _ = inst.Shutdown(context.Background()) })
//	resp, err := http.Post("http://"+inst.HTTPAddr()+"/v1/chat/completions", ...)
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"

	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/anthropic"
	"github.com/switchyard/switchyard/internal/provider/azure"
	"github.com/switchyard/switchyard/internal/provider/cohere"
	"github.com/switchyard/switchyard/internal/provider/gemini"
	"github.com/switchyard/switchyard/internal/provider/grpcupstream"
	"github.com/switchyard/switchyard/internal/provider/mock"
	"github.com/switchyard/switchyard/internal/provider/ollama"
	"github.com/switchyard/switchyard/internal/provider/openai"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/internal/telemetry"
)

// Version is the release, set at build time with
// -ldflags "-X github.com/switchyard/switchyard/internal/app.Version=v1.2.3".
var Version = "dev"

// ServiceName names the process in traces and metrics.
const ServiceName = "switchyard"

// newRegistry is the one place provider types are registered. The types only the full build has
// (bedrock, kserve) are registered by registerFullOnly (variant_full.go); the edge build
// (variant_edge.go, docs/edge-build.md) leaves them out.
func newRegistry() *provider.Registry {
	reg := provider.NewRegistry()
	reg.Register("openai", openai.New)       // OpenAI and every OpenAI-compatible API (DeepSeek, vLLM, ...)
	reg.Register("azure", azure.New)         // Azure OpenAI deployments
	reg.Register("anthropic", anthropic.New) // Anthropic Messages API
	reg.Register("gemini", gemini.New)       // Google Gemini (Generative Language API)
	reg.Register("cohere", cohere.New)       // Cohere v2: chat, embed, rerank
	reg.Register("ollama", ollama.New)       // Ollama's native /api/chat and /api/embed
	reg.Register("grpc", grpcupstream.New)   // any server implementing switchyard.v1 (another Switchyard, in-house models)
	reg.Register("mock", mock.New)           // canned answers, for trials and tests
	registerFullOnly(reg)                    // bedrock, kserve: not in the edge build
	return reg
}

// batchingTypes are the provider types whose adapters serve embeddings with many inputs in one
// upstream call, so that a provider's `batching` block may merge requests (anthropic has no
// embeddings; bedrock's Cohere models take many inputs, its Titan ones one per call). TestBatchingTypes
// checks the list against the adapters.
var batchingTypes = []string{"openai", "azure", "gemini", "cohere", "ollama", "grpc", "kserve", "mock", "bedrock"}

// buildRouter builds every configured provider and a router over them and the routes, aliases
// and prices, with fresh live state (breakers, latency figures). Start and reloads (reload.go)
// build theirs with buildBackends, keeping the providers and the live state.
func buildRouter(reg *provider.Registry, cfg *Config) (*router.Router, error) {
	backends, _, err := buildBackends(reg, cfg, nil)
	if err != nil {
		return nil, err
	}
	return router.Build(backends, cfg.routerConfig(), nil)
}

const usage = `Switchyard is a gRPC-first LLM gateway with an OpenAI-compatible REST edge.

Usage:
  switchyard serve [--config FILE]         run the gateway
  switchyard config check [--config FILE]  validate a config and print it with secrets redacted
  switchyard audit verify [--config FILE]  check every tenant's audit hash chain; report the first bad record
  switchyard version                       print the version

Without --config, $SWITCHYARD_CONFIG is used; without either, the built-in config (mock provider
only, loopback, no auth). $SWITCHYARD_HTTP_ADDR, $SWITCHYARD_GRPC_ADDR and $SWITCHYARD_ADMIN_ADDR
override the listener addresses.
`

// Run runs the switchyard command line: args are the arguments after the program name. It
// returns when the command is done; for serve, after ctx is cancelled and shutdown has finished.
// Logs go to stderr, command output to stdout.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		path, err := parseConfigFlag("serve", rest, getenv, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, path, getenv, stderr)
	case "config":
		if len(rest) == 0 || rest[0] != "check" {
			fmt.Fprint(stderr, usage)
			return errors.New(`config: want "config check"`)
		}
		path, err := parseConfigFlag("config check", rest[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return checkConfig(path, getenv, stdout)
	case "audit":
		if len(rest) == 0 || rest[0] != "verify" {
			fmt.Fprint(stderr, usage)
			return errors.New(`audit: want "audit verify"`)
		}
		path, err := parseConfigFlag("audit verify", rest[1:], getenv, stderr)
		if err != nil {
			return err
		}
		return auditVerify(ctx, path, getenv, stdout)
	case "version":
		if buildVariant != "full" {
			fmt.Fprintf(stdout, "switchyard %s (%s build)\n", fullVersion(), buildVariant)
			return nil
		}
		fmt.Fprintf(stdout, "switchyard %s\n", fullVersion())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// parseConfigFlag parses [--config FILE], defaulting to $SWITCHYARD_CONFIG.
func parseConfigFlag(name string, args []string, getenv func(string) string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv(EnvConfig), "config `FILE` (YAML); default $"+EnvConfig+" or the built-in config")
	if err := fs.Parse(args); err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%s: unexpected arguments %q", name, fs.Args())
	}
	return *path, nil
}

func serve(ctx context.Context, path string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		return err
	}
	level, _ := parseLevel(cfg.Log.Level) // validated by LoadConfig
	log := telemetry.NewLogger(stderr, level, cfg.Log.Format)
	applyRuntime(cfg.Runtime, getenv, log)
	if path == "" {
		log.Info("no config file given: using the built-in config (mock provider, loopback, no auth)")
	}
	inst, err := Start(ctx, cfg, WithLogger(log), WithGetenv(getenv), WithConfigFile(path))
	if err != nil {
		return err
	}
	return inst.Wait()
}

// checkConfig loads and validates the config, builds every provider (without contacting any), and
// prints the effective config with secrets redacted.
func checkConfig(path string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		return err
	}
	if _, err := buildRouter(newRegistry(), cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	out, err := cfg.Redacted()
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// fullVersion is Version, plus the VCS revision for development builds.
func fullVersion() string {
	if Version != "dev" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return Version
	}
	return fmt.Sprintf("%s (%.12s%s)", Version, rev, dirty)
}
