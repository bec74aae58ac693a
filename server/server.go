// Package server implements Switchyard's gRPC services (ChatService, EmbeddingService,
// RerankService, ModelService, SessionService). It is thin on purpose: it maps proto messages to
// the canonical types of internal/llm, resolves the model through the router and calls the
// provider; chat with a session and SessionService go through a session.Manager. Validation, authentication and error
// mapping happen in the interceptor chain (server/interceptor), so handlers return *llm.Error
// values and trust that requests are well-formed.
package server

import (
	"crypto/rand"
	"time"

	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/router"
	"github.com/switchyard/switchyard/internal/session"
)

// startTime is the "created" time of every configured model.
var startTime = time.Now().Unix()

// Option adds an optional part to Register.
type Option func(*options)

type options struct {
	sessions *session.Manager
}

// WithSessions enables SessionService and chat with sessions, over m. Pass the same Manager to
// every Register call of a process (the gRPC server and the gateway's in-process channel), so
// both see the same store. Without it SessionService is not registered and chat requests naming
// a session fail with INVALID_ARGUMENT.
func WithSessions(m *session.Manager) Option { return func(o *options) { o.sessions = m } }

// Register registers ChatService, EmbeddingService, RerankService and ModelService on s, and
// SessionService when WithSessions is given. routes returns the current router (it may change
// between calls when config is reloaded; call it once per request). routes must never return nil.
func Register(s grpc.ServiceRegistrar, routes func() *router.Router, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	pb.RegisterChatServiceServer(s, &chatService{routes: routes, sessions: o.sessions})
	pb.RegisterEmbeddingServiceServer(s, &embeddingService{routes: routes})
	pb.RegisterRerankServiceServer(s, &rerankService{routes: routes})
	pb.RegisterModelServiceServer(s, &modelService{routes: routes})
	if o.sessions != nil {
		pb.RegisterSessionServiceServer(s, &sessionService{m: o.sessions})
	}
}

// newID returns prefix followed by 26 random base32 characters.
func newID(prefix string) string { return prefix + rand.Text() }
