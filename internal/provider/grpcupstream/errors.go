package grpcupstream

import (
	"context"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// Classify turns an error from a call into an *llm.Error of provider name. The call's ctx decides
// between canceled and timed out when it has ended. midStream says the stream had delivered
// messages: a broken connection then is an upstream error, not an unreachable upstream.
func Classify(ctx context.Context, name string, err error, midStream bool) *llm.Error {
	if cerr := ctx.Err(); cerr != nil {
		return wireutil.ClassifyTransport(ctx, name, err, midStream)
	}
	st, ok := status.FromError(err)
	if !ok {
		return &llm.Error{Kind: llm.KindInternal, Provider: name, Err: err}
	}
	e := fromStatus(st, name, midStream)
	e.Err = err
	return e
}

// fromStatus maps an upstream status. A status carrying Switchyard's ErrorInfo (an upstream
// Switchyard, or a server using internal/errmap) keeps its kind, message, code, param, HTTP status
// and retry-after. Any other status is mapped by code; its message is shown to clients only for
// the parameter, quota and business classes, where it tells the client what to change.
// UpstreamStatus is the HTTP equivalent of the status, so operators see the upstream's message
// in the error's details.
func fromStatus(st *status.Status, name string, midStream bool) *llm.Error {
	msg := wireutil.Truncate(st.Message(), wireutil.MaxUpstreamMessage)
	upstreamMsg := st.Code().String() + ": " + msg
	for _, d := range st.Details() {
		info, ok := d.(*errdetails.ErrorInfo)
		if !ok || info.GetDomain() != errmap.Domain {
			continue
		}
		k, ok := llm.KindByName(strings.ToLower(info.GetReason()))
		if !ok {
			break // a reason this version does not know: map by code
		}
		md := info.GetMetadata()
		e := &llm.Error{Kind: k, Message: st.Message(), Code: md[errmap.MetaCode], Param: md[errmap.MetaParam], Provider: name,
			UpstreamStatus: k.Info().HTTPStatus, UpstreamMessage: upstreamMsg}
		if n, err := strconv.Atoi(md[errmap.MetaHTTPStatus]); err == nil && n > 0 {
			e.UpstreamStatus = n
			if n != k.Info().HTTPStatus {
				e.HTTPStatus = n // a business 422, say
			}
		}
		if via := md[errmap.MetaUpstreamMsg]; via != "" {
			e.UpstreamMessage += " (from " + md[errmap.MetaProvider] + ": " + via + ")"
		}
		if s, err := strconv.Atoi(md[errmap.MetaRetryAfter]); err == nil && s > 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	k, showMsg := kindOfCode(st.Code(), msg)
	e := &llm.Error{Kind: k, Provider: name, UpstreamStatus: k.Info().HTTPStatus, UpstreamMessage: upstreamMsg}
	if midStream && k == llm.KindUnavailable {
		e.Kind, e.Message = llm.KindUpstream, "the upstream provider's stream broke"
	}
	if showMsg {
		e.Message = msg
	}
	return e
}

// kindOfCode maps a status code, and says whether the status message may reach clients.
func kindOfCode(c codes.Code, msg string) (llm.Kind, bool) {
	switch c {
	case codes.InvalidArgument, codes.OutOfRange, codes.AlreadyExists:
		return llm.KindInvalidArgument, true
	case codes.NotFound:
		return llm.KindNotFound, true
	case codes.Unimplemented:
		return llm.KindNotFound, false
	case codes.Unauthenticated:
		return llm.KindUnauthenticated, false
	case codes.PermissionDenied:
		return llm.KindPermissionDenied, false
	case codes.ResourceExhausted:
		// grpc-go's own message-size limits are RESOURCE_EXHAUSTED too; retrying cannot help.
		if strings.Contains(msg, "larger than max") {
			return llm.KindTooLarge, false
		}
		return llm.KindRateLimited, true
	case codes.FailedPrecondition:
		return llm.KindBusiness, true
	case codes.DeadlineExceeded:
		return llm.KindTimeout, false
	case codes.Canceled:
		return llm.KindCanceled, false
	case codes.Unavailable:
		return llm.KindUnavailable, false
	}
	return llm.KindUpstream, false // Unknown, Internal, DataLoss, Aborted
}
