package auth

import (
	"context"
	"strings"

	"github.com/switchyard/switchyard/internal/llm"
)

// Resolve is the one rule turning a request's Authorization header value into a principal, used by
// the gRPC auth interceptor and by the REST edge's early check, so both decide alike:
//   - "Bearer <token>" (scheme case-insensitive) hands the token to a; an empty header is the empty
//     token (a decides: mode none and a client certificate in ctx admit it);
//   - another scheme is the empty token too, and a's refusal is replaced by one naming the scheme;
//   - a principal of a tenant starting with "_" (the gateway's own, e.g. the audit log's
//     "_unauthenticated" chain) is refused.
//
// Errors are *llm.Error of KindUnauthenticated, or whatever a returns (KindUnavailable when a key
// store is down).
func Resolve(ctx context.Context, a Authenticator, header string) (*Principal, error) {
	token, schemeErr := bearerToken(header)
	p, err := a.Authenticate(ctx, token)
	if err != nil {
		if schemeErr != nil {
			err = schemeErr
		}
		return nil, err
	}
	if strings.HasPrefix(p.Tenant, "_") {
		return nil, &llm.Error{Kind: llm.KindUnauthenticated, Code: "invalid_tenant",
			Message: "the credential names a reserved tenant"}
	}
	return p, nil
}

// bearerToken returns the token of "Bearer <token>" (scheme case-insensitive), "" for an empty
// header, and "" with an error for any other scheme.
func bearerToken(header string) (string, error) {
	v := strings.TrimSpace(header)
	if v == "" {
		return "", nil
	}
	scheme, token, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "bearer") {
		return "", &llm.Error{Kind: llm.KindUnauthenticated, Code: "invalid_api_key",
			Message: "The authorization header must use the Bearer scheme: 'Authorization: Bearer <key>'."}
	}
	return strings.TrimSpace(token), nil
}

// AdmitsEveryone reports whether a is mode none's authenticator, which admits every caller: an
// early check with it has nothing to refuse.
func AdmitsEveryone(a Authenticator) bool {
	_, ok := a.(noneAuth)
	return ok
}
