package keystore

import (
	"context"
	"errors"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

// Chain returns an authenticator that tries each of as in order and admits the caller as the
// first one that accepts the token. An authenticator that refuses with a KindUnauthenticated
// error passes the token on to the next one; any other error (a key store that cannot be
// reached, say) ends the chain with that error. So put the authenticators that need no I/O first:
// the configured keys, then the store.
//
// When every authenticator refuses, the answer is the first refusal that says something specific
// about the token (revoked, expired, a bad signature), else the first refusal: a refusal with
// code "", "invalid_api_key", "missing_api_key" or "missing_token" means only "not a credential I know". Chain
// panics when as is empty.
func Chain(as ...auth.Authenticator) auth.Authenticator {
	if len(as) == 0 {
		panic("keystore.Chain: no authenticators")
	}
	if len(as) == 1 {
		return as[0]
	}
	return chain(as)
}

// generic are the refusal codes that say only "not a credential I know".
var generic = map[string]bool{"": true, CodeInvalid: true, CodeMissing: true, "missing_token": true}

type chain []auth.Authenticator

func (c chain) Authenticate(ctx context.Context, token string) (*auth.Principal, error) {
	var first, specific error
	for _, a := range c {
		p, err := a.Authenticate(ctx, token)
		if err == nil {
			return p, nil
		}
		e, ok := errors.AsType[*llm.Error](err)
		if !ok || e.Kind != llm.KindUnauthenticated {
			return nil, err
		}
		if first == nil {
			first = err
		}
		if specific == nil && e.Code != "" && !generic[e.Code] {
			specific = err
		}
	}
	if specific != nil {
		return nil, specific
	}
	return nil, first
}
