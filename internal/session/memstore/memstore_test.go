package memstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/internal/session/sessiontest"
)

func TestContract(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T, c *sessiontest.Clock) session.Store {
		return memstore.New(memstore.WithClock(c.Now))
	}, sessiontest.Expires())
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	ctx := context.Background()
	clock := sessiontest.NewClock()
	m := memstore.New(memstore.WithMaxSessions(3), memstore.WithClock(clock.Now))
	var ss []*session.Session
	for range 3 {
		s := sessiontest.NewSession("t", "u")
		if err := m.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	if _, err := m.Get(ctx, "t", ss[0].ID); err != nil { // ss[1] is now the least recently used
		t.Fatal(err)
	}
	if err := m.Create(ctx, sessiontest.NewSession("t", "u")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, "t", ss[1].ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("least recently used session: %v, want evicted", err)
	}
	for _, s := range []*session.Session{ss[0], ss[2]} {
		if _, err := m.Get(ctx, "t", s.ID); err != nil {
			t.Errorf("recently used session %s was evicted: %v", s.ID, err)
		}
	}
	if st := m.Stats(); st.Sessions != 3 || st.Evictions != 1 {
		t.Errorf("Stats = %+v, want 3 sessions and 1 eviction", st)
	}
}

func TestPutAndInvalidate(t *testing.T) {
	ctx := context.Background()
	m := memstore.New()
	s := sessiontest.NewSession("t", "u")
	s.Version = 3
	if !m.Put(s) {
		t.Fatal("Put into an empty store refused")
	}
	older := s.Clone()
	older.Version = 2
	if m.Put(older) {
		t.Error("Put of an older version replaced a newer one")
	}
	m.Invalidate("t", s.ID, 3)
	if _, err := m.Get(ctx, "t", s.ID); err != nil {
		t.Errorf("Invalidate at the held version dropped it: %v", err)
	}
	m.Invalidate("t", s.ID, 4)
	if _, err := m.Get(ctx, "t", s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Invalidate at a newer version kept it: %v", err)
	}
}

// TestAbandonedSessionsExpire: sessions nobody reads again are dropped once expired, without
// waiting for max_sessions to push them out; a session with a longer TTL of its own stays, and
// does not keep expired sessions behind it alive past the next full sweep.
func TestAbandonedSessionsExpire(t *testing.T) {
	ctx := context.Background()
	clock := sessiontest.NewClock()
	m := memstore.New(memstore.WithTTL(time.Minute), memstore.WithClock(clock.Now))
	long := sessiontest.NewSession("t", "u")
	long.TTL = time.Hour
	if err := m.Create(ctx, long); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if err := m.Create(ctx, sessiontest.NewSession("t", "u")); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * time.Minute) // the 100 have expired, the long one has not
	if err := m.Create(ctx, sessiontest.NewSession("t", "u")); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st.Sessions != 2 || st.Expired != 100 {
		t.Errorf("after the sweep: %+v, want 2 sessions (the long one and the new one), 100 expired", st)
	}
	if _, err := m.Get(ctx, "t", long.ID); err != nil {
		t.Errorf("the session with a TTL of its own: %v", err)
	}
}
