package openai_test

import "github.com/switchyard/switchyard/internal/provider/providertest"

// checkAgainstSpec validates each request against OpenAI's official OpenAPI document (see
// test/specs/README.md), vendored in the repository: path, method, headers, and
// the body against CreateChatCompletionRequest or CreateEmbeddingRequest.
var checkAgainstSpec = providertest.OpenAPICheck("../../../test/specs/openai/openapi.yaml", "/v1")
