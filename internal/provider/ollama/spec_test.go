package ollama_test

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

// specPath is Ollama's official OpenAPI document (see shared/specs/SOURCES.md), beside the
// repository as CI lays it out.
const specPath = "../../../../shared/specs/ollama/openapi.yaml"

var spec struct {
	once   sync.Once
	router routers.Router
	err    error
}

func specRouter(t testing.TB) routers.Router {
	t.Helper()
	spec.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromFile(specPath)
		if err != nil {
			spec.err = err
			return
		}
		doc.Servers = openapi3.Servers{{URL: "/"}} // match the loopback upstream, whatever its port
		spec.router, spec.err = gorillamux.NewRouter(doc)
	})
	if spec.err != nil {
		t.Fatalf("load Ollama spec %s: %v", specPath, spec.err)
	}
	return spec.router
}

// checkAgainstSpec fails t unless the request is valid for Ollama's spec (path, method, and the
// body against ChatRequest or EmbedRequest).
func checkAgainstSpec(t testing.TB, r *http.Request, body []byte) {
	t.Helper()
	req := r.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := specRouter(t).FindRoute(req)
	if err != nil {
		t.Errorf("%s %s is not in the Ollama spec: %v", r.Method, r.URL.Path, err)
		return
	}
	err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	})
	if err != nil {
		t.Errorf("request violates the Ollama spec: %v\nbody: %s", err, body)
	}
}
