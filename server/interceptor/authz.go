package interceptor

import (
	"context"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
)

// requiredScope is the one place that says which scope each RPC needs:
//
//	ChatService       chat:write
//	EmbeddingService  embeddings:write
//	RerankService     rerank:write
//	ModelService      models:read
//	SessionService    sessions:read for Get*, List* and Export*; sessions:write for the rest
//	AdminService      admin
//	anything else     admin (fail closed: a new service is an admin API until it is listed here)
//
// fullMethod is "/package.Service/Method". Health checks and reflection never get here (they are
// exempt from authentication and authorization alike).
func requiredScope(fullMethod string) string {
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	switch service {
	case pb.ChatService_ServiceDesc.ServiceName:
		return auth.ScopeChatWrite
	case pb.EmbeddingService_ServiceDesc.ServiceName:
		return auth.ScopeEmbeddingsWrite
	case pb.RerankService_ServiceDesc.ServiceName:
		return auth.ScopeRerankWrite
	case pb.ModelService_ServiceDesc.ServiceName:
		return auth.ScopeModelsRead
	case pb.SessionService_ServiceDesc.ServiceName:
		for _, read := range []string{"Get", "List", "Export"} {
			if strings.HasPrefix(method, read) {
				return auth.ScopeSessionsRead
			}
		}
		return auth.ScopeSessionsWrite
	}
	return auth.ScopeAdmin
}

// authorize checks that the caller in ctx holds the scope fullMethod needs. Denials are
// KindPermissionDenied errors naming the missing scope.
func authorize(ctx context.Context, fullMethod string) error {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return &llm.Error{Kind: llm.KindUnauthenticated, Code: "unauthenticated", Message: "This call needs credentials."}
	}
	if scope := requiredScope(fullMethod); !p.HasScope(scope) {
		return &llm.Error{Kind: llm.KindPermissionDenied, Code: "missing_scope",
			Message: "This call needs the \"" + scope + "\" scope, which your credentials do not grant."}
	}
	return nil
}

// requestModel returns the model or alias a request names ("" when it names none; a session then
// supplies one that was checked when the session was created or updated).
func requestModel(m any) string {
	switch r := m.(type) {
	case *pb.StreamChatCompletionRequest:
		return r.GetRequest().GetModel()
	case *pb.GetModelRequest:
		return r.GetId()
	case interface{ GetModel() string }:
		return r.GetModel()
	}
	return ""
}

// authorizeModel checks that the caller in ctx may use the model request m names.
func authorizeModel(ctx context.Context, m any) error {
	model := requestModel(m)
	if model == "" {
		return nil
	}
	if p, ok := auth.FromContext(ctx); ok && !p.AllowsModel(model) {
		return &llm.Error{Kind: llm.KindPermissionDenied, Code: "model_not_allowed", Param: "model",
			Message: "Your credentials do not allow the model \"" + model + "\"."}
	}
	return nil
}

func unaryAuthz(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := authorize(ctx, info.FullMethod); err != nil {
		return nil, errmap.ToStatus(err).Err()
	}
	if err := authorizeModel(ctx, req); err != nil {
		return nil, errmap.ToStatus(err).Err()
	}
	return handler(ctx, req)
}

func streamAuthz(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := authorize(ss.Context(), info.FullMethod); err != nil {
		return errmap.ToStatus(err).Err()
	}
	return handler(srv, &modelCheckedStream{ServerStream: ss})
}

// modelCheckedStream checks each received request's model before the handler sees it: for a
// server-streaming RPC the only request is read before the handler runs, so a denied model
// costs no upstream work.
type modelCheckedStream struct {
	grpc.ServerStream
}

func (s *modelCheckedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := authorizeModel(s.Context(), m); err != nil {
		return errmap.ToStatus(err).Err()
	}
	return nil
}

// Authorization runs after authentication, on the same calls (health and reflection are exempt).
var (
	unaryAuthorization  = selector.UnaryServerInterceptor(unaryAuthz, needsAuth)
	streamAuthorization = selector.StreamServerInterceptor(streamAuthz, needsAuth)
)
