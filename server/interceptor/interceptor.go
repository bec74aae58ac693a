// Package interceptor builds Switchyard's gRPC server interceptor chain. The order, outermost first:
//
//	recovery    a panic becomes INTERNAL "internal error"; the panic and its stack are logged
//	request id  x-request-id taken from the caller when sane, generated otherwise; echoed as a header;
//	            makes the call's record (internal/callinfo), which the services fill in and audit
//	            and limits read when the handler returns
//	logging     one line per finished call (method, code, duration, request id, tenant); no payloads
//	audit       one audit record per call, refused ones included, written asynchronously (audit.go;
//	            off when Auditor is nil); auth hands it the principal it admitted; route, attempts
//	            and usage come from the call's record; when the audit spool is full, a tenant whose
//	            audit is required is refused UNAVAILABLE (audit_unavailable) as auth admits it
//	auth        bearer token → auth.Principal in the context (health and reflection are exempt);
//	            the REST edge runs the same rule (auth.Resolve) before reading a body
//	authz       the principal holds the RPC's scope and may use the requested model (authz.go)
//	limits      requests and tokens per minute and per day, per key and tenant (limits.go; off when
//	            Limiter is nil); x-ratelimit-* headers; usage settled after the call, from the
//	            call's record
//	validation  hand-written checks of each request, shape limits (RequestLimits) included;
//	            violations are INVALID_ARGUMENT with a param
//	errors      innermost: *llm.Error → gRPC status with ErrorInfo; logs upstream failures
//
// Errors are mapped to statuses where they arise: auth, authz, limits and validation map their own (they sit
// outside the errors interceptor), so logging sees the final code of every call.
package interceptor

import (
	"log/slog"

	"google.golang.org/grpc"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/limits"
)

// Config configures the chain.
type Config struct {
	Logger        *slog.Logger       // nil: slog.Default(); use a trace-aware handler to get trace ids
	Authenticator auth.Authenticator // required
	Limiter       *limits.Limiter    // nil: no rate limits
	Auditor       Auditor            // nil: no audit records
	AuditBodyMax  int                // > 0: audit records keep request and response bodies up to this size
	RequestLimits RequestLimits      // shape limits checked by validation; zero fields mean the defaults
}

func (c Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// Unary returns the unary chain, outermost first: recovery → request id → logging → audit → auth →
// authz → limits → validation → errors. Pass it to grpc.ChainUnaryInterceptor. It panics if cfg.Authenticator is nil.
func Unary(cfg Config) []grpc.UnaryServerInterceptor {
	log := cfg.logger()
	return []grpc.UnaryServerInterceptor{
		unaryRecovery(log),
		unaryRequestID,
		unaryLogging(log),
		unaryAudit(cfg.Auditor, cfg.AuditBodyMax),
		unaryAuth(mustAuthenticator(cfg)),
		unaryAuthorization,
		unaryLimits(cfg.Limiter, log),
		unaryValidation(newValidator(cfg.RequestLimits)),
		unaryErrors(log),
	}
}

// Stream returns the stream chain, in the same order as Unary. Pass it to
// grpc.ChainStreamInterceptor. It panics if cfg.Authenticator is nil.
func Stream(cfg Config) []grpc.StreamServerInterceptor {
	log := cfg.logger()
	return []grpc.StreamServerInterceptor{
		streamRecovery(log),
		streamRequestID,
		streamLogging(log),
		streamAudit(cfg.Auditor, cfg.AuditBodyMax),
		streamAuth(mustAuthenticator(cfg)),
		streamAuthorization,
		streamLimits(cfg.Limiter, log),
		streamValidation(newValidator(cfg.RequestLimits)),
		streamErrors(log),
	}
}

func mustAuthenticator(cfg Config) auth.Authenticator {
	if cfg.Authenticator == nil {
		panic("interceptor: Config.Authenticator is nil")
	}
	return cfg.Authenticator
}
