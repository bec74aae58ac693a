package bedrock

import (
	"context"
	"errors"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider/wireutil"
)

// codeKinds maps Bedrock's exception names (the error code the SDK reads from the
// x-amzn-ErrorType header or the body's __type, or the :exception-type of a stream event) to
// kinds. Codes not listed are classified by HTTP status.
var codeKinds = map[string]llm.Kind{
	"ThrottlingException":           llm.KindRateLimited,
	"ServiceQuotaExceededException": llm.KindQuotaExceeded,
	"ModelNotReadyException":        llm.KindUnavailable,
	"ServiceUnavailableException":   llm.KindUnavailable,
	"InternalServerException":       llm.KindUpstream,
	"ModelErrorException":           llm.KindUpstream,
	"ModelStreamErrorException":     llm.KindUpstream,
	"ModelTimeoutException":         llm.KindTimeout,
	"ValidationException":           llm.KindInvalidArgument,
	"ConflictException":             llm.KindInvalidArgument,
	"AccessDeniedException":         llm.KindPermissionDenied,
	"ResourceNotFoundException":     llm.KindNotFound,
	"UnrecognizedClientException":   llm.KindUnauthenticated,
	"InvalidSignatureException":     llm.KindUnauthenticated,
	"IncompleteSignature":           llm.KindUnauthenticated,
	"ExpiredTokenException":         llm.KindUnauthenticated,
	"MissingAuthenticationToken":    llm.KindUnauthenticated,
}

// kindMessages are the client-safe messages of the kinds codeKinds picks (the upstream's own
// message is shown only for invalid requests, as wireutil.ClassifyStatus does).
var kindMessages = map[llm.Kind]string{
	llm.KindRateLimited:      "the upstream provider's rate limit was reached",
	llm.KindQuotaExceeded:    "the upstream provider's service quota is exhausted",
	llm.KindUnavailable:      "the upstream provider is unavailable",
	llm.KindUpstream:         "the upstream provider failed",
	llm.KindTimeout:          "the upstream provider timed out",
	llm.KindPermissionDenied: "the upstream provider denied the gateway access",
	llm.KindNotFound:         "the model was not found at the upstream provider",
	llm.KindUnauthenticated:  "the upstream provider rejected the gateway's credentials",
}

// classify turns an SDK error into an *llm.Error. Context ends and transport failures go through
// wireutil.ClassifyTransport (midStream: the upstream had answered); API errors by their code,
// then by HTTP status.
func classify(ctx context.Context, provider string, err error, midStream bool) *llm.Error {
	if ctx.Err() != nil {
		return wireutil.ClassifyTransport(ctx, provider, err, midStream)
	}
	var status int
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		if status != 0 { // an error answer without Bedrock's error shape (a proxy's page, say)
			e := &llm.Error{Provider: provider, UpstreamStatus: status, UpstreamMessage: wireutil.Truncate(err.Error(), wireutil.MaxUpstreamMessage), Err: err}
			e.RetryAfter = wireutil.RetryAfter(re.Response.Header, time.Now())
			if status/100 == 2 {
				e.Kind, e.Message = llm.KindUpstream, "the upstream provider sent an invalid answer"
			} else {
				wireutil.ClassifyStatus(e, status)
			}
			return e
		}
		if strings.Contains(err.Error(), "get identity: ") {
			// The SDK's text (bedrockruntime's auth.go) for a credential chain that found no
			// credentials, or whose source (STS, SSO, IMDS) failed; it has no error type.
			e := llm.Wrap(llm.KindUnauthenticated, err, "the gateway has no valid AWS credentials for the upstream provider")
			e.Provider, e.UpstreamMessage = provider, wireutil.Truncate(err.Error(), wireutil.MaxUpstreamMessage)
			return e
		}
		return wireutil.ClassifyTransport(ctx, provider, err, midStream)
	}
	code, msg := ae.ErrorCode(), ae.ErrorMessage()
	if msg == "" {
		msg = code
	}
	e := &llm.Error{Provider: provider, UpstreamStatus: status, UpstreamMessage: wireutil.Truncate(msg, wireutil.MaxUpstreamMessage), Err: err}
	if re != nil && re.Response != nil {
		e.RetryAfter = wireutil.RetryAfter(re.Response.Header, time.Now())
	}
	k, known := codeKinds[code]
	switch {
	case known && k == llm.KindInvalidArgument:
		if isContextLength(msg) {
			e.Kind, e.Code, e.Message = llm.KindBusiness, "context_length_exceeded", e.UpstreamMessage
			return e
		}
		e.Kind, e.Message = k, e.UpstreamMessage
	case known:
		e.Kind, e.Message = k, kindMessages[k]
		if k == llm.KindNotFound {
			e.Code = "model_not_found"
		}
	case status != 0:
		wireutil.ClassifyStatus(e, status)
	default: // an unknown exception inside a stream
		e.Kind, e.Message = llm.KindUpstream, kindMessages[llm.KindUpstream]
	}
	return e
}

// isContextLength recognises Bedrock's validation errors for a prompt over the model's context
// window ("Input is too long for requested model", "prompt is too long").
func isContextLength(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "input is too long") || strings.Contains(m, "prompt is too long") ||
		strings.Contains(m, "too many input tokens")
}
