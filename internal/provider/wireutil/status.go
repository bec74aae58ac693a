package wireutil

import (
	"net/http"

	"github.com/switchyard/switchyard/internal/llm"
)

// ClassifyStatus sets e's Kind, Code and client Message from an upstream HTTP error status.
// Only for 400 and 422 is the upstream's own message (e.UpstreamMessage, when set) shown to the
// client, because it helps fix the request; other statuses get a fixed sentence. 5xx and unknown
// statuses are KindUpstream, except 503 (KindUnavailable) and 504 (KindTimeout); 529 (overloaded)
// is KindRateLimited.
func ClassifyStatus(e *llm.Error, status int) {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		e.Kind, e.Message = llm.KindInvalidArgument, e.UpstreamMessage
		if e.Message == "" {
			e.Message = "the upstream provider rejected the request"
		}
	case http.StatusUnauthorized:
		e.Kind, e.Message = llm.KindUnauthenticated, "the upstream provider rejected the gateway's credentials"
	case http.StatusForbidden:
		e.Kind, e.Message = llm.KindPermissionDenied, "the upstream provider denied the gateway access"
	case http.StatusNotFound:
		e.Kind, e.Code = llm.KindNotFound, "model_not_found"
		e.Message = "the model was not found at the upstream provider"
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		e.Kind, e.Message = llm.KindTimeout, "the upstream provider timed out"
	case http.StatusRequestEntityTooLarge:
		e.Kind, e.Message = llm.KindTooLarge, "the request is too large for the upstream provider"
	case http.StatusPaymentRequired:
		e.Kind, e.Code = llm.KindQuotaExceeded, "insufficient_quota"
		e.Message = "the upstream provider's quota is exhausted"
	case http.StatusTooManyRequests:
		e.Kind, e.Message = llm.KindRateLimited, "the upstream provider's rate limit was reached"
	case http.StatusServiceUnavailable:
		e.Kind, e.Message = llm.KindUnavailable, "the upstream provider is unavailable"
	case 529: // overloaded (Anthropic's status, sent by some compatible proxies)
		e.Kind, e.Message = llm.KindRateLimited, "the upstream provider is overloaded"
	default: // 500, 502 and anything unexpected
		e.Kind, e.Message = llm.KindUpstream, "the upstream provider failed"
	}
}
