package ollama_test

import "github.com/switchyard/switchyard/internal/provider/providertest"

// checkAgainstSpec validates each request against Ollama's official OpenAPI document (see
// test/specs/README.md), vendored in the repository.
var checkAgainstSpec = providertest.OpenAPICheck("../../../test/specs/ollama/openapi.yaml", "/")
