package interceptor

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"

	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
)

// recoveryHandler logs a panic with its stack and answers INTERNAL "internal error"; the panic
// value never reaches the client.
func recoveryHandler(log *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		method, _ := grpc.Method(ctx)
		// Called from the recovering defer, so the stack still shows where the panic happened.
		log.ErrorContext(ctx, "panic in gRPC handler",
			"grpc.method", method, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return errmap.ToStatus(llm.Errorf(llm.KindInternal, "internal error")).Err()
	}
}

func unaryRecovery(log *slog.Logger) grpc.UnaryServerInterceptor {
	return recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(recoveryHandler(log)))
}

func streamRecovery(log *slog.Logger) grpc.StreamServerInterceptor {
	return recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(recoveryHandler(log)))
}
