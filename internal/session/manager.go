package session

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

// DefaultMaxHistoryTokens is Config.MaxHistoryTokens's default.
const DefaultMaxHistoryTokens = 32768

const (
	// Page sizes of Manager.List.
	defaultPageSize = 50
	maxPageSize     = 1000
	// commitTimeout bounds appending a turn once the answer exists; it runs even if the client
	// has gone away, so an answer the model produced is not lost halfway.
	commitTimeout = 10 * time.Second
	// maxWriteAttempts bounds the re-read-and-write loops (Turn.Commit, Manager.Update) when
	// other writes of the same session keep winning the race.
	maxWriteAttempts = 100
)

// Config holds the policies of a Manager. The zero value uses the defaults.
type Config struct {
	// DefaultTTL is the sliding expiry of sessions created without a TTL; 0 means DefaultTTL.
	DefaultTTL time.Duration
	// MaxHistoryTokens bounds the history sent upstream with each turn, estimated as characters
	// / 4 (see Manager.Begin); 0 means DefaultMaxHistoryTokens, negative means no limit.
	MaxHistoryTokens int
}

func (c Config) withDefaults() Config {
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = DefaultTTL
	}
	if c.MaxHistoryTokens == 0 {
		c.MaxHistoryTokens = DefaultMaxHistoryTokens
	}
	return c
}

// UserEraser erases what the gateway keeps about user of tenant outside the session store (the
// audit log's bodies, audit.Store.EraseBodies), returning how many items it erased. It must be
// idempotent: a failed Manager.Erase is retried whole.
type UserEraser func(ctx context.Context, tenant, user string) (int64, error)

// Manager is the session use case over a Store: chat turns (Begin, Turn.Commit) and the
// operations of the session API, with the gateway's policies. Every operation is scoped to the
// caller's tenant (an auth.Principal, which must not be nil): another tenant's sessions, unknown
// ids and malformed ids are all the same KindNotFound error, `session "<id>" not found`, so ids
// cannot be probed. Errors are *llm.Error values (the store's causes kept for operators):
// KindInvalidArgument for bad input, KindPermissionDenied, KindCanceled or KindTimeout when ctx
// ends, KindUnavailable when the store fails. A Manager is safe for concurrent use.
type Manager struct {
	store     Store
	cfg       Config
	eraseUser UserEraser // nil: Erase erases sessions only
}

// NewManager returns the manager of the sessions in store, with cfg's policies.
func NewManager(store Store, cfg Config) *Manager {
	return &Manager{store: store, cfg: cfg.withDefaults()}
}

// SetUserEraser makes Erase also call f once the user's sessions are deleted, so one erasure
// request covers sessions and what f erases. Call it before the Manager is used; nil erases
// sessions only.
func (m *Manager) SetUserEraser(f UserEraser) { m.eraseUser = f }

// errNotFound is the one answer for an unknown id, a malformed id and another tenant's id.
func errNotFound(id string) *llm.Error {
	return llm.Errorf(llm.KindNotFound, "session %q not found", id)
}

// storeError maps a Store error to the error vocabulary: ErrNotFound → KindNotFound (the same
// message as a missing id), ErrBadPageToken → KindInvalidArgument, context errors → canceled or
// timeout, anything else (ErrConflict after the retries included) → KindUnavailable, with the
// cause kept for operators only.
func storeError(op, id string, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return errNotFound(id)
	case errors.Is(err, ErrBadPageToken):
		return &llm.Error{Kind: llm.KindInvalidArgument, Param: "page_token", Message: "invalid page_token", Err: err}
	case errors.Is(err, context.Canceled):
		return llm.Wrap(llm.KindCanceled, err, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return llm.Wrap(llm.KindTimeout, err, "session store timed out")
	}
	return llm.Wrap(llm.KindUnavailable, err, "session store unavailable: "+op)
}

// Create stores s as a new session of p's tenant with a UUIDv7 id. The caller fills the content
// (Model, which must be set, Params, SystemPrompt, Metadata, Archive); User defaults to p's
// subject and a TTL of 0 to Config.DefaultTTL. Create sets ID, Tenant, Version and the
// timestamps.
func (m *Manager) Create(ctx context.Context, p *auth.Principal, s *Session) error {
	id, err := uuid.NewV7()
	if err != nil {
		return llm.Wrap(llm.KindInternal, err, "session id")
	}
	s.ID, s.Tenant = id.String(), p.Tenant
	if s.User == "" {
		s.User = p.Subject
	}
	if s.TTL == 0 {
		s.TTL = m.cfg.DefaultTTL
	}
	if err := m.store.Create(ctx, s); err != nil {
		return storeError("create", s.ID, err)
	}
	return nil
}

