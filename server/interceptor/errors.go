package interceptor

import (
	"context"
	"log/slog"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
)

// maxLoggedUpstreamMsg bounds the upstream message in logs.
const maxLoggedUpstreamMsg = 1024

// mapError converts err to a status error (errmap.ToStatus) for the call in ctx. Statuses pass
// through unchanged. Errors outside the parameter class are logged with their upstream details:
// KindInternal (and any error that is not an *llm.Error) at error level, the rest at warn, client
// cancellations at debug. Quota errors with a RetryAfter set the retry-after header, when headers
// have not been sent yet.
func mapError(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errmap.StatusOf(err); ok {
		return err
	}
	e := llm.AsError(err)
	st := errmap.ToStatus(e)
	info := e.Kind.Info()

	if info.Class == llm.ClassQuota && e.RetryAfter > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs(mdkey.RetryAfter, errmap.RetryAfterSeconds(e.RetryAfter)))
	}

	if info.Class != llm.ClassParameter {
		level := slog.LevelWarn
		switch e.Kind {
		case llm.KindInternal:
			level = slog.LevelError
		case llm.KindCanceled:
			level = slog.LevelDebug
		}
		if log.Enabled(ctx, level) {
			fullMethod, _ := grpc.Method(ctx)
			service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
			attrs := []slog.Attr{
				slog.String("grpc.service", service),
				slog.String("grpc.method", method),
				slog.String("grpc.code", st.Code().String()),
				slog.String(fieldRequestID, RequestIDFromContext(ctx)),
				slog.String("error.kind", info.Name),
				slog.String("error.class", info.Class),
				slog.String("error", err.Error()),
			}
			if p, ok := auth.FromContext(ctx); ok {
				attrs = append(attrs, slog.String(fieldTenant, p.Tenant))
			}
			if e.Provider != "" {
				attrs = append(attrs, slog.String("provider", e.Provider))
			}
			if e.UpstreamStatus != 0 {
				msg := e.UpstreamMessage
				if len(msg) > maxLoggedUpstreamMsg {
					msg = msg[:maxLoggedUpstreamMsg]
				}
				attrs = append(attrs, slog.Int("upstream.status", e.UpstreamStatus), slog.String("upstream.message", msg))
			}
			if e.RetryAfter > 0 {
				attrs = append(attrs, slog.String("retry_after", e.RetryAfter.String()))
			}
			log.LogAttrs(ctx, level, "request failed", attrs...)
		}
	}
	return st.Err()
}

func unaryErrors(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return nil, mapError(ctx, log, err)
		}
		return resp, nil
	}
}

func streamErrors(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return mapError(ss.Context(), log, handler(srv, ss))
	}
}
