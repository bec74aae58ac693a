package providertest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// OpenAPICheck returns a Harness.Check that fails t unless a request the adapter sent is valid
// for the provider's official OpenAPI document at specPath: path, method, parameters, headers
// and body. server replaces the document's servers so that the loopback upstream's paths match
// (e.g. "/v1", or "/" for a document whose paths start at the root). The document is loaded
// once, on first use.
func OpenAPICheck(specPath, server string) func(t testing.TB, r *http.Request, body []byte) {
	var (
		once   sync.Once
		router routers.Router
		err    error
	)
	return func(t testing.TB, r *http.Request, body []byte) {
		t.Helper()
		once.Do(func() {
			var doc *openapi3.T
			if doc, err = openapi3.NewLoader().LoadFromFile(specPath); err != nil {
				return
			}
			doc.Servers = openapi3.Servers{{URL: server}}
			router, err = gorillamux.NewRouter(doc)
		})
		if err != nil {
			t.Fatalf("load OpenAPI document %s: %v", specPath, err)
		}
		req := r.Clone(context.Background())
		req.Body = io.NopCloser(bytes.NewReader(body))
		route, params, ferr := router.FindRoute(req)
		if ferr != nil {
			t.Errorf("%s %s is not in %s: %v", r.Method, r.URL.Path, specPath, ferr)
			return
		}
		verr := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		})
		if verr != nil {
			t.Errorf("request violates %s: %v\nbody: %s", specPath, verr, body)
		}
	}
}
