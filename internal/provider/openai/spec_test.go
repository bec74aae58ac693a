package openai_test

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

// specPath is OpenAI's official OpenAPI document (see shared/specs/SOURCES.md). It lives outside
// the repository, beside it, as CI lays it out.
const specPath = "../../../../shared/specs/openai/openapi.yaml"

var spec struct {
	once   sync.Once
	router routers.Router
	err    error
}

// specRouter loads the spec once per test binary (about half a second).
func specRouter(t testing.TB) routers.Router {
	t.Helper()
	spec.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromFile(specPath)
		if err != nil {
			spec.err = err
			return
		}
		doc.Servers = openapi3.Servers{{URL: "/v1"}} // match the loopback upstream's paths
		spec.router, spec.err = gorillamux.NewRouter(doc)
	})
	if spec.err != nil {
		t.Fatalf("load OpenAI spec %s: %v", specPath, spec.err)
	}
	return spec.router
}

// checkAgainstSpec fails t unless the request the adapter sent is valid for OpenAI's spec
// (path, method, headers, and the body against CreateChatCompletionRequest or
// CreateEmbeddingRequest).
func checkAgainstSpec(t testing.TB, r *http.Request, body []byte) {
	t.Helper()
	router := specRouter(t)
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s is not in the OpenAI spec: %v", r.Method, r.URL.Path, err)
		return
	}
	err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	})
	if err != nil {
		t.Errorf("request violates the OpenAI spec: %v\nbody: %s", err, body)
	}
}
