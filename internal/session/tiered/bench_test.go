package tiered_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchyard/switchyard/internal/database/dbtest"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/redisx/redistest"
	"github.com/switchyard/switchyard/internal/session"
	"github.com/switchyard/switchyard/internal/session/memstore"
	"github.com/switchyard/switchyard/internal/session/redisstore"
	"github.com/switchyard/switchyard/internal/session/sessiontest"
	"github.com/switchyard/switchyard/internal/session/sqlstore"
	"github.com/switchyard/switchyard/internal/session/tiered"
)

// benchStores are the tiers alone and the tiered store answering from each tier, all with
// encryption on.
func benchStores(b *testing.B) []struct {
	name string
	st   session.Store
} {
	ctx := context.Background()
	keys := sessiontest.Keys(b)
	rdb := redistest.Client(b)
	newRedis := func() *redisstore.Store {
		return redisstore.New(rdb, keys, redisstore.WithPrefix(redistest.Prefix(b, rdb)))
	}
	newSQL := func(pg bool) *sqlstore.Store {
		db := dbtest.SQLite(b)
		if pg {
			db = dbtest.Postgres(b)
		}
		st, err := sqlstore.New(ctx, db, keys)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	newTiered := func(cfg tiered.Config) session.Store {
		cfg.Archive = archiveAll
		st, err := tiered.New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return st
	}
	return []struct {
		name string
		st   session.Store
	}{
		{"memstore", memstore.New()},
		{"redisstore", newRedis()},
		{"sqlstore-sqlite", newSQL(false)},
		{"sqlstore-postgres", newSQL(true)},
		{"tiered-memory-hit", newTiered(tiered.Config{Memory: memstore.New(), Redis: newRedis(), SQL: newSQL(false)})},
		{"tiered-memory-hit-strict", newTiered(tiered.Config{Memory: memstore.New(), Redis: newRedis(), SQL: newSQL(false), StrictReads: true})},
		{"tiered-redis-hit", newTiered(tiered.Config{Redis: newRedis(), SQL: newSQL(false)})},
		{"tiered-sql-hit", newTiered(tiered.Config{SQL: newSQL(false)})},
	}
}

// benchSession has ten turns of a few hundred bytes each.
func benchSession() *session.Session {
	s := sessiontest.NewSession("bench", "alice")
	s.History = nil
	for i := range 10 {
		s.History = append(s.History,
			session.Entry{Message: llm.TextMessage(llm.RoleUser, fmt.Sprintf("question %d: %0200d", i, i)), Turn: int64(i + 1)},
			session.Entry{Message: llm.TextMessage(llm.RoleAssistant, fmt.Sprintf("answer %d: %0400d", i, i)), Turn: int64(i + 1)})
	}
	s.Turns = 10
	return s
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := benchSession()
			if err := bs.st.Create(ctx, s); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bs.st.Get(ctx, "bench", s.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUpdate(b *testing.B) {
	ctx := context.Background()
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := benchSession()
			if err := bs.st.Create(ctx, s); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Metadata["n"] = fmt.Sprint(s.Version)
				if err := bs.st.Update(ctx, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