// Get returns the session id of p's tenant, history included.
func (m *Manager) Get(ctx context.Context, p *auth.Principal, id string) (*Session, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, errNotFound(id)
	}
	s, err := m.store.Get(ctx, p.Tenant, id)
	if err != nil {
		return nil, storeError("get", id, err)
	}
	return s, nil
}

// List pages through the sessions of user (p's subject when "") of p's tenant, most recently
// changed first. pageSize 0 means 50, more than 1000 means 1000, negative is
// KindInvalidArgument; the page token is the one the previous page returned ("" for
// the first page). It returns the next page token, "" after the last page. The sessions may
// lack their history.
func (m *Manager) List(ctx context.Context, p *auth.Principal, user string, pageSize int, pageToken string) ([]*Session, string, error) {
	switch {
	case pageSize < 0:
		return nil, "", &llm.Error{Kind: llm.KindInvalidArgument, Param: "page_size", Message: "page_size must not be negative"}
	case pageSize == 0:
		pageSize = defaultPageSize
	case pageSize > maxPageSize:
		pageSize = maxPageSize
	}
	if user == "" {
		user = p.Subject
	}
	list, next, err := m.store.List(ctx, p.Tenant, user, pageSize, pageToken)
	if err != nil {
		return nil, "", storeError("list", "", err)
	}
	return list, next, nil
}

// Update applies change to the session id of p's tenant and stores it. When a concurrent write
// (a chat turn) wins the race, Update re-reads the session and applies change again, so no turn
// is lost; change must therefore only set fields, not depend on how often it runs. It returns
// the session as stored.
func (m *Manager) Update(ctx context.Context, p *auth.Principal, id string, change func(*Session)) (*Session, error) {
	for attempt := 1; ; attempt++ {
		s, err := m.Get(ctx, p, id)
		if err != nil {
			return nil, err
		}
		change(s)
		err = m.store.Update(ctx, s)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrConflict) || attempt == maxWriteAttempts {
			return nil, storeError("update", id, err)
		}
	}
}

// Delete removes the session id of p's tenant from every tier.
func (m *Manager) Delete(ctx context.Context, p *auth.Principal, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return errNotFound(id)
	}
	if err := m.store.Delete(ctx, p.Tenant, id); err != nil {
		return storeError("delete", id, err)
	}
	return nil
}

// Export returns every session of user of p's tenant with its history (GDPR art. 15/20). user
// "" is p's own subject; another user needs the auth.ScopeAdmin scope (KindPermissionDenied).
func (m *Manager) Export(ctx context.Context, p *auth.Principal, user string) ([]*Session, error) {
	user, err := subjectOf(p, user)
	if err != nil {
		return nil, err
	}
	var out []*Session
	token := ""
	for {
		list, next, err := m.store.List(ctx, p.Tenant, user, maxPageSize, token)
		if err != nil {
			return nil, storeError("export", "", err)
		}
		for _, l := range list {
			s, err := m.store.Get(ctx, p.Tenant, l.ID) // List need not carry the history
			if errors.Is(err, ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, storeError("export", l.ID, err)
			}
			out = append(out, s)
		}
		if next == "" {
			return out, nil
		}
		token = next
	}
}

// Erase deletes every session of user of p's tenant (GDPR art. 17), then calls the UserEraser
// (SetUserEraser), and returns how many sessions it deleted. user is checked as by Export. If
// the eraser fails Erase fails (KindUnavailable) after deleting the sessions; both steps are
// idempotent, so the caller retries.
func (m *Manager) Erase(ctx context.Context, p *auth.Principal, user string) (int, error) {
	user, err := subjectOf(p, user)
	if err != nil {
		return 0, err
	}
	n, err := m.store.DeleteUser(ctx, p.Tenant, user)
	if err != nil {
		return 0, storeError("erase", "", err)
	}
	if m.eraseUser != nil {
		if _, err := m.eraseUser(ctx, p.Tenant, user); err != nil {
			return 0, llm.Wrap(llm.KindUnavailable, err, "audit log unavailable: erase the user's audit bodies (the sessions are erased; retry)")
		}
	}
	return n, nil
}

// subjectOf returns the user a GDPR request is about: user, or p's own subject when user is
// empty. Naming another user needs the admin scope.
func subjectOf(p *auth.Principal, user string) (string, error) {
	if user == "" || user == p.Subject {
		return p.Subject, nil
	}
	if !p.HasScope(auth.ScopeAdmin) {
		return "", llm.Errorf(llm.KindPermissionDenied, "exporting or erasing another user's sessions needs the %q scope", auth.ScopeAdmin)
	}
	return user, nil
}
