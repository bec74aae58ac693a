package grpcupstream

import (
	"context"
	"strconv"
	"time"

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
	info := errmap.Info(st)
	if k, ok := errmap.KindOfInfo(info); ok { // a reason this version does not know is mapped by code
		md := info.GetMetadata()
		e := &llm.Error{Kind: k, Message: st.Message(), Code: md[errmap.MetaCode], Param: md[errmap.MetaParam], Provider: name,
			UpstreamStatus: k.Info().HTTPStatus, UpstreamMessage: upstreamMsg}
		// Only an error status: the REST edge writes it as is, and net/http panics on a code
		// outside 100-999.
		if n, err := strconv.Atoi(md[errmap.MetaHTTPStatus]); err == nil && n >= 400 && n <= 599 {
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

// kindOfCode maps a status code (errmap.KindOfCode; an upstream's unnamed failures are
// KindUpstream), and says whether the status message may reach clients: only for the client's
// own mistakes and refusals, never for transport, auth or server failures.
func kindOfCode(c codes.Code, msg string) (llm.Kind, bool) {
	k, ok := errmap.KindOfCode(c, msg)
	if !ok {
		return llm.KindUpstream, false // Unknown, Internal, DataLoss, Aborted
	}
	switch k {
	case llm.KindInvalidArgument, llm.KindRateLimited, llm.KindBusiness:
		return k, true
	case llm.KindNotFound:
		return k, c != codes.Unimplemented
	}
	return k, false
}
