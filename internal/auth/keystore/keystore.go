// Package keystore keeps managed API keys in the SQL database (SQLite or PostgreSQL, see
// internal/database) and authenticates bearer tokens against them.
//
// A key's secret is "sk-sy-" followed by 64 lowercase hex digits (32 random bytes). It is returned
// once, by Store.Create; the store keeps only its SHA-256, the last four characters and the key's
// metadata (tenant, scopes, allowed models, expiry, revocation). Looking a key up by the hash of
// the presented token needs no constant-time comparison: learning a prefix of a hash does not
// help to find a secret.
//
// Authenticator (authenticator.go) checks tokens against a Store through a short-lived cache;
// Chain (chain.go) composes it with the configured keys.
package keystore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/database"
	"github.com/switchyard/switchyard/internal/llm"
)

// SecretPrefix starts every managed key's secret.
const SecretPrefix = "sk-sy-"

// secretLen is the length of a secret: the prefix and 64 hex digits.
const secretLen = len(SecretPrefix) + 2*32

// Limits of Create and List.
const (
	MaxNameLen      = 128
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Errors of Store methods, to test with errors.Is.
var (
	ErrNotFound = errors.New("key not found")
	ErrInvalid  = errors.New("invalid key spec")
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the schema steps of the "api_keys" component, for database.DB.Migrate.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return sub
}

// Key is a managed key's metadata. It never holds the secret.
type Key struct {
	ID        string // "key_" and 24 hex digits
	Name      string
	Tenant    string
	Scopes    []string
	Models    []string // models and aliases the key may use; empty means every model
	LastFour  string   // last four characters of the secret
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	RevokedAt time.Time // zero: not revoked
}

// Revoked reports whether the key has been revoked.
func (k *Key) Revoked() bool { return !k.RevokedAt.IsZero() }

// Expired reports whether the key has expired at now.
func (k *Key) Expired(now time.Time) bool { return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) }

// Spec describes a key to create.
type Spec struct {
	Name      string    // required, at most MaxNameLen characters
	Tenant    string    // required
	Scopes    []string  // empty: auth.DefaultScopes (never admin)
	Models    []string  // models and aliases ("provider/*" for a whole provider); empty: every model
	ExpiresAt time.Time // zero: never; otherwise must be after the store's clock
}

// ListOptions select and page List's keys.
type ListOptions struct {
	Tenant      string // "" lists every tenant
	ShowRevoked bool
	PageSize    int    // 0: DefaultPageSize; capped at MaxPageSize
	PageToken   string // the previous page's next token
}

