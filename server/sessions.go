package server

import (
	"context"
	"maps"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/pbconv"
	"github.com/switchyard/switchyard/internal/session"
)

// sessionService implements SessionService: it maps the protos to the session.Manager, which
// scopes every call to the caller's tenant (another tenant's ids are NOT_FOUND) and applies the
// policies.
type sessionService struct {
	pb.UnimplementedSessionServiceServer
	m *session.Manager
}

// CreateSession stores a new session with a UUIDv7 id. The model is required; the user defaults
// to the caller's subject and the TTL to the configured default. The store sets the timestamps.
func (s *sessionService) CreateSession(ctx context.Context, in *pb.CreateSessionRequest) (*pb.CreateSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if in.GetModel() == "" {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "model", Message: "You must provide a model parameter."}
	}
	params, err := paramsFromPB(in.GetParameters())
	if err != nil {
		return nil, err
	}
	ttl, err := ttlFromPB(in.GetTtl())
	if err != nil {
		return nil, err
	}
	sess := &session.Session{
		User:         in.GetUser(),
		Model:        in.GetModel(),
		Params:       params,
		SystemPrompt: in.GetSystemPrompt(),
		Metadata:     in.GetMetadata(),
		Archive:      in.GetArchive(),
		TTL:          ttl,
	}
	if err := s.m.Create(ctx, p, sess); err != nil {
		return nil, err
	}
	return &pb.CreateSessionResponse{Session: sessionToPB(sess)}, nil
}

// GetSession returns the session without its history.
func (s *sessionService) GetSession(ctx context.Context, in *pb.GetSessionRequest) (*pb.GetSessionResponse, error) {
	sess, err := s.get(ctx, in.GetId())
	if err != nil {
		return nil, err
	}
	return &pb.GetSessionResponse{Session: sessionToPB(sess)}, nil
}

// get returns the caller's tenant's session id.
func (s *sessionService) get(ctx context.Context, id string) (*session.Session, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	return s.m.Get(ctx, p, id)
}

// ListSessions pages through one user's sessions of the caller's tenant, most recently changed
// first.
func (s *sessionService) ListSessions(ctx context.Context, in *pb.ListSessionsRequest) (*pb.ListSessionsResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	list, next, err := s.m.List(ctx, p, in.GetUser(), int(in.GetPageSize()), in.GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &pb.ListSessionsResponse{Sessions: make([]*pb.Session, len(list)), NextPageToken: next}
	for i, sess := range list {
		out.Sessions[i] = sessionToPB(sess)
	}
	return out, nil
}

// UpdateSession changes the fields set in the request. The change is re-applied when a
// concurrent turn wrote first, so no turn is lost.
func (s *sessionService) UpdateSession(ctx context.Context, in *pb.UpdateSessionRequest) (*pb.UpdateSessionResponse, error) {
	var params *session.Params
	if in.GetParameters() != nil {
		p, err := paramsFromPB(in.GetParameters())
		if err != nil {
			return nil, err
		}
		params = &p
	}
	ttl, err := ttlFromPB(in.GetTtl()) // 0 (nil): unchanged
	if err != nil {
		return nil, err
	}
	if in.Model != nil && in.GetModel() == "" {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "model", Message: "model must not be empty"}
	}
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := s.m.Update(ctx, p, in.GetId(), func(sess *session.Session) {
		if in.Model != nil {
			sess.Model = in.GetModel()
		}
		if params != nil {
			sess.Params = *params
		}
		if in.SystemPrompt != nil {
			sess.SystemPrompt = in.GetSystemPrompt()
		}
		for k, v := range in.GetMetadata() {
			if v == "" {
				delete(sess.Metadata, k)
				continue
			}
			if sess.Metadata == nil {
				sess.Metadata = make(map[string]string)
			}
			sess.Metadata[k] = v
		}
		if in.Archive != nil {
			sess.Archive = in.GetArchive()
		}
		if ttl > 0 {
			sess.TTL = ttl
		}
	})
	if err != nil {
		return nil, err
	}
	return &pb.UpdateSessionResponse{Session: sessionToPB(sess)}, nil
}

// DeleteSession removes the session.
func (s *sessionService) DeleteSession(ctx context.Context, in *pb.DeleteSessionRequest) (*pb.DeleteSessionResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.m.Delete(ctx, p, in.GetId()); err != nil {
		return nil, err
	}
	return &pb.DeleteSessionResponse{}, nil
}

// GetSessionHistory returns the session's messages, oldest first.
func (s *sessionService) GetSessionHistory(ctx context.Context, in *pb.GetSessionHistoryRequest) (*pb.GetSessionHistoryResponse, error) {
	sess, err := s.get(ctx, in.GetId())
	if err != nil {
		return nil, err
	}
	return &pb.GetSessionHistoryResponse{Entries: historyToPB(sess.History)}, nil
}

