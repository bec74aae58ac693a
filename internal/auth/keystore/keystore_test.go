package keystore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/auth/keystore"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/database/dbtest"
	"github.com/switchyard/switchyard/internal/llm"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestWellFormed(t *testing.T) {
	good := keystore.SecretPrefix + strings.Repeat("0a", 32)
	cases := []struct {
		token string
		want  bool
	}{
		{good, true},
		{"", false},
		{keystore.SecretPrefix, false},
		{good[:len(good)-1], false},
		{good + "0", false},
		{strings.ToUpper(good), false},
		{"sk-xx-" + strings.Repeat("0a", 32), false},
		{keystore.SecretPrefix + strings.Repeat("0g", 32), false},
	}
	for _, c := range cases {
		if got := keystore.WellFormed(c.token); got != c.want {
			t.Errorf("WellFormed(%q) = %v, want %v", c.token, got, c.want)
		}
	}
}

func TestStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		clk := newClock()
		st, err := keystore.New(ctx, db, keystore.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keystore.New(ctx, db); err != nil { // migrating twice is a no-op
			t.Fatalf("second New: %v", err)
		}

		t.Run("create validates", func(t *testing.T) {
			cases := []struct {
				name string
				spec keystore.Spec
				want string
			}{
				{"no name", keystore.Spec{Tenant: "a"}, "name is required"},
				{"blank name", keystore.Spec{Name: "  ", Tenant: "a"}, "name is required"},
				{"long name", keystore.Spec{Name: strings.Repeat("n", keystore.MaxNameLen+1), Tenant: "a"}, "longer than"},
				{"no tenant", keystore.Spec{Name: "k"}, "tenant is required"},
				{"past expiry", keystore.Spec{Name: "k", Tenant: "a", ExpiresAt: clk.Now().Add(-time.Second)}, "not in the future"},
				{"expiry now", keystore.Spec{Name: "k", Tenant: "a", ExpiresAt: clk.Now()}, "not in the future"},
				{"empty scope", keystore.Spec{Name: "k", Tenant: "a", Scopes: []string{""}}, "scope"},
				{"scope with space", keystore.Spec{Name: "k", Tenant: "a", Scopes: []string{"chat write"}}, "scope"},
				{"empty model", keystore.Spec{Name: "k", Tenant: "a", Models: []string{""}}, "empty model"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					k, secret, err := st.Create(ctx, c.spec)
					if !errors.Is(err, keystore.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
						t.Fatalf("Create = %v, %q, %v; want ErrInvalid containing %q", k, secret, err, c.want)
					}
				})
			}
		})

		t.Run("create, get, lookup", func(t *testing.T) {
			exp := clk.Now().Add(time.Hour)
			k, secret, err := st.Create(ctx, keystore.Spec{Name: "dify", Tenant: "acme", Scopes: []string{"chat:write"},
				Models: []string{"gpt-4o", "up/*"}, ExpiresAt: exp})
			if err != nil {
				t.Fatal(err)
			}
			if !keystore.WellFormed(secret) || k.LastFour != secret[len(secret)-4:] || !strings.HasPrefix(k.ID, "key_") {
				t.Fatalf("Create = %+v, %q; want a well-formed secret, its last four and a key_ id", k, secret)
			}
			if !k.CreatedAt.Equal(clk.Now()) || !k.ExpiresAt.Equal(exp) || k.Revoked() || k.Expired(clk.Now()) {
				t.Fatalf("Create times = %+v", k)
			}
			got, err := st.Get(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			sameKey(t, got, k)
			byHash, err := st.Lookup(ctx, keystore.HashSecret(secret))
			if err != nil {
				t.Fatal(err)
			}
			sameKey(t, byHash, k)
			if _, err := st.Lookup(ctx, keystore.HashSecret(secret+"x")); !errors.Is(err, keystore.ErrNotFound) {
				t.Errorf("Lookup(other) error = %v, want ErrNotFound", err)
			}
			if _, err := st.Get(ctx, "key_missing"); !errors.Is(err, keystore.ErrNotFound) {
				t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
			}
			// Neither the secret nor anything it can be read back from is stored: every column
			// of the row is compared with the secret.
			rows, err := db.QueryContext(ctx, db.Rebind("SELECT * FROM api_keys WHERE id = ?"), k.ID)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if !rows.Next() {
				t.Fatal("row not found")
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(secret))
			for i, v := range vals {
				s := fmt.Sprint(v)
				if b, ok := v.([]byte); ok {
					s = string(b)
				}
				if strings.Contains(s, secret[len(keystore.SecretPrefix):len(secret)-4]) {
					t.Errorf("column %s holds the secret: %q", cols[i], s)
				}
				if cols[i] == "key_hash" && s != hex.EncodeToString(sum[:]) {
					t.Errorf("key_hash = %q, want the hex SHA-256 of the secret", s)
				}
			}
		})

		t.Run("default scopes never admin", func(t *testing.T) {
			k, _, err := st.Create(ctx, keystore.Spec{Name: "plain", Tenant: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(k.Scopes, auth.DefaultScopes) || slices.Contains(k.Scopes, auth.ScopeAdmin) || len(k.Models) != 0 {
				t.Errorf("scopes %q, models %q; want the default scopes and every model", k.Scopes, k.Models)
			}
		})

		t.Run("revoke", func(t *testing.T) {
			k, secret, err := st.Create(ctx, keystore.Spec{Name: "leaked", Tenant: "acme"})
			if err != nil {
				t.Fatal(err)
			}
			clk.Add(time.Minute)
			r, err := st.Revoke(ctx, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			first := clk.Now()
			if !r.Revoked() || !r.RevokedAt.Equal(first) {
				t.Fatalf("Revoke = %+v; want revoked at %v", r, first)
			}
			clk.Add(time.Minute)
			again, err := st.Revoke(ctx, k.ID)
			if err != nil || !again.RevokedAt.Equal(first) {
				t.Fatalf("second Revoke = %+v, %v; want the first revocation time kept", again, err)
			}
			looked, err := st.Lookup(ctx, keystore.HashSecret(secret))
			if err != nil || !looked.Revoked() {
				t.Fatalf("Lookup after revoke = %+v, %v; want the key, revoked", looked, err)
			}
			if _, err := st.Revoke(ctx, "key_missing"); !errors.Is(err, keystore.ErrNotFound) {
				t.Errorf("Revoke(missing) error = %v, want ErrNotFound", err)
			}
		})
	})
}

func TestStoreList(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		clk := newClock()
		st, err := keystore.New(ctx, db, keystore.WithClock(clk.Now))
		if err != nil {
			t.Fatal(err)
		}
		var ids []string // newest first
		revoked := map[string]bool{}
		for i := range 7 {
			tenant := "a"
			if i%2 == 1 {
				tenant = "b"
			}
			k, _, err := st.Create(ctx, keystore.Spec{Name: fmt.Sprintf("k%d", i), Tenant: tenant})
			if err != nil {
				t.Fatal(err)
			}
			ids = append([]string{k.ID}, ids...)
			if i == 2 {
				if _, err := st.Revoke(ctx, k.ID); err != nil {
					t.Fatal(err)
				}
				revoked[k.ID] = true
			}
			if i != 4 { // two keys share a creation time: the id breaks the tie
				clk.Add(time.Second)
			}
		}
		byID := map[string]string{}
		created := map[string]time.Time{}
		for _, id := range ids {
			k, err := st.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			byID[id], created[id] = k.Tenant, k.CreatedAt
		}
		// Newest first; keys created in the same millisecond by descending id.
		slices.SortFunc(ids, func(x, y string) int {
			if c := created[y].Compare(created[x]); c != 0 {
				return c
			}
			return strings.Compare(y, x)
		})
		want := func(tenant string, showRevoked bool) []string {
			var out []string
			for _, id := range ids {
				if (tenant == "" || byID[id] == tenant) && (showRevoked || !revoked[id]) {
					out = append(out, id)
				}
			}
			return out
		}
		cases := []struct {
			tenant      string
			showRevoked bool
			pageSize    int
		}{
			{"", false, 0}, {"", true, 2}, {"a", false, 1}, {"a", true, 3}, {"b", true, 100}, {"none", true, 2},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%v/%d", c.tenant, c.showRevoked, c.pageSize), func(t *testing.T) {
				var got []string
				tok := ""
				for range 20 {
					page, next, err := st.List(ctx, keystore.ListOptions{Tenant: c.tenant, ShowRevoked: c.showRevoked, PageSize: c.pageSize, PageToken: tok})
					if err != nil {
						t.Fatal(err)
					}
					if c.pageSize > 0 && len(page) > c.pageSize {
						t.Fatalf("page of %d keys, size %d", len(page), c.pageSize)
					}
					for _, k := range page {
						got = append(got, k.ID)
					}
					if tok = next; tok == "" {
						break
					}
				}
				if w := want(c.tenant, c.showRevoked); !slices.Equal(got, w) {
					t.Errorf("listed %q, want %q", got, w)
				}
			})
		}
		if _, _, err := st.List(ctx, keystore.ListOptions{PageToken: "!!"}); !errors.Is(err, keystore.ErrInvalid) {
			t.Errorf("List with a bad token: %v, want ErrInvalid", err)
		}
	})
}

