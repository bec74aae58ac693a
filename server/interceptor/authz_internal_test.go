package interceptor

import "testing"

// TestRequiredScope pins the scope table, including the fail-closed default for services not
// listed (new admin APIs need admin until someone decides otherwise).
func TestRequiredScope(t *testing.T) {
	cases := map[string]string{
		"/switchyard.v1.ChatService/CreateChatCompletion":  "chat:write",
		"/switchyard.v1.ChatService/StreamChatCompletion":  "chat:write",
		"/switchyard.v1.EmbeddingService/CreateEmbedding":  "embeddings:write",
		"/switchyard.v1.RerankService/Rerank":              "rerank:write",
		"/switchyard.v1.ModelService/ListModels":           "models:read",
		"/switchyard.v1.ModelService/GetModel":             "models:read",
		"/switchyard.v1.SessionService/GetSession":         "sessions:read",
		"/switchyard.v1.SessionService/ListSessions":       "sessions:read",
		"/switchyard.v1.SessionService/GetSessionHistory":  "sessions:read",
		"/switchyard.v1.SessionService/ExportUserSessions": "sessions:read",
		"/switchyard.v1.SessionService/CreateSession":      "sessions:write",
		"/switchyard.v1.SessionService/UpdateSession":      "sessions:write",
		"/switchyard.v1.SessionService/DeleteSession":      "sessions:write",
		"/switchyard.v1.SessionService/EraseUserSessions":  "sessions:write",
		"/switchyard.v1.AdminService/ReloadConfig":         "admin",
		"/switchyard.v1.AdminService/ListRoutes":           "admin",
		"/switchyard.v1.KeyService/CreateKey":              "admin",
		"/switchyard.v1.SomethingNew/Get":                  "admin",
		"/other.Service/Method":                            "admin",
		"garbage":                                          "admin",
	}
	for method, want := range cases {
		if got := requiredScope(method); got != want {
			t.Errorf("requiredScope(%q) = %q; want %q", method, got, want)
		}
	}
}
