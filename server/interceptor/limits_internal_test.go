package interceptor

import "testing"

func TestRateLimitedRPCs(t *testing.T) {
	for m, want := range map[string]bool{
		"/switchyard.v1.ChatService/CreateChatCompletion": true,
		"/switchyard.v1.ChatService/StreamChatCompletion": true,
		"/switchyard.v1.EmbeddingService/CreateEmbedding": true,
		"/switchyard.v1.RerankService/Rerank":             true,
		"/switchyard.v1.ModelService/ListModels":          false,
		"/switchyard.v1.SessionService/CreateSession":     false,
		"/grpc.health.v1.Health/Check":                    false,
	} {
		if got := rateLimited(m); got != want {
			t.Errorf("rateLimited(%s) = %v, want %v", m, got, want)
		}
	}
}
