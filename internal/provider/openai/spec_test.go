package openai_test

import "github.com/switchyard/switchyard/internal/provider/providertest"

// checkAgainstSpec validates each request against OpenAI's official OpenAPI document (see
// shared/specs/SOURCES.md), beside the repository as CI lays it out: path, method, headers, and
// the body against CreateChatCompletionRequest or CreateEmbeddingRequest.
var checkAgainstSpec = providertest.OpenAPICheck("../../../../shared/specs/openai/openapi.yaml", "/v1")
