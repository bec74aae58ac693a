package llm_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/switchyard/switchyard/internal/llm"
)

// TestKindTable pins every row of the error table: a change to how a kind reaches clients
// (gRPC code, HTTP status, OpenAI type), to its class or to its retry rule shows up here.
func TestKindTable(t *testing.T) {
	want := map[llm.Kind]llm.KindInfo{
		llm.KindInternal:         {"internal", llm.ClassService, false, "internal error", 500, "api_error", codes.Internal},
		llm.KindUnauthenticated:  {"unauthenticated", llm.ClassAuthentication, false, "invalid or missing credentials", 401, "authentication_error", codes.Unauthenticated},
		llm.KindPermissionDenied: {"permission_denied", llm.ClassAuthentication, false, "permission denied", 403, "permission_error", codes.PermissionDenied},
		llm.KindRateLimited:      {"rate_limited", llm.ClassQuota, true, "rate limit exceeded", 429, "rate_limit_error", codes.ResourceExhausted},
		llm.KindQuotaExceeded:    {"quota_exceeded", llm.ClassQuota, false, "quota exceeded", 429, "insufficient_quota", codes.ResourceExhausted},
		llm.KindInvalidArgument:  {"invalid_argument", llm.ClassParameter, false, "invalid request", 400, "invalid_request_error", codes.InvalidArgument},
		llm.KindNotFound:         {"not_found", llm.ClassParameter, false, "not found", 404, "invalid_request_error", codes.NotFound},
		llm.KindTooLarge:         {"too_large", llm.ClassParameter, false, "request too large", 413, "invalid_request_error", codes.InvalidArgument},
		llm.KindUpstream:         {"upstream_error", llm.ClassService, true, "upstream error", 502, "api_error", codes.Unavailable},
		llm.KindUnavailable:      {"unavailable", llm.ClassService, true, "upstream unavailable", 503, "api_error", codes.Unavailable},
		llm.KindTimeout:          {"timeout", llm.ClassService, true, "upstream timed out", 504, "api_error", codes.DeadlineExceeded},
		llm.KindCanceled:         {"canceled", llm.ClassService, false, "request canceled", 499, "api_error", codes.Canceled},
		llm.KindBusiness:         {"business", llm.ClassBusiness, false, "request refused by the provider", 400, "invalid_request_error", codes.FailedPrecondition},
	}
	kinds := llm.Kinds()
	if len(kinds) != len(want) {
		t.Errorf("%d kinds, the test pins %d: add the new kind's row here", len(kinds), len(want))
	}
	for _, k := range kinds {
		w, ok := want[k]
		if !ok {
			t.Errorf("kind %d (%s) has no row in this test", k, k)
			continue
		}
		if got := k.Info(); got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", w.Name, got, w)
		}
		if got, ok := llm.KindByName(w.Name); !ok || got != k {
			t.Errorf("KindByName(%q) = %v, %v; want %v", w.Name, got, ok, k)
		}
	}
	if got := llm.Kind(200).Info(); got != want[llm.KindInternal] {
		t.Errorf("an unknown kind describes as %+v; want KindInternal's row", got)
	}
}
