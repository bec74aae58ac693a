package server

import (
	"context"
	"encoding/hex"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

// AuditLog is what AuditService reads and erases (internal/app wires the SQL audit store).
type AuditLog interface {
	// Query returns records of f.Tenant matching f, newest first, and the next page token. An
	// unknown page token is audit.ErrInvalidPageToken.
	Query(ctx context.Context, f audit.Filter) ([]*audit.Record, string, error)
	// EraseBodies removes the bodies of the tenant's records of subject (principal subject or
	// end user) and returns how many it removed.
	EraseBodies(ctx context.Context, tenant, subject string) (int64, error)
	// OpenBody decrypts a record's body (nil when none is kept).
	OpenBody(r *audit.Record) ([]byte, error)
}

// RegisterAudit registers AuditService on s, serving l.
func RegisterAudit(s grpc.ServiceRegistrar, l AuditLog) {
	pb.RegisterAuditServiceServer(s, &auditService{l: l})
}

type auditService struct {
	pb.UnimplementedAuditServiceServer
	l AuditLog
}

// auditTenant checks the caller holds AdminScope and may read tenant ("" = its own), and returns
// the tenant to read.
func auditTenant(ctx context.Context, tenant string) (string, error) {
	if err := authorize(ctx); err != nil {
		return "", err
	}
	p, _ := auth.FromContext(ctx) // authorize found it
	if tenant != "" && tenant != p.Tenant {
		return "", &llm.Error{Kind: llm.KindPermissionDenied, Code: "tenant_mismatch",
			Message: "the audit log of another tenant cannot be read"}
	}
	return p.Tenant, nil
}

// ListAuditRecords lists the caller's tenant's records, newest first.
func (s *auditService) ListAuditRecords(ctx context.Context, in *pb.ListAuditRecordsRequest) (*pb.ListAuditRecordsResponse, error) {
	tenant, err := auditTenant(ctx, in.GetTenant())
	if err != nil {
		return nil, err
	}
	if in.GetPageSize() < 0 {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "page_size", Message: "page_size must not be negative"}
	}
	f := audit.Filter{Tenant: tenant, Subject: in.GetSubject(), User: in.GetUser(), RequestID: in.GetRequestId(),
		PageSize: int(in.GetPageSize()), PageToken: in.GetPageToken()}
	if in.StartTime != nil {
		f.From = in.GetStartTime().AsTime()
	}
	if in.EndTime != nil {
		f.To = in.GetEndTime().AsTime()
	}
	recs, next, err := s.l.Query(ctx, f)
	if errors.Is(err, audit.ErrInvalidPageToken) {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "page_token", Message: "page_token is not one this service issued"}
	}
	if err != nil {
		return nil, llm.Wrap(llm.KindInternal, err, "audit query")
	}
	out := &pb.ListAuditRecordsResponse{NextPageToken: next, Records: make([]*pb.AuditRecord, 0, len(recs))}
	for _, r := range recs {
		pr := auditRecordToPB(r)
		if in.GetIncludeBodies() {
			b, err := s.l.OpenBody(r)
			if err != nil {
				return nil, llm.Wrap(llm.KindInternal, err, "audit body")
			}
			pr.Body = string(b)
		}
		out.Records = append(out.Records, pr)
	}
	return out, nil
}

// EraseAuditBodies erases the bodies of a subject of the caller's tenant.
func (s *auditService) EraseAuditBodies(ctx context.Context, in *pb.EraseAuditBodiesRequest) (*pb.EraseAuditBodiesResponse, error) {
	tenant, err := auditTenant(ctx, "")
	if err != nil {
		return nil, err
	}
	if in.GetSubject() == "" {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "subject", Message: "subject is required"}
	}
	n, err := s.l.EraseBodies(ctx, tenant, in.GetSubject())
	if err != nil {
		return nil, llm.Wrap(llm.KindInternal, err, "audit erase")
	}
	return &pb.EraseAuditBodiesResponse{Erased: n}, nil
}

func auditRecordToPB(r *audit.Record) *pb.AuditRecord {
	out := &pb.AuditRecord{
		Tenant: r.Tenant, Seq: r.Seq, Time: timestamppb.New(r.Time), RequestId: r.RequestID, TraceId: r.TraceID,
		Subject: r.Subject, KeyName: r.KeyName, User: r.User, Transport: r.Transport, Rpc: r.RPC, Model: r.Model,
		Target: r.Target, Attempts: int32(r.Attempts), StatusClass: r.Class, StatusCode: r.Code,
		InputTokens: r.InputTokens, OutputTokens: r.OutputTokens, UsageEstimated: r.UsageEstimated, Latency: durationpb.New(r.Latency),
		ClientAddr: r.ClientAddr, ForwardedFor: r.ForwardedFor,
		PrevHash: hex.EncodeToString(r.PrevHash), Hash: hex.EncodeToString(r.Hash),
	}
	if !r.ErasedAt.IsZero() {
		out.BodyErasedTime = timestamppb.New(r.ErasedAt)
	}
	return out
}
