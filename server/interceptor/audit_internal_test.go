package interceptor

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
)

// TestAuditClass: a call's audit class is ok, canceled, or its error kind's class, whether the
// status carries Switchyard's ErrorInfo (the kind it names) or not (the kind of its code).
func TestAuditClass(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{nil, audit.ClassOK},
		{status.Error(codes.Canceled, "gone"), audit.ClassCanceled},
		{errmap.ToStatus(llm.Errorf(llm.KindCanceled, "gone")).Err(), audit.ClassCanceled},
		{status.Error(codes.Unauthenticated, "no"), audit.ClassAuthentication},
		{errmap.ToStatus(llm.Errorf(llm.KindQuotaExceeded, "x")).Err(), audit.ClassQuota},
		{status.Error(codes.ResourceExhausted, "x"), audit.ClassQuota},
		{errmap.ToStatus(llm.Errorf(llm.KindTooLarge, "x")).Err(), audit.ClassParameter},
		{status.Error(codes.NotFound, "x"), audit.ClassParameter},
		{errmap.ToStatus(llm.Errorf(llm.KindBusiness, "x")).Err(), audit.ClassBusiness},
		{errmap.ToStatus(llm.Errorf(llm.KindUpstream, "x")).Err(), audit.ClassService},
		{status.Error(codes.Internal, "internal error"), audit.ClassService},
		{status.Error(codes.DeadlineExceeded, "x"), audit.ClassService},
	}
	for _, c := range cases {
		if got := auditClass(c.err); got != c.want {
			t.Errorf("auditClass(%v) = %q; want %q", c.err, got, c.want)
		}
	}
}