// Store is a SQL key store, safe for concurrent use.
type Store struct {
	db  *database.DB
	now func() time.Time

	qInsert, qGet, qByHash, qRevoke string
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock for creation and revocation times (time.Now by default).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New migrates the api_keys schema in db and returns a store over it.
func New(ctx context.Context, db *database.DB, opts ...Option) (*Store, error) {
	if err := db.Migrate(ctx, "api_keys", Migrations()); err != nil {
		return nil, fmt.Errorf("keystore.New: %w", err)
	}
	s := &Store{db: db, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	const cols = `id, name, tenant, scopes, models, last_four, created_at, expires_at, revoked_at`
	r := db.Rebind
	s.qInsert = r(`INSERT INTO api_keys (id, key_hash, name, tenant, scopes, models, last_four, created_at, expires_at, revoked_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`)
	s.qGet = r(`SELECT ` + cols + ` FROM api_keys WHERE id = ?`)
	s.qByHash = r(`SELECT ` + cols + ` FROM api_keys WHERE key_hash = ?`)
	s.qRevoke = r(`UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at = 0`)
	return s, nil
}

// HashSecret returns the SHA-256 of a secret, the form in which the store knows it.
func HashSecret(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// WellFormed reports whether token has the shape of a managed key's secret, so tokens that cannot
// be one are refused without a database lookup.
func WellFormed(token string) bool {
	if len(token) != secretLen || !strings.HasPrefix(token, SecretPrefix) {
		return false
	}
	for _, c := range token[len(SecretPrefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Create stores a new key described by spec and returns it with its secret. The secret is not
// kept and cannot be retrieved again. An invalid spec is a KindInvalidArgument *llm.Error naming
// the field (Param) that matches ErrInvalid.
func (s *Store) Create(ctx context.Context, spec Spec) (*Key, string, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	if err := spec.check(now); err != nil {
		return nil, "", fmt.Errorf("keystore.Create: %w", err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, "", fmt.Errorf("keystore.Create: random secret: %w", err)
	}
	secret := SecretPrefix + hex.EncodeToString(raw[:])
	var idRaw [12]byte
	if _, err := rand.Read(idRaw[:]); err != nil {
		return nil, "", fmt.Errorf("keystore.Create: random id: %w", err)
	}
	if len(spec.Scopes) == 0 {
		spec.Scopes = auth.DefaultScopes
	}
	k := &Key{
		ID:        "key_" + hex.EncodeToString(idRaw[:]),
		Name:      spec.Name,
		Tenant:    spec.Tenant,
		Scopes:    slices.Clone(spec.Scopes),
		Models:    nonNil(slices.Clone(spec.Models)),
		LastFour:  secret[len(secret)-4:],
		CreatedAt: now,
		ExpiresAt: spec.ExpiresAt.UTC().Truncate(time.Millisecond),
	}
	scopes, _ := json.Marshal(k.Scopes) // []string always marshals
	models, _ := json.Marshal(k.Models)
	hash := HashSecret(secret)
	if _, err := s.db.ExecContext(ctx, s.qInsert, k.ID, hex.EncodeToString(hash[:]), k.Name, k.Tenant,
		string(scopes), string(models), k.LastFour, k.CreatedAt.UnixMilli(), millis(k.ExpiresAt)); err != nil {
		return nil, "", dbError("keystore.Create "+k.ID, err)
	}
	return k, secret, nil
}

func (spec *Spec) check(now time.Time) error {
	switch {
	case strings.TrimSpace(spec.Name) == "":
		return invalid("name", "name is required")
	case len(spec.Name) > MaxNameLen:
		return invalid("name", "name is longer than %d characters", MaxNameLen)
	case spec.Tenant == "":
		return invalid("tenant", "tenant is required")
	case !spec.ExpiresAt.IsZero() && !spec.ExpiresAt.After(now):
		return invalid("expire_time", "expiry %s is not in the future", spec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	for _, s := range spec.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\n") {
			return invalid("scopes", "scope %q is empty or has spaces", s)
		}
	}
	for _, m := range spec.Models {
		if m == "" {
			return invalid("models", "empty model name")
		}
	}
	return nil
}

// invalid returns a KindInvalidArgument error about param that matches ErrInvalid.
func invalid(param, format string, args ...any) error {
	return &llm.Error{Kind: llm.KindInvalidArgument, Param: param, Message: fmt.Sprintf(format, args...), Err: ErrInvalid}
}

// Get returns the key with the given id, or an ErrNotFound error.
func (s *Store) Get(ctx context.Context, id string) (*Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, s.qGet, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("keystore.Get %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, dbError("keystore.Get "+id, err)
	}
	return k, nil
}

// Lookup returns the key whose secret hashes to hash, revoked or expired keys included (the
// caller decides), or an ErrNotFound error.
func (s *Store) Lookup(ctx context.Context, hash [sha256.Size]byte) (*Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, s.qByHash, hex.EncodeToString(hash[:])))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("keystore.Lookup: %w", ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore.Lookup: %w", err)
	}
	return k, nil
}

// Revoke revokes the key with the given id and returns it as revoked. Revoking a revoked key
// keeps its first revocation time and succeeds. An unknown id is an ErrNotFound error.
func (s *Store) Revoke(ctx context.Context, id string) (*Key, error) {
	if _, err := s.db.ExecContext(ctx, s.qRevoke, s.now().UTC().UnixMilli(), id); err != nil {
		return nil, dbError("keystore.Revoke "+id, err)
	}
	k, err := s.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("keystore.Revoke: %w", err)
	}
	return k, nil
}

// List returns one page of keys, the most recently created first, and the token of the next
// page ("" on the last one). A malformed page token is an error like Create's for an invalid
// spec.
func (s *Store) List(ctx context.Context, o ListOptions) ([]*Key, string, error) {
	size := o.PageSize
	switch {
	case size <= 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	var q strings.Builder
	var args []any
	q.WriteString(`SELECT id, name, tenant, scopes, models, last_four, created_at, expires_at, revoked_at FROM api_keys WHERE 1 = 1`)
	if o.Tenant != "" {
		q.WriteString(` AND tenant = ?`)
		args = append(args, o.Tenant)
	}
	if !o.ShowRevoked {
		q.WriteString(` AND revoked_at = 0`)
	}
	if o.PageToken != "" {
		ms, id, err := parseToken(o.PageToken)
		if err != nil {
			return nil, "", fmt.Errorf("keystore.List: %w", err)
		}
		q.WriteString(` AND (created_at < ? OR (created_at = ? AND id < ?))`)
		args = append(args, ms, ms, id)
	}
	fmt.Fprintf(&q, ` ORDER BY created_at DESC, id DESC LIMIT %d`, size+1)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q.String()), args...)
	if err != nil {
		return nil, "", dbError("keystore.List", err)
	}
	defer rows.Close()
	var out []*Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, "", fmt.Errorf("keystore.List: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbError("keystore.List", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[size-1]
		next = makeToken(last.CreatedAt.UnixMilli(), last.ID)
	}
	return out, next, nil
}

// dbError is a failed database call as the error vocabulary: the context's end as canceled or
// timed out, anything else KindUnavailable (a database outage is never the caller's fault, and
// the call may be retried). op names the operation in the cause, which clients do not see.
func dbError(op string, err error) error {
	err = fmt.Errorf("%s: %w", op, err)
	switch {
	case errors.Is(err, context.Canceled):
		return llm.Wrap(llm.KindCanceled, err, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return llm.Wrap(llm.KindTimeout, err, "the API key store timed out")
	}
	return llm.Wrap(llm.KindUnavailable, err, "the API key store is unavailable")
}

func makeToken(ms int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ms, 10) + ":" + id))
}

func parseToken(tok string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		msStr, id, ok := strings.Cut(string(b), ":")
		ms, perr := strconv.ParseInt(msStr, 10, 64)
		if ok && perr == nil && id != "" {
			return ms, id, nil
		}
	}
	return 0, "", invalid("page_token", "malformed page token")
}

type scanner interface{ Scan(dest ...any) error }

func scanKey(row scanner) (*Key, error) {
	var (
		k                         Key
		scopes, models            string
		created, expires, revoked int64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Tenant, &scopes, &models, &k.LastFour, &created, &expires, &revoked); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &k.Scopes); err != nil {
		return nil, fmt.Errorf("key %s: scopes: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return nil, fmt.Errorf("key %s: models: %w", k.ID, err)
	}
	k.Scopes, k.Models = nonNil(k.Scopes), nonNil(k.Models)
	k.CreatedAt = time.UnixMilli(created).UTC()
	k.ExpiresAt = fromMillis(expires)
	k.RevokedAt = fromMillis(revoked)
	return &k, nil
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
