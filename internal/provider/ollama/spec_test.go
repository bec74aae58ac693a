package ollama_test

import "github.com/switchyard/switchyard/internal/provider/providertest"

// checkAgainstSpec validates each request against Ollama's official OpenAPI document (see
// shared/specs/SOURCES.md), beside the repository as CI lays it out.
var checkAgainstSpec = providertest.OpenAPICheck("../../../../shared/specs/ollama/openapi.yaml", "/")
