// Package sessiontest is the shared contract suite every session.Store runs (memory, Redis, SQL,
// tiered combinations).
package sessiontest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/seal"
	"github.com/switchyard/switchyard/internal/session"
)

// Clock is a test clock: every Now call advances it by one millisecond, so consecutive writes
// get distinct, ordered timestamps; Advance jumps ahead.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at a fixed instant.
func NewClock() *Clock { return &Clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

// Now returns the clock's time and advances it by a millisecond.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Option adjusts the suite to what a store supports.
type Option func(*options)

type options struct {
	expires     bool
	concurrency int
}

// Expires runs the TTL tests: the store's expiry follows the Clock passed to the factory.
func Expires() Option { return func(o *options) { o.expires = true } }

// Concurrency sets the number of goroutines of the read-modify-write test (16 by default).
func Concurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// NewStore returns a fresh, empty store whose timestamps (and, with Expires, expiry) follow clock.
type NewStore func(t *testing.T, clock *Clock) session.Store

// Run runs the contract suite, each subtest on a new store.
func Run(t *testing.T, newStore NewStore, opts ...Option) {
	o := options{concurrency: 16}
	for _, f := range opts {
		f(&o)
	}
	tests := []struct {
		name string
		f    func(t *testing.T, st session.Store, clock *Clock)
		skip bool
	}{
		{"CreateGet", testCreateGet, false},
		{"Update", testUpdate, false},
		{"Delete", testDelete, false},
		{"List", testList, false},
		{"TenantIsolation", testTenantIsolation, false},
		{"DeleteUser", testDeleteUser, false},
		{"Expiry", testExpiry, !o.expires},
		{"ConcurrentAppends", func(t *testing.T, st session.Store, c *Clock) { testConcurrentAppends(t, st, o.concurrency) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip {
				t.Skip("the store's expiry does not follow the test clock")
			}
			clock := NewClock()
			tc.f(t, newStore(t, clock), clock)
		})
	}
}

// Key returns a key with id and 32 fresh random bytes.
func Key(id string, primary bool) seal.Key {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return seal.Key{ID: id, Key: base64.StdEncoding.EncodeToString(b[:]), Primary: primary}
}

// Keys returns a keyring holding one fresh primary key, "test", so stores under test encrypt.
func Keys(t testing.TB) *seal.Keyring {
	t.Helper()
	k, err := seal.New(seal.Config{Keys: []seal.Key{Key("test", true)}})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewSession returns a session with a fresh UUIDv7 id and some content in every field.
func NewSession(tenant, user string) *session.Session {
	temp, max := 0.5, int32(256)
	return &session.Session{
		ID: uuid.Must(uuid.NewV7()).String(), Tenant: tenant, User: user, Model: "openai/gpt-4o",
		Params:       session.Params{Temperature: &temp, MaxTokens: &max, Stop: []string{"END"}},
		SystemPrompt: "You are terse.", Metadata: map[string]string{"app": "dify"},
		History: []session.Entry{{Message: llm.TextMessage(llm.RoleUser, "hello"), Turn: 1, At: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}},
		Turns:   1,
	}
}

func mustCreate(t *testing.T, st session.Store, s *session.Session) *session.Session {
	t.Helper()
	if err := st.Create(context.Background(), s); err != nil {
		t.Fatalf("Create %s: %v", s.ID, err)
	}
	return s
}

func testCreateGet(t *testing.T, st session.Store, _ *Clock) {
	ctx := context.Background()
	s := NewSession("t1", "alice")
	mustCreate(t, st, s)
	if s.Version != 1 || s.CreatedAt.IsZero() || s.UpdatedAt.IsZero() {
		t.Errorf("after Create: version %d, created %v, updated %v; want 1 and timestamps set", s.Version, s.CreatedAt, s.UpdatedAt)
	}
	got, err := st.Get(ctx, "t1", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameSession(got, s); err != nil {
		t.Error(err)
	}
	// The result is the caller's: changing it changes nothing stored.
	got.History[0].Message.Content[0].Text = "changed"
	got.Metadata["app"] = "changed"
	*got.Params.Temperature = 2
	again, err := st.Get(ctx, "t1", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameSession(again, s); err != nil {
		t.Errorf("a caller's edit leaked into the store: %v", err)
	}
	// So is the input of Create.
	s2 := mustCreate(t, st, NewSession("t1", "alice"))
	s2.SystemPrompt = "edited after Create"
	if got, err := st.Get(ctx, "t1", s2.ID); err != nil || got.SystemPrompt != "You are terse." {
		t.Errorf("Create kept a reference to its input: %q, %v", got.SystemPrompt, err)
	}

	dup := NewSession("t1", "bob")
	dup.ID = s.ID
	if err := st.Create(ctx, dup); !errors.Is(err, session.ErrExists) {
		t.Errorf("Create with a taken id: %v, want ErrExists", err)
	}
	if _, err := st.Get(ctx, "t1", uuid.Must(uuid.NewV7()).String()); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get of an unknown id: %v, want ErrNotFound", err)
	}
}

func sameSession(got, want *session.Session) error {
	switch {
	case got.ID != want.ID || got.Tenant != want.Tenant || got.User != want.User || got.Model != want.Model:
		return fmt.Errorf("identity: got %s/%s/%s/%s, want %s/%s/%s/%s", got.Tenant, got.ID, got.User, got.Model, want.Tenant, want.ID, want.User, want.Model)
	case got.Version != want.Version || got.Turns != want.Turns || got.Archive != want.Archive || got.TTL != want.TTL:
		return fmt.Errorf("counters: got v%d turns %d archive %v ttl %v, want v%d turns %d archive %v ttl %v", got.Version, got.Turns, got.Archive, got.TTL, want.Version, want.Turns, want.Archive, want.TTL)
	case got.SystemPrompt != want.SystemPrompt || len(got.Metadata) != len(want.Metadata) || got.Metadata["app"] != want.Metadata["app"]:
		return fmt.Errorf("prompt or metadata: got %q %v, want %q %v", got.SystemPrompt, got.Metadata, want.SystemPrompt, want.Metadata)
	case (got.Params.Temperature == nil) != (want.Params.Temperature == nil) || (got.Params.Temperature != nil && *got.Params.Temperature != *want.Params.Temperature):
		return errors.New("params: temperature differs")
	case !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt):
		return fmt.Errorf("timestamps: got %v %v, want %v %v", got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt)
	case len(got.History) != len(want.History):
		return fmt.Errorf("history: got %d entries, want %d", len(got.History), len(want.History))
	}
	for i := range got.History {
		g, w := got.History[i], want.History[i]
		if g.Turn != w.Turn || !g.At.Equal(w.At) || g.Message.Role != w.Message.Role || g.Message.Text() != w.Message.Text() {
			return fmt.Errorf("history[%d]: got %+v, want %+v", i, g, w)
		}
	}
	return nil
}

func testUpdate(t *testing.T, st session.Store, _ *Clock) {
	ctx := context.Background()
	s := mustCreate(t, st, NewSession("t1", "alice"))
	created := s.UpdatedAt
	stale := s.Clone()

	s.History = append(s.History, session.Entry{Message: llm.TextMessage(llm.RoleAssistant, "hi"), Turn: 1, At: time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)})
	s.Archive = true
	if err := st.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	if s.Version != 2 || !s.UpdatedAt.After(created) {
		t.Errorf("after Update: version %d, updated %v (created %v); want 2 and a later time", s.Version, s.UpdatedAt, created)
	}
	got, err := st.Get(ctx, "t1", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameSession(got, s); err != nil {
		t.Error(err)
	}

	stale.SystemPrompt = "lost update"
	if err := st.Update(ctx, stale); !errors.Is(err, session.ErrConflict) {
		t.Errorf("Update at a stale version: %v, want ErrConflict", err)
	}
	if stale.Version != 1 {
		t.Errorf("a refused Update changed the version to %d", stale.Version)
	}
	future := s.Clone()
	future.Version = 7
	if err := st.Update(ctx, future); !errors.Is(err, session.ErrConflict) {
		t.Errorf("Update at a future version: %v, want ErrConflict", err)
	}
	if got, _ := st.Get(ctx, "t1", s.ID); got == nil || got.SystemPrompt != "You are terse." || got.Version != 2 {
		t.Errorf("a refused Update changed the stored session: %+v", got)
	}

	gone := NewSession("t1", "alice")
	gone.Version = 1
	if err := st.Update(ctx, gone); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Update of an unknown id: %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, st session.Store, _ *Clock) {
	ctx := context.Background()
	s := mustCreate(t, st, NewSession("t1", "alice"))
	keep := mustCreate(t, st, NewSession("t1", "alice"))
	if err := st.Delete(ctx, "t1", s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "t1", s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := st.Delete(ctx, "t1", s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("second Delete: %v, want ErrNotFound", err)
	}
	if err := st.Update(ctx, s); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Update after Delete: %v, want ErrNotFound", err)
	}
	if _, err := st.Get(ctx, "t1", keep.ID); err != nil {
		t.Errorf("Delete removed another session: %v", err)
	}
	list, _, err := st.List(ctx, "t1", "alice", 10, "")
	if err != nil || len(list) != 1 || list[0].ID != keep.ID {
		t.Errorf("List after Delete: %d sessions (%v), want only %s", len(list), err, keep.ID)
	}
}

func ids(ss []*session.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func listAll(t *testing.T, st session.Store, tenant, user string, limit int) (all []*session.Session, pages int) {
	t.Helper()
	tok := ""
	for {
		page, next, err := st.List(context.Background(), tenant, user, limit, tok)
		if err != nil {
			t.Fatalf("List(%s, %q, %d, %q): %v", tenant, user, limit, tok, err)
		}
		if len(page) > limit {
			t.Fatalf("List returned %d sessions, limit %d", len(page), limit)
		}
		pages++
		all = append(all, page...)
		if next == "" {
			return all, pages
		}
		if pages > 100 {
			t.Fatal("List does not end")
		}
		tok = next
	}
}

func testList(t *testing.T, st session.Store, _ *Clock) {
	ctx := context.Background()
	var alice []*session.Session // in creation order
	for i := range 7 {
		alice = append(alice, mustCreate(t, st, NewSession("t1", "alice")))
		if i%2 == 0 {
			mustCreate(t, st, NewSession("t1", "bob"))
		}
	}
	mustCreate(t, st, NewSession("t2", "alice"))
	// Touch the oldest: it becomes the newest.
	if err := st.Update(ctx, alice[0]); err != nil {
		t.Fatal(err)
	}
	want := []string{alice[0].ID}
	for i := len(alice) - 1; i >= 1; i-- {
		want = append(want, alice[i].ID)
	}

	for _, limit := range []int{1, 3, 7, 100} {
		got, pages := listAll(t, st, "t1", "alice", limit)
		if fmt.Sprint(ids(got)) != fmt.Sprint(want) {
			t.Errorf("limit %d: got %v, want newest first %v", limit, ids(got), want)
		}
		if wantPages := (len(want) + limit - 1) / limit; pages < wantPages || pages > wantPages+1 {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}
	all, _ := listAll(t, st, "t1", "", 2)
	if len(all) != 11 {
		t.Errorf("List of every user: %d sessions, want 11", len(all))
	}
	for i := 1; i < len(all); i++ {
		if session.CursorOf(all[i]).Before(session.CursorOf(all[i-1])) {
			t.Errorf("List of every user is not newest first at %d", i)
		}
	}
	page, _, err := st.List(ctx, "t1", "alice", 2, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := sameSession(page[0], alice[0]); err != nil {
		t.Errorf("listed session differs from the stored one: %v", err)
	}
	if none, next, err := st.List(ctx, "t1", "carol", 10, ""); err != nil || len(none) != 0 || next != "" {
		t.Errorf("List of a user without sessions: %d, %q, %v", len(none), next, err)
	}
	if _, _, err := st.List(ctx, "t1", "alice", 10, "not a token!"); !errors.Is(err, session.ErrBadPageToken) {
		t.Errorf("List with a bad token: %v, want ErrBadPageToken", err)
	}
}

func testTenantIsolation(t *testing.T, st session.Store, _ *Clock) {
	ctx := context.Background()
	tenants := []string{"t1", "t2", "t3"}
	owner := map[string]*session.Session{}
	var all []*session.Session
	for _, tn := range tenants {
		for range 3 {
			s := mustCreate(t, st, NewSession(tn, "alice"))
			owner[s.ID] = s
			all = append(all, s)
		}
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := range 300 {
		s := all[rng.IntN(len(all))]
		other := tenants[rng.IntN(len(tenants))]
		if other == s.Tenant {
			other = "x-" + other
		}
		switch i % 4 {
		case 0:
			if _, err := st.Get(ctx, other, s.ID); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Get(%s, %s of %s): %v, want ErrNotFound", other, s.ID, s.Tenant, err)
			}
		case 1:
			c := s.Clone()
			c.Tenant = other
			c.SystemPrompt = "hijacked"
			if err := st.Update(ctx, c); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Update as %s of %s's session: %v, want ErrNotFound", other, s.Tenant, err)
			}
		case 2:
			if err := st.Delete(ctx, other, s.ID); !errors.Is(err, session.ErrNotFound) {
				t.Fatalf("Delete as %s of %s's session: %v, want ErrNotFound", other, s.Tenant, err)
			}
		case 3:
			list, _, err := st.List(ctx, other, "alice", 100, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range list {
				if l.Tenant != other {
					t.Fatalf("List as %s returned %s's session %s", other, l.Tenant, l.ID)
				}
			}
		}
	}
	for id, s := range owner {
		got, err := st.Get(ctx, s.Tenant, id)
		if err != nil || got.SystemPrompt != "You are terse." || got.Version != 1 {
			t.Errorf("after cross-tenant attempts, %s/%s: %+v, %v", s.Tenant, id, got, err)
		}
	}
	if n, err := st.DeleteUser(ctx, "x-t1", "alice"); err != nil || n != 0 {
		t.Errorf("DeleteUser in an empty tenant: %d, %v", n, err)
	}
	// A session created with the same id in another tenant is refused or kept apart, never merged.
	twin := NewSession("t2", "alice")
	twin.ID = all[0].ID
	twin.SystemPrompt = "twin"
	if err := st.Create(ctx, twin); err == nil {
		if got, _ := st.Get(ctx, all[0].Tenant, all[0].ID); got == nil || got.SystemPrompt != "You are terse." {
			t.Errorf("creating a twin in another tenant changed the original: %+v", got)
		}
	} else if !errors.Is(err, session.ErrExists) {
		t.Errorf("Create of a twin id in another tenant: %v", err)
	}
}

func testDeleteUser(t *testing.T, st session.Store, _ *Clock) {
	ctx := context.Background()
	for range 4 {
		mustCreate(t, st, NewSession("t1", "alice"))
	}
	bob := mustCreate(t, st, NewSession("t1", "bob"))
	other := mustCreate(t, st, NewSession("t2", "alice"))
	n, err := st.DeleteUser(ctx, "t1", "alice")
	if err != nil || n != 4 {
		t.Errorf("DeleteUser: %d, %v; want 4", n, err)
	}
	if list, _, err := st.List(ctx, "t1", "alice", 10, ""); err != nil || len(list) != 0 {
		t.Errorf("List after DeleteUser: %d sessions, %v", len(list), err)
	}
	for _, s := range []*session.Session{bob, other} {
		if _, err := st.Get(ctx, s.Tenant, s.ID); err != nil {
			t.Errorf("DeleteUser removed %s/%s of %s: %v", s.Tenant, s.ID, s.User, err)
		}
	}
	if n, err := st.DeleteUser(ctx, "t1", "alice"); err != nil || n != 0 {
		t.Errorf("second DeleteUser: %d, %v; want 0", n, err)
	}
}

func testExpiry(t *testing.T, st session.Store, clock *Clock) {
	ctx := context.Background()
	short := NewSession("t1", "alice")
	short.TTL = time.Minute
	mustCreate(t, st, short)
	deflt := mustCreate(t, st, NewSession("t1", "alice")) // TTL 0: the store's default (15 min)

	// Reads slide the expiry: three reads 45 s apart keep the 1-minute session alive.
	for i := range 3 {
		clock.Advance(45 * time.Second)
		if _, err := st.Get(ctx, "t1", short.ID); err != nil {
			t.Fatalf("read %d, 45 s after the previous one: %v", i, err)
		}
	}
	clock.Advance(61 * time.Second)
	if _, err := st.Get(ctx, "t1", short.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Get 61 s after the last read of a 1-minute session: %v, want ErrNotFound", err)
	}
	if err := st.Update(ctx, short); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Update of an expired session: %v, want ErrNotFound", err)
	}
	if _, err := st.Get(ctx, "t1", deflt.ID); err != nil {
		t.Errorf("default-TTL session after ~4 min: %v", err)
	}
	clock.Advance(16 * time.Minute)
	if _, err := st.Get(ctx, "t1", deflt.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("default-TTL session after 16 idle minutes: %v, want ErrNotFound", err)
	}
	if list, _, err := st.List(ctx, "t1", "alice", 10, ""); err != nil || len(list) != 0 {
		t.Errorf("List lists expired sessions: %d, %v", len(list), err)
	}
}

func testConcurrentAppends(t *testing.T, st session.Store, n int) {
	ctx := context.Background()
	s := mustCreate(t, st, NewSession("t1", "alice"))
	base := len(s.History)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := range n {
		wg.Go(func() {
			for attempt := 0; ; attempt++ {
				cur, err := st.Get(ctx, "t1", s.ID)
				if err != nil {
					errs <- err
					return
				}
				cur.Turns++
				cur.History = append(cur.History, session.Entry{Message: llm.TextMessage(llm.RoleUser, fmt.Sprint(g)), Turn: cur.Turns})
				err = st.Update(ctx, cur)
				if err == nil {
					return
				}
				if !errors.Is(err, session.ErrConflict) || attempt > 10*n {
					errs <- fmt.Errorf("goroutine %d attempt %d: %w", g, attempt, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := st.Get(ctx, "t1", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.History) != base+n || got.Version != int64(1+n) || got.Turns != int64(1+n) {
		t.Fatalf("after %d appends: %d entries, version %d, turns %d; want %d, %d, %d", n, len(got.History), got.Version, got.Turns, base+n, 1+n, 1+n)
	}
	seen := map[string]bool{}
	for i, e := range got.History[base:] {
		if e.Turn != int64(base+i+1) {
			t.Errorf("entry %d has turn %d, want %d", base+i, e.Turn, base+i+1)
		}
		seen[e.Message.Text()] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct writers in the history, want %d", len(seen), n)
	}
}
