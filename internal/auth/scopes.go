package auth

// Scopes. Each RPC needs one of them (server/interceptor's authorization table says which).
const (
	ScopeAll             = "*"                // grants every scope
	ScopeChatWrite       = "chat:write"       // ChatService
	ScopeEmbeddingsWrite = "embeddings:write" // EmbeddingService
	ScopeRerankWrite     = "rerank:write"     // RerankService
	ScopeModelsRead      = "models:read"      // ModelService
	ScopeSessionsRead    = "sessions:read"    // SessionService reads (get, list, history, export)
	ScopeSessionsWrite   = "sessions:write"   // SessionService writes (create, update, delete, erase)
	ScopeAdmin           = "admin"            // AdminService and every /admin API
)

// KnownScopes lists the scopes the built-in RPCs check. Other scopes are accepted in configs and
// tokens (they grant nothing here) so that new services can bring their own.
var KnownScopes = []string{ScopeAll, ScopeChatWrite, ScopeEmbeddingsWrite, ScopeRerankWrite, ScopeModelsRead,
	ScopeSessionsRead, ScopeSessionsWrite, ScopeAdmin}

// DefaultScopes are what a configured API key or certificate mapping without scopes grants:
// everything a client application needs, and not admin. Admin must always be granted explicitly.
var DefaultScopes = []string{ScopeChatWrite, ScopeEmbeddingsWrite, ScopeRerankWrite, ScopeModelsRead, ScopeSessionsRead, ScopeSessionsWrite}