func sameKey(t *testing.T, got, want *keystore.Key) {
	t.Helper()
	if got.ID != want.ID || got.Name != want.Name || got.Tenant != want.Tenant || got.LastFour != want.LastFour ||
		!slices.Equal(got.Scopes, want.Scopes) || !slices.Equal(got.Models, want.Models) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.RevokedAt.Equal(want.RevokedAt) {
		t.Errorf("key = %+v, want %+v", got, want)
	}
}

// TestStoreDatabaseDown: with the database gone every call fails with KindUnavailable (503), never
// as an internal error; an unknown id is still NOT_FOUND while the database answers.
func TestStoreDatabaseDown(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		st, err := keystore.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		k, _, err := st.Create(ctx, keystore.Spec{Name: "a", Tenant: "t"})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		_, _, errCreate := st.Create(ctx, keystore.Spec{Name: "b", Tenant: "t"})
		_, errGet := st.Get(ctx, k.ID)
		_, errRevoke := st.Revoke(ctx, k.ID)
		_, _, errList := st.List(ctx, keystore.ListOptions{})
		for name, err := range map[string]error{"Create": errCreate, "Get": errGet, "Revoke": errRevoke, "List": errList} {
			if llm.KindOf(err) != llm.KindUnavailable {
				t.Errorf("%s with the database closed = %v (kind %v), want KindUnavailable", name, err, llm.KindOf(err))
			}
		}
	})
}
