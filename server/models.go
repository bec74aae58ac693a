package server

import (
	"context"
	"fmt"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/router"
)

type modelService struct {
	pb.UnimplementedModelServiceServer
	routes func() *router.Router
}

// ListModels lists the router's models and aliases the caller's credentials allow, created at
// the process's start time.
func (s *modelService) ListModels(ctx context.Context, _ *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	ms := s.routes().Models()
	p, _ := auth.FromContext(ctx)
	out := &pb.ListModelsResponse{Object: "list", Data: make([]*pb.Model, 0, len(ms))}
	for _, m := range ms {
		if p == nil || p.AllowsModel(m.ID) {
			out.Data = append(out.Data, model(m))
		}
	}
	return out, nil
}

// GetModel describes one model or alias; unknown ids are KindNotFound with code model_not_found.
func (s *modelService) GetModel(_ context.Context, in *pb.GetModelRequest) (*pb.GetModelResponse, error) {
	m, ok := s.routes().Model(in.GetId())
	if !ok {
		return nil, &llm.Error{Kind: llm.KindNotFound, Code: "model_not_found", Param: "model",
			Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", in.GetId())}
	}
	return &pb.GetModelResponse{Model: model(m)}, nil
}

func model(m router.ModelInfo) *pb.Model {
	return &pb.Model{Id: m.ID, Object: "model", Created: startTime, OwnedBy: m.OwnedBy, Target: m.Target, Type: m.Type}
}
