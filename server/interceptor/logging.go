package interceptor

import (
	"context"
	"log/slog"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
)

// Log field keys added by this package (the middleware adds grpc.service, grpc.method, grpc.code,
// grpc.time_ms and friends).
const (
	fieldRequestID = "request_id"
	fieldTenant    = "tenant"
	fieldSubject   = "subject"
)

// slogLogger adapts log to the middleware's Logger. It passes the call's context on, so a
// trace-aware handler (telemetry.NewLogger) adds trace_id and span_id from the span context.
func slogLogger(log *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		log.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// loggingOptions log one line per finished call, never payloads. The tenant is added by the auth
// interceptor (logging.AddFields), which runs inside this one.
func loggingOptions() []logging.Option {
	return []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
			return logging.Fields{fieldRequestID, RequestIDFromContext(ctx)}
		}),
		logging.WithDisableLoggingFields(logging.SystemTag[0], logging.ComponentFieldKey),
	}
}

func unaryLogging(log *slog.Logger) grpc.UnaryServerInterceptor {
	return logging.UnaryServerInterceptor(slogLogger(log), loggingOptions()...)
}

func streamLogging(log *slog.Logger) grpc.StreamServerInterceptor {
	return logging.StreamServerInterceptor(slogLogger(log), loggingOptions()...)
}
