package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
)

var (
	alice = &auth.Principal{Tenant: "acme", Subject: "alice"}
	admin = &auth.Principal{Tenant: "acme", Subject: "ops", Scopes: []string{auth.ScopeAdmin}}
	other = &auth.Principal{Tenant: "globex", Subject: "alice"}
)

func newSession(t *testing.T, m *session.Manager, s *session.Session) *session.Session {
	t.Helper()
	if err := m.Create(context.Background(), alice, s); err != nil {
		t.Fatal(err)
	}
	return s
}

// summary renders a history as "turn:role:text".
func summary(h []session.Entry) []string {
	var out []string
	for _, e := range h {
		out = append(out, fmt.Sprintf("%d:%s:%s", e.Turn, e.Message.Role, e.Message.Text()))
	}
	return out
}

func TestManagerCreateDefaults(t *testing.T) {
	m := session.NewManager(memstore.New(), session.Config{})
	s := newSession(t, m, &session.Session{Model: "m"})
	if s.ID == "" || s.Tenant != "acme" || s.User != "alice" || s.TTL != session.DefaultTTL || s.Version != 1 {
		t.Errorf("created %+v; want an id, tenant acme, user alice, the default TTL, version 1", s)
	}
}

func TestManagerTurn(t *testing.T) {
	ctx := context.Background()
	m := session.NewManager(memstore.New(), session.Config{})
	s := newSession(t, m, &session.Session{Model: "m", SystemPrompt: "be brief", Params: session.Params{MaxTokens: llm.Ptr[int32](9)}})

	req := &llm.ChatRequest{Messages: []llm.Message{llm.TextMessage(llm.RoleUser, "one")}}
	turn, err := m.Begin(ctx, alice, s.ID, "", req)
	if err != nil {
		t.Fatal(err)
	}
	if turn.SessionID() != s.ID || turn.Model() != "m" || *req.MaxTokens != 9 || len(req.Messages) != 2 || req.Messages[0].Text() != "be brief" {
		t.Fatalf("turn %s model %q, request %+v; want the session's model, max_tokens and system prompt", turn.SessionID(), turn.Model(), req)
	}
	if err := turn.Commit(ctx, llm.TextMessage(llm.RoleAssistant, "re: one")); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, alice, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"1:user:one", "1:assistant:re: one"}; !slices.Equal(summary(got.History), want) || got.Turns != 1 {
		t.Errorf("history %q, %d turns; want %q", summary(got.History), got.Turns, want)
	}
}

// TestManagerCommitAfterAConcurrentTurn: the turn that commits second finds the version changed,
// re-reads the session and appends after the first, keeping its own answer.
func TestManagerCommitAfterAConcurrentTurn(t *testing.T) {
	ctx := context.Background()
	m := session.NewManager(memstore.New(), session.Config{})
	s := newSession(t, m, &session.Session{Model: "m"})
	begin := func(q string) *session.Turn {
		t.Helper()
		turn, err := m.Begin(ctx, alice, s.ID, "m", &llm.ChatRequest{Messages: []llm.Message{llm.TextMessage(llm.RoleUser, q)}})
		if err != nil {
			t.Fatal(err)
		}
		return turn
	}
	first, second := begin("a"), begin("b")
	for _, c := range []struct {
		turn *session.Turn
		q    string
	}{{second, "b"}, {first, "a"}} {
		if err := c.turn.Commit(ctx, llm.TextMessage(llm.RoleAssistant, "re: "+c.q)); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := m.Get(ctx, alice, s.ID)
	if want := []string{"1:user:b", "1:assistant:re: b", "2:user:a", "2:assistant:re: a"}; !slices.Equal(summary(got.History), want) {
		t.Errorf("history %q; want %q", summary(got.History), want)
	}
}

func TestManagerTenantScope(t *testing.T) {
	ctx := context.Background()
	m := session.NewManager(memstore.New(), session.Config{})
	id := newSession(t, m, &session.Session{Model: "m"}).ID
	for _, probe := range []string{id, "0190d8f2-7a4b-7c3d-8e5f-0123456789ab", "not-a-uuid"} {
		calls := map[string]func() error{
			"get":    func() error { _, err := m.Get(ctx, other, probe); return err },
			"update": func() error { _, err := m.Update(ctx, other, probe, func(*session.Session) {}); return err },
			"delete": func() error { return m.Delete(ctx, other, probe) },
			"begin":  func() error { _, err := m.Begin(ctx, other, probe, "m", &llm.ChatRequest{}); return err },
		}
		for name, call := range calls {
			err := call()
			var le *llm.Error
			if !errors.As(err, &le) || le.Kind != llm.KindNotFound || le.Message != `session "`+probe+`" not found` {
				t.Errorf("%s(%s) as another tenant = %v; want KindNotFound", name, probe, err)
			}
		}
	}
}

func TestManagerBeginRechecksTheSessionModel(t *testing.T) {
	m := session.NewManager(memstore.New(), session.Config{})
	id := newSession(t, m, &session.Session{Model: "up/m1"}).ID
	narrow := &auth.Principal{Tenant: "acme", Subject: "alice", Models: []string{"up/other"}}
	if _, err := m.Begin(context.Background(), narrow, id, "", &llm.ChatRequest{}); llm.KindOf(err) != llm.KindPermissionDenied {
		t.Errorf("Begin with the session's model not allowed = %v; want KindPermissionDenied", err)
	}
}

func TestManagerExportErase(t *testing.T) {
	ctx := context.Background()
	m := session.NewManager(memstore.New(), session.Config{})
	var erased []string
	m.SetUserEraser(func(_ context.Context, tenant, user string) (int64, error) {
		erased = append(erased, tenant+"/"+user)
		return 1, nil
	})
	newSession(t, m, &session.Session{Model: "m"})
	newSession(t, m, &session.Session{Model: "m", User: "bob"})
	carol := &auth.Principal{Tenant: "acme", Subject: "carol"}
	if _, err := m.Export(ctx, carol, "alice"); llm.KindOf(err) != llm.KindPermissionDenied {
		t.Errorf("export of another user without admin = %v; want KindPermissionDenied", err)
	}
	if list, err := m.Export(ctx, alice, ""); err != nil || len(list) != 1 || list[0].User != "alice" {
		t.Errorf("export of alice's own sessions = %v, %v; want her one session", list, err)
	}
	if n, err := m.Erase(ctx, admin, "bob"); err != nil || n != 1 {
		t.Errorf("erase of bob by admin = %d, %v; want 1", n, err)
	}
	if !slices.Equal(erased, []string{"acme/bob"}) {
		t.Errorf("user eraser calls %v; want [acme/bob]", erased)
	}
}