// ExportUserSessions returns every session of a user of the caller's tenant with its history.
// The audit log's records of the user (metadata, and bodies when kept) are exported with
// AuditService's ListAuditRecords (subject or user filter, include_bodies), not here.
func (s *sessionService) ExportUserSessions(ctx context.Context, in *pb.ExportUserSessionsRequest) (*pb.ExportUserSessionsResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.m.Export(ctx, p, in.GetUser())
	if err != nil {
		return nil, err
	}
	out := &pb.ExportUserSessionsResponse{}
	for _, sess := range list {
		out.Sessions = append(out.Sessions, &pb.ExportedSession{Session: sessionToPB(sess), History: historyToPB(sess.History)})
	}
	return out, nil
}

// EraseUserSessions deletes every session of a user of the caller's tenant, then what the
// Manager's UserEraser erases (the bodies of the user's audit records; their metadata stays
// until the audit retention ends, docs/audit.md). Erased counts the sessions. If the eraser
// fails the call fails, and can be retried: both steps are idempotent.
func (s *sessionService) EraseUserSessions(ctx context.Context, in *pb.EraseUserSessionsRequest) (*pb.EraseUserSessionsResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.m.Erase(ctx, p, in.GetUser())
	if err != nil {
		return nil, err
	}
	return &pb.EraseUserSessionsResponse{Erased: int32(min(n, 1<<31-1))}, nil
}

// ttlFromPB validates a requested TTL; nil is 0, the Manager's default.
func ttlFromPB(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil || d.AsDuration() <= 0 {
		return 0, &llm.Error{Kind: llm.KindInvalidArgument, Param: "ttl", Message: "ttl must be a positive duration"}
	}
	return d.AsDuration(), nil
}

// paramsFromPB converts and range-checks session parameters (the chat request's limits).
func paramsFromPB(p *pb.SessionParameters) (session.Params, error) {
	if p == nil {
		return session.Params{}, nil
	}
	bad := func(param, msg string) error {
		return &llm.Error{Kind: llm.KindInvalidArgument, Param: "parameters." + param, Message: msg}
	}
	switch {
	case p.Temperature != nil && !(*p.Temperature >= 0 && *p.Temperature <= 2):
		return session.Params{}, bad("temperature", "temperature must be between 0 and 2")
	case p.TopP != nil && !(*p.TopP >= 0 && *p.TopP <= 1):
		return session.Params{}, bad("top_p", "top_p must be between 0 and 1")
	case p.MaxTokens != nil && *p.MaxTokens < 1:
		return session.Params{}, bad("max_tokens", "max_tokens must be at least 1")
	case len(p.GetStop()) > 4:
		return session.Params{}, bad("stop", "at most 4 stop sequences")
	case p.PresencePenalty != nil && !(*p.PresencePenalty >= -2 && *p.PresencePenalty <= 2):
		return session.Params{}, bad("presence_penalty", "presence_penalty must be between -2 and 2")
	case p.FrequencyPenalty != nil && !(*p.FrequencyPenalty >= -2 && *p.FrequencyPenalty <= 2):
		return session.Params{}, bad("frequency_penalty", "frequency_penalty must be between -2 and 2")
	}
	return session.Params{
		Temperature:      p.Temperature,
		TopP:             p.TopP,
		MaxTokens:        p.MaxTokens,
		Stop:             p.GetStop(),
		PresencePenalty:  p.PresencePenalty,
		FrequencyPenalty: p.FrequencyPenalty,
		Seed:             p.Seed,
		ReasoningEffort:  p.GetReasoningEffort(),
	}, nil
}

func paramsToPB(p *session.Params) *pb.SessionParameters {
	return &pb.SessionParameters{
		Temperature:      p.Temperature,
		TopP:             p.TopP,
		MaxTokens:        p.MaxTokens,
		Stop:             p.Stop,
		PresencePenalty:  p.PresencePenalty,
		FrequencyPenalty: p.FrequencyPenalty,
		Seed:             p.Seed,
		ReasoningEffort:  p.ReasoningEffort,
	}
}

func sessionToPB(s *session.Session) *pb.Session {
	return &pb.Session{
		Id:           s.ID,
		User:         s.User,
		Model:        s.Model,
		Parameters:   paramsToPB(&s.Params),
		SystemPrompt: s.SystemPrompt,
		Metadata:     maps.Clone(s.Metadata),
		Archive:      s.Archive,
		Ttl:          durationpb.New(s.TTL),
		Turns:        s.Turns,
		Version:      s.Version,
		CreateTime:   timestamppb.New(s.CreatedAt),
		UpdateTime:   timestamppb.New(s.UpdatedAt),
	}
}

func historyToPB(h []session.Entry) []*pb.SessionEntry {
	out := make([]*pb.SessionEntry, len(h))
	for i := range h {
		out[i] = &pb.SessionEntry{
			Message:    pbconv.MessageToPB(&h[i].Message),
			Turn:       h[i].Turn,
			CreateTime: timestamppb.New(h[i].At),
		}
	}
	return out
}
