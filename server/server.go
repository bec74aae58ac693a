// Package server implements Switchyard's gRPC services (ChatService, EmbeddingService,
// ModelService, SessionService). It is thin on purpose: it maps proto messages to the canonical
// types of internal/llm, resolves the model through the router and calls the provider; chat with
// a session loads and appends through a session.Store. Validation, authentication and error
// mapping happen in the interceptor chain (server/interceptor), so handlers return *llm.Error
// values and trust that requests are well-formed.
package server

import (
	"context"
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
	sessions *sessions
}

// Sessions is the session state Register shares between ChatService and SessionService. Build
// it once and pass it to every Register call of a process (the gRPC server and the gateway's
// in-process channel), so both see the same store.
type Sessions struct{ s *sessions }

// NewSessions returns the session state over store, with cfg's policies.
func NewSessions(store session.Store, cfg SessionConfig) *Sessions {
	return &Sessions{s: newSessions(store, cfg)}
}

// UserEraser erases what the gateway keeps about user of tenant outside the session store (the
// audit log's bodies, audit.Store.EraseBodies), returning how many items it erased. It must be
// idempotent: a failed EraseUserSessions is retried whole.
type UserEraser func(ctx context.Context, tenant, user string) (int64, error)

// SetUserEraser makes EraseUserSessions also call f once the user's sessions are deleted, so one
// erasure request covers sessions and audit bodies. Call it before Register; nil erases sessions
// only.
func (ss *Sessions) SetUserEraser(f UserEraser) { ss.s.eraseUser = f }

// WithSessions enables SessionService and chat with sessions, over ss. Without it SessionService
// is not registered and chat requests naming a session fail with INVALID_ARGUMENT.
func WithSessions(ss *Sessions) Option { return func(o *options) { o.sessions = ss.s } }

// Register registers ChatService, EmbeddingService and ModelService on s, and SessionService when
// WithSessions is given. routes returns the current router (it may change between calls when
// config is reloaded; call it once per request). routes must never return nil.
func Register(s grpc.ServiceRegistrar, routes func() *router.Router, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	pb.RegisterChatServiceServer(s, &chatService{routes: routes, sessions: o.sessions})
	pb.RegisterEmbeddingServiceServer(s, &embeddingService{routes: routes})
	pb.RegisterModelServiceServer(s, &modelService{routes: routes})
	if o.sessions != nil {
		pb.RegisterSessionServiceServer(s, &sessionService{sessions: o.sessions})
	}
}

// newID returns prefix followed by 26 random base32 characters.
func newID(prefix string) string { return prefix + rand.Text() }
