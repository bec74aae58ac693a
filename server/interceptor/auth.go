package interceptor

import (
	"context"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/errmap"
)

// authFunc authenticates the bearer token of the `authorization` metadata (auth.Resolve, the rule
// the REST edge's early check uses too) and puts the principal in the context. A missing or empty
// header is the empty token: the authenticator decides (mode none admits it).
func authFunc(a auth.Authenticator) grpcauth.AuthFunc {
	return func(ctx context.Context) (context.Context, error) {
		var header string
		if vs := metadata.ValueFromIncomingContext(ctx, "authorization"); len(vs) > 0 {
			header = vs[0]
		}
		p, err := auth.Resolve(withClientCert(ctx), a, header)
		if err != nil {
			return nil, errmap.ToStatus(err).Err()
		}
		noteLogPrincipal(ctx, p)
		if err := notePrincipal(ctx, p); err != nil {
			return nil, errmap.ToStatus(err).Err()
		}
		return auth.NewContext(ctx, p), nil
	}
}

// withClientCert adds the leaf of the caller's verified mTLS chain to ctx (auth.NewCertContext), if
// the connection has one. Unverified certificates (client_auth without client CAs) are ignored.
func withClientCert(ctx context.Context) context.Context {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return ctx
	}
	ti, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return ctx
	}
	return auth.NewCertContext(ctx, ti.State.VerifiedChains[0][0])
}

// needsAuth exempts gRPC health checks and server reflection from authentication.
var needsAuth = selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
	return !strings.HasPrefix(c.Service, "grpc.health.v1.") && !strings.HasPrefix(c.Service, "grpc.reflection.")
})

func unaryAuth(a auth.Authenticator) grpc.UnaryServerInterceptor {
	return selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(authFunc(a)), needsAuth)
}

func streamAuth(a auth.Authenticator) grpc.StreamServerInterceptor {
	return selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(authFunc(a)), needsAuth)
}
