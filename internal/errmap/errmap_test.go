package errmap

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/internal/llm"
)

// TestFromStatusByCode: statuses without ErrorInfo (gRPC's own, other servers') get a kind by
// code, its HTTP status, and a message that is the status's own only for client-side mistakes.
func TestFromStatusByCode(t *testing.T) {
	cases := []struct {
		code     codes.Code
		msg      string
		wantHTTP int
		wantType string
		wantMsg  string
	}{
		{codes.InvalidArgument, "bad temperature", http.StatusBadRequest, "invalid_request_error", "bad temperature"},
		{codes.AlreadyExists, "dup", http.StatusBadRequest, "invalid_request_error", "dup"},
		{codes.NotFound, "no such model", http.StatusNotFound, "invalid_request_error", "no such model"},
		{codes.Unimplemented, "unknown service x", http.StatusNotFound, "invalid_request_error", "not implemented"},
		{codes.Unauthenticated, "bad key", http.StatusUnauthorized, "authentication_error", "bad key"},
		{codes.ResourceExhausted, "slow down", http.StatusTooManyRequests, "rate_limit_error", "slow down"},
		{codes.ResourceExhausted, "grpc: received message larger than max (5 vs. 4)", http.StatusRequestEntityTooLarge, "invalid_request_error", "request too large"},
		{codes.FailedPrecondition, "context too long", http.StatusBadRequest, "invalid_request_error", "context too long"},
		{codes.DeadlineExceeded, "ctx deadline", http.StatusGatewayTimeout, "api_error", "request timed out"},
		{codes.Unavailable, "connection refused 10.0.0.1", http.StatusServiceUnavailable, "api_error", "service unavailable"},
		{codes.Internal, "nil pointer in foo.go", http.StatusInternalServerError, "api_error", "internal error"},
		{codes.Unknown, "boom", http.StatusInternalServerError, "api_error", "internal error"},
	}
	for _, c := range cases {
		he := FromStatus(status.New(c.code, c.msg))
		if he.Status != c.wantHTTP || he.Body.Error.Type != c.wantType || he.Body.Error.Message != c.wantMsg {
			t.Errorf("%v %q → %d %q %q; want %d %q %q", c.code, c.msg, he.Status, he.Body.Error.Type, he.Body.Error.Message, c.wantHTTP, c.wantType, c.wantMsg)
		}
	}
}

// TestToStatusRoundTrip: an llm.Error keeps its HTTP status, type, code and param through ErrorInfo.
func TestToStatusRoundTrip(t *testing.T) {
	e := &llm.Error{Kind: llm.KindBusiness, Message: "too long", Code: "context_length_exceeded", Param: "messages", HTTPStatus: 422}
	he := FromStatus(ToStatus(e))
	if he.Status != 422 || he.Class != llm.ClassBusiness || *he.Body.Error.Code != "context_length_exceeded" || *he.Body.Error.Param != "messages" {
		t.Errorf("round trip = %+v", he)
	}
	if k, ok := KindOfCode(codes.Aborted, ""); ok || k != llm.KindInternal {
		t.Errorf("KindOfCode(Aborted) = %v, %v; want no cause named", k, ok)
	}
}

// TestKindOfCodeFollowsTable: each code only one kind has maps back to that kind (but INTERNAL,
// which from a foreign server names no cause); codes several kinds share map to the chosen one.
func TestKindOfCodeFollowsTable(t *testing.T) {
	users := map[codes.Code]int{}
	for _, k := range llm.Kinds() {
		users[k.Info().GRPCCode]++
	}
	for _, k := range llm.Kinds() {
		c := k.Info().GRPCCode
		if users[c] > 1 || c == codes.Internal {
			continue
		}
		if got, ok := KindOfCode(c, ""); !ok || got != k {
			t.Errorf("KindOfCode(%v) = %v, %v; want %v", c, got, ok, k)
		}
	}
	shared := map[codes.Code]llm.Kind{
		codes.ResourceExhausted: llm.KindRateLimited,
		codes.InvalidArgument:   llm.KindInvalidArgument,
		codes.Unavailable:       llm.KindUnavailable,
	}
	for c, want := range shared {
		if users[c] < 2 {
			t.Errorf("%v is no longer shared by several kinds: drop its choice in kindOfCode", c)
		}
		if got, ok := KindOfCode(c, ""); !ok || got != want {
			t.Errorf("KindOfCode(%v) = %v, %v; want %v", c, got, ok, want)
		}
	}
	for _, c := range []codes.Code{codes.Unknown, codes.Internal, codes.DataLoss, codes.Aborted, codes.Code(99)} {
		if k, ok := KindOfCode(c, ""); ok || k != llm.KindInternal {
			t.Errorf("KindOfCode(%v) = %v, %v; want no cause named", c, k, ok)
		}
	}
}

// TestKindOf: the kind of an error whatever form it reached the caller in.
func TestKindOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want llm.Kind
	}{
		{"llm error", llm.Errorf(llm.KindQuotaExceeded, "x"), llm.KindQuotaExceeded},
		{"llm error wrapping a status", &llm.Error{Kind: llm.KindUpstream, Err: status.Error(codes.InvalidArgument, "x")}, llm.KindUpstream},
		{"status with ErrorInfo", ToStatus(llm.Errorf(llm.KindQuotaExceeded, "x")).Err(), llm.KindQuotaExceeded},
		{"status with ErrorInfo, shared code", ToStatus(llm.Errorf(llm.KindTooLarge, "x")).Err(), llm.KindTooLarge},
		{"bare status", status.Error(codes.PermissionDenied, "x"), llm.KindPermissionDenied},
		{"bare status naming no cause", status.Error(codes.Unknown, "x"), llm.KindInternal},
		{"context error", context.Canceled, llm.KindCanceled},
		{"plain error", errors.New("x"), llm.KindInternal},
	}
	for _, c := range cases {
		if got := KindOf(c.err); got != c.want {
			t.Errorf("%s: KindOf = %v; want %v", c.name, got, c.want)
		}
	}
}
