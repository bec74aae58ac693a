package server

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/auth/keystore"
	"github.com/switchyard/switchyard/internal/llm"
)

// KeyStore is what KeyService manages: *keystore.Store. Its errors follow keystore's: invalid
// specs and page tokens are *llm.Error, unknown ids match keystore.ErrNotFound.
type KeyStore interface {
	Create(ctx context.Context, spec keystore.Spec) (*keystore.Key, string, error)
	Get(ctx context.Context, id string) (*keystore.Key, error)
	List(ctx context.Context, o keystore.ListOptions) ([]*keystore.Key, string, error)
	Revoke(ctx context.Context, id string) (*keystore.Key, error)
}

var _ KeyStore = (*keystore.Store)(nil)

// KeysOption configures RegisterKeys.
type KeysOption func(*keyService)

// WithRevokeHook makes RevokeKey call f with the id of each key it revoked, once the store has
// recorded it: pass the authenticator's Invalidate, so the revocation takes effect at once on
// this instance.
func WithRevokeHook(f func(id string)) KeysOption { return func(s *keyService) { s.onRevoke = f } }

// WithKeysClock sets the clock that decides whether a listed key has expired (time.Now).
func WithKeysClock(now func() time.Time) KeysOption { return func(s *keyService) { s.now = now } }

// RegisterKeys registers KeyService on s, managing the keys of st. Every call needs AdminScope.
// Admins manage the keys of every tenant: the admin scope is the operator's.
func RegisterKeys(s grpc.ServiceRegistrar, st KeyStore, opts ...KeysOption) {
	ks := &keyService{st: st, now: time.Now, onRevoke: func(string) {}}
	for _, o := range opts {
		o(ks)
	}
	pb.RegisterKeyServiceServer(s, ks)
}

type keyService struct {
	pb.UnimplementedKeyServiceServer
	st       KeyStore
	now      func() time.Time
	onRevoke func(id string)
}

// CreateKey creates a key for the requested tenant (the caller's when empty) and returns its
// secret, once.
func (s *keyService) CreateKey(ctx context.Context, in *pb.CreateKeyRequest) (*pb.CreateKeyResponse, error) {
	if err := authorize(ctx); err != nil {
		return nil, err
	}
	spec := keystore.Spec{Name: in.GetName(), Tenant: in.GetTenant(), Scopes: in.GetScopes(), Models: in.GetModels()}
	if spec.Tenant == "" {
		p, _ := auth.FromContext(ctx) // authorize found it
		spec.Tenant = p.Tenant
	}
	switch {
	case in.GetExpireTime() != nil && in.GetTtl() != nil:
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "ttl", Message: "set expire_time or ttl, not both"}
	case in.GetExpireTime() != nil:
		if err := in.GetExpireTime().CheckValid(); err != nil {
			return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "expire_time", Message: "expire_time is not a valid time"}
		}
		spec.ExpiresAt = in.GetExpireTime().AsTime()
	case in.GetTtl() != nil:
		ttl := in.GetTtl()
		if err := ttl.CheckValid(); err != nil || ttl.AsDuration() <= 0 {
			return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "ttl", Message: "ttl must be a positive duration"}
		}
		spec.ExpiresAt = s.now().Add(ttl.AsDuration())
	}
	k, secret, err := s.st.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &pb.CreateKeyResponse{Key: s.toProto(k), Secret: secret}, nil
}

// ListKeys pages through the keys, newest first.
func (s *keyService) ListKeys(ctx context.Context, in *pb.ListKeysRequest) (*pb.ListKeysResponse, error) {
	if err := authorize(ctx); err != nil {
		return nil, err
	}
	if n := in.GetPageSize(); n < 0 || n > keystore.MaxPageSize {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "page_size",
			Message: "page_size must be from 1 to 1000 (0 for the default, 100)"}
	}
	keys, next, err := s.st.List(ctx, keystore.ListOptions{
		Tenant: in.GetTenant(), ShowRevoked: in.GetShowRevoked(), PageSize: int(in.GetPageSize()), PageToken: in.GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &pb.ListKeysResponse{Keys: make([]*pb.ApiKey, 0, len(keys)), NextPageToken: next}
	for _, k := range keys {
		out.Keys = append(out.Keys, s.toProto(k))
	}
	return out, nil
}

// GetKey describes one key.
func (s *keyService) GetKey(ctx context.Context, in *pb.GetKeyRequest) (*pb.GetKeyResponse, error) {
	if err := authorize(ctx); err != nil {
		return nil, err
	}
	k, err := s.st.Get(ctx, in.GetId())
	if err != nil {
		return nil, keyError(in.GetId(), err)
	}
	return &pb.GetKeyResponse{Key: s.toProto(k)}, nil
}

// RevokeKey revokes a key and tells the revoke hook.
func (s *keyService) RevokeKey(ctx context.Context, in *pb.RevokeKeyRequest) (*pb.RevokeKeyResponse, error) {
	if err := authorize(ctx); err != nil {
		return nil, err
	}
	k, err := s.st.Revoke(ctx, in.GetId())
	if err != nil {
		return nil, keyError(in.GetId(), err)
	}
	s.onRevoke(k.ID)
	return &pb.RevokeKeyResponse{Key: s.toProto(k)}, nil
}

// keyError turns keystore.ErrNotFound into NOT_FOUND; other errors pass.
func keyError(id string, err error) error {
	if errors.Is(err, keystore.ErrNotFound) {
		return &llm.Error{Kind: llm.KindNotFound, Code: "key_not_found", Param: "id",
			Message: "no API key with id \"" + id + "\"", Err: err}
	}
	return err
}

// toProto describes k; it has no secret to leak.
func (s *keyService) toProto(k *keystore.Key) *pb.ApiKey {
	out := &pb.ApiKey{
		Id: k.ID, Name: k.Name, Tenant: k.Tenant, Scopes: k.Scopes, Models: k.Models,
		CreateTime: timestamppb.New(k.CreatedAt), LastFour: k.LastFour,
		Revoked: k.Revoked(), Expired: k.Expired(s.now()),
	}
	if !k.ExpiresAt.IsZero() {
		out.ExpireTime = timestamppb.New(k.ExpiresAt)
	}
	if k.Revoked() {
		out.RevokeTime = timestamppb.New(k.RevokedAt)
	}
	return out
}
