package server

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
)

// sessionID returns the session a chat request continues: the body field, else the
// x-switchyard-session-id header (mdkey.SessionID, for OpenAI clients that cannot add body fields),
// else "". Chat answers of a session echo it.
func sessionID(ctx context.Context, in *pb.CreateChatCompletionRequest) string {
	if id := in.GetSessionId(); id != "" {
		return id
	}
	if vs := metadata.ValueFromIncomingContext(ctx, mdkey.SessionID); len(vs) > 0 {
		return strings.TrimSpace(vs[0])
	}
	return ""
}

// principal returns the caller; every session operation is scoped by its tenant.
func principal(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, llm.Errorf(llm.KindUnauthenticated, "no credentials")
	}
	return p, nil
}
