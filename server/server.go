// Package server implements Switchyard's gRPC services (ChatService, EmbeddingService,
// ModelService). It is thin on purpose: it maps proto messages to the canonical types of
// internal/llm, resolves the model through the router and calls the provider. Validation,
// authentication and error mapping happen in the interceptor chain (server/interceptor), so
// handlers return *llm.Error values and trust that requests are well-formed.
package server

import (
	"crypto/rand"
	"time"

	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/router"
)

// RouteHeader is the response header naming the provider and model that served a request
// ("provider/model").
const RouteHeader = "x-switchyard-route"

// WarningHeader carries non-fatal notes about a request, one value each, such as a parameter the
// provider adapter dropped because the upstream does not support it.
const WarningHeader = "x-switchyard-warning"

// startTime is the "created" time of every configured model.
var startTime = time.Now().Unix()

// Register registers ChatService, EmbeddingService and ModelService on s. routes returns the current
// router (it may change between calls when config is reloaded; call it once per request). routes
// must never return nil.
func Register(s grpc.ServiceRegistrar, routes func() *router.Router) {
	pb.RegisterChatServiceServer(s, &chatService{routes: routes})
	pb.RegisterEmbeddingServiceServer(s, &embeddingService{routes: routes})
	pb.RegisterModelServiceServer(s, &modelService{routes: routes})
}

// newID returns prefix followed by 26 random base32 characters.
func newID(prefix string) string { return prefix + rand.Text() }
