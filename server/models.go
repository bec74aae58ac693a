package server

import (
	"context"
	"fmt"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/router"
)

type modelService struct {
	pb.UnimplementedModelServiceServer
	routes func() *router.Router
}

// ListModels lists the router's models and aliases, created at the process's start time.
func (s *modelService) ListModels(context.Context, *pb.ListModelsRequest) (*pb.ListModelsResponse, error) {
	ms := s.routes().Models()
	out := &pb.ListModelsResponse{Object: "list", Data: make([]*pb.Model, len(ms))}
	for i, m := range ms {
		out.Data[i] = model(m)
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
	return &pb.Model{Id: m.ID, Object: "model", Created: startTime, OwnedBy: m.OwnedBy, Target: m.Target}
}
