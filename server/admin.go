package server

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/router"
)

// AdminScope is the scope a principal needs to call AdminService. With auth mode "none" every
// caller is the anonymous principal, which holds every scope.
const AdminScope = "admin"

// Admin is what AdminService changes and reads: the running gateway (internal/app's Instance).
type Admin interface {
	// Reload re-reads the config file and applies it; an invalid config is an error
	// (KindInvalidArgument) and the running one keeps serving.
	Reload(ctx context.Context) (ReloadResult, error)
	// Repoint points the route or alias name at targets until the next reload.
	Repoint(ctx context.Context, name string, targets []string) error
	// Router returns the router serving now.
	Router() *router.Router
	// Repointed reports whether the running routing was changed by Repoint since the last
	// reload.
	Repointed() bool
}

// ReloadResult is what a reload changed.
type ReloadResult struct {
	Path          string
	ChangedRoutes []string // routes and aliases whose targets changed
	IgnoredFields []string // fields that need a restart, left as they were
}

// RegisterAdmin registers AdminService on s, serving a.
func RegisterAdmin(s grpc.ServiceRegistrar, a Admin) {
	pb.RegisterAdminServiceServer(s, &adminService{a: a})
}

type adminService struct {
	pb.UnimplementedAdminServiceServer
	a Admin
}

// authorize checks that the caller holds AdminScope.
func authorize(ctx context.Context) error {
	p, ok := auth.FromContext(ctx)
	if !ok || !p.HasScope(AdminScope) {
		return &llm.Error{Kind: llm.KindPermissionDenied, Code: "admin_scope_required",
			Message: "this call needs an API key with the \"" + AdminScope + "\" scope"}
	}
	return nil
}

// ReloadConfig re-reads the config file and swaps in the new routing.
func (s *adminService) ReloadConfig(ctx context.Context, _ *pb.ReloadConfigRequest) (*pb.ReloadConfigResponse, error) {
	if err := authorize(ctx); err != nil {
		return nil, err
	}
	res, err := s.a.Reload(ctx)
	if err != nil {
		return nil, err
	}
	return &pb.ReloadConfigResponse{Path: res.Path, ChangedRoutes: res.ChangedRoutes, IgnoredFields: res.IgnoredFields}, nil
}

// RepointRoute points a route or alias at new targets and answers with the route as it now is.
func (s *adminService) RepointRoute(ctx context.Context, in *pb.RepointRouteRequest) (*pb.RepointRouteResponse, error) {
	if err := authorize(ctx); err != nil {
		return nil, err
	}
	if in.GetName() == "" {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "name", Message: "name is required"}
	}
	if len(in.GetTargets()) == 0 {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "targets", Message: "at least one target is required"}
	}
	if err := s.a.Repoint(ctx, in.GetName(), in.GetTargets()); err != nil {
		return nil, err
	}
	rt := s.a.Router()
	live := liveState(rt)
	for _, ri := range rt.Routes() {
		if ri.Name == in.GetName() {
			return &pb.RepointRouteResponse{Route: routeStatus(ri, live)}, nil
		}
	}
	return &pb.RepointRouteResponse{}, nil
}

// ListRoutes lists the routes with their targets' live state.
func (s *adminService) ListRoutes(ctx context.Context, _ *pb.ListRoutesRequest) (*pb.ListRoutesResponse, error) {
	if err := authorize(ctx); err != nil {
		return nil, err
	}
	rt := s.a.Router()
	live := liveState(rt)
	out := &pb.ListRoutesResponse{Source: "config"}
	if s.a.Repointed() {
		out.Source = "repoint"
	}
	for _, ri := range rt.Routes() {
		out.Routes = append(out.Routes, routeStatus(ri, live))
	}
	return out, nil
}

func liveState(rt *router.Router) map[router.TargetKey]router.TargetStatus {
	m := map[router.TargetKey]router.TargetStatus{}
	for _, st := range rt.State().Snapshot() {
		m[st.Key] = st
	}
	return m
}

func routeStatus(ri router.RouteInfo, live map[router.TargetKey]router.TargetStatus) *pb.RouteStatus {
	out := &pb.RouteStatus{Name: ri.Name, Alias: ri.Alias, Strategy: string(ri.Strategy)}
	for _, t := range ri.Targets {
		st := live[t.Key()] // zero (closed, unmeasured) for a target not called yet
		out.Targets = append(out.Targets, &pb.TargetStatus{
			Model:     t.Name(),
			Weight:    t.Weight,
			Breaker:   st.Breaker.String(),
			TtftMs:    millis(st.TTFT.Seconds()),
			LatencyMs: millis(st.Total.Seconds()),
			ErrorRate: st.ErrorRate,
			InFlight:  st.InFlight,
			Successes: st.Successes,
			Failures:  st.Failures,
			Measured:  st.Measured,
		})
	}
	if sh := ri.Shadow; sh != nil {
		out.Shadow = &pb.ShadowStatus{Model: sh.Target.Name(), Percent: sh.Percent}
	}
	if c := ri.Canary; c != nil {
		out.Canary = &pb.CanaryStatus{
			Model: c.Target.Name(), Percent: c.Percent, MaxErrorRate: c.MaxErrorRate,
			MinRequests: int32(c.MinRequests), Window: durationpb.New(c.Window),
			WindowRequests: int32(c.WindowRequests), WindowFailures: int32(c.WindowFailures),
			RolledBack: c.RolledBack,
		}
		if c.RolledBack {
			out.Canary.RolledBackAt = timestamppb.New(c.RolledBackAt)
		}
	}
	return out
}

func millis(seconds float64) float64 { return seconds * 1000 }
