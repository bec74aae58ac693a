// Package session holds server-side conversation state: a session keeps the model, its
// parameters, the system prompt and the history, so a client can send only its new message.
//
// Manager is the use case, whatever the transport: a chat turn (Begin merges the session into
// the request, Turn.Commit appends the answer), and creating, reading, updating, exporting and
// erasing sessions with the gateway's policies. It speaks internal/llm and internal/auth; server
// maps protos onto it.
//
// Stores come in tiers (memstore, redisstore, sqlstore) behind one Store interface and one shared
// test suite (sessiontest); tiered composes them and stores.Open builds them from settings.
package session

import (
	"context"
	"errors"
	"time"

	"github.com/switchyard/switchyard/internal/llm"
)

// Errors every Store returns. A session of another tenant is ErrNotFound, indistinguishable from
// a missing one.
var (
	ErrNotFound = errors.New("session not found")
	ErrConflict = errors.New("session was changed concurrently") // the version did not match
	ErrExists   = errors.New("session already exists")
)

// Params are the model parameters a session applies to each turn unless the request sets them.
// Nil means unset.
type Params struct {
	Temperature      *float64 `json:"temperature,omitempty"`
	TopP             *float64 `json:"top_p,omitempty"`
	MaxTokens        *int32   `json:"max_tokens,omitempty"`
	Stop             []string `json:"stop,omitempty"`
	PresencePenalty  *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty *float64 `json:"frequency_penalty,omitempty"`
	Seed             *int64   `json:"seed,omitempty"`
	ReasoningEffort  string   `json:"reasoning_effort,omitempty"`
}

// Entry is one message of a session's history. Turn numbers the user turn it belongs to (1, 2,
// ...): a turn's request messages and its answer share the number.
type Entry struct {
	Message llm.Message `json:"message"`
	Turn    int64       `json:"turn"`
	At      time.Time   `json:"at"`
}

// Session is one conversation. Version increases by one on every successful write; stores use it
// for optimistic concurrency.
type Session struct {
	ID           string            `json:"id"` // UUIDv7
	Tenant       string            `json:"tenant"`
	User         string            `json:"user"` // the subject it belongs to (principal or end user)
	Model        string            `json:"model"`
	Params       Params            `json:"params"`
	SystemPrompt string            `json:"system_prompt,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
	Archive      bool              `json:"archive"` // keep in the persistent store
	TTL          time.Duration     `json:"ttl"`     // sliding expiry in the cache tiers
	History      []Entry           `json:"history"` // oldest first
	Turns        int64             `json:"turns"`   // completed turns
	Version      int64             `json:"version"` // 1 after Create
	CreatedAt    time.Time         `json:"created_at"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// Store persists sessions. Implementations are safe for concurrent use, and scope every operation
// by tenant: an id of another tenant behaves exactly like an unknown id.
type Store interface {
	// Create stores a new session (Version 0 on input; set to 1). ErrExists if the id is taken.
	Create(ctx context.Context, s *Session) error
	// Get returns the session, or ErrNotFound. The result is the caller's to modify.
	Get(ctx context.Context, tenant, id string) (*Session, error)
	// Update replaces the session if its stored version is s.Version, and then increments
	// s.Version; ErrConflict if the stored version differs, ErrNotFound if it is gone.
	Update(ctx context.Context, s *Session) error
	// Delete removes the session; ErrNotFound if absent.
	Delete(ctx context.Context, tenant, id string) error
	// List returns the tenant's sessions of user (all users when user is ""), newest first, at
	// most limit of them, starting after the page token (opaque, "" for the first page); it
	// returns the next page token, "" at the end.
	List(ctx context.Context, tenant, user string, limit int, pageToken string) ([]*Session, string, error)
	// DeleteUser erases every session of (tenant, user) and returns how many there were.
	DeleteUser(ctx context.Context, tenant, user string) (int, error)
}
