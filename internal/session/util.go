package session

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Additions to the contract above, shared by every Store implementation:
//
//   - Timestamps: Create sets CreatedAt (when zero) and UpdatedAt, Update sets UpdatedAt, from the
//     store's clock at millisecond precision. List orders by (UpdatedAt, ID), newest first.
//   - Tenant, ID, User and CreatedAt are fixed at Create; Update must not change them.
//   - A bad page token is an error wrapping ErrBadPageToken.

// ErrBadPageToken is wrapped by List when the page token was not made by List.
var ErrBadPageToken = errors.New("invalid page token")

// DefaultTTL is the sliding expiry of cache tiers for sessions whose TTL is 0.
const DefaultTTL = 15 * time.Minute

// Now returns t at the precision stores keep (milliseconds, UTC).
func Now(clock func() time.Time) time.Time {
	if clock == nil {
		clock = time.Now
	}
	return clock().UTC().Truncate(time.Millisecond)
}

// Clone returns a deep copy of s.
func (s *Session) Clone() *Session {
	if s == nil {
		return nil
	}
	c := *s
	c.Params.Temperature = clonePtr(s.Params.Temperature)
	c.Params.TopP = clonePtr(s.Params.TopP)
	c.Params.MaxTokens = clonePtr(s.Params.MaxTokens)
	c.Params.PresencePenalty = clonePtr(s.Params.PresencePenalty)
	c.Params.FrequencyPenalty = clonePtr(s.Params.FrequencyPenalty)
	c.Params.Seed = clonePtr(s.Params.Seed)
	c.Params.Stop = slices.Clone(s.Params.Stop)
	c.Metadata = maps.Clone(s.Metadata)
	if s.History != nil {
		c.History = make([]Entry, len(s.History))
		for i, e := range s.History {
			e.Message.Content = slices.Clone(e.Message.Content)
			e.Message.ToolCalls = slices.Clone(e.Message.ToolCalls)
			c.History[i] = e
		}
	}
	return &c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// TTLOr returns s.TTL, or def when it is not positive.
func (s *Session) TTLOr(def time.Duration) time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return def
}

// Cursor is a position in List order: sessions after it are older, or as old with a smaller ID.
type Cursor struct {
	UpdatedMs int64 // UpdatedAt in Unix milliseconds
	ID        string
}

// CursorOf returns the position of s.
func CursorOf(s *Session) Cursor { return Cursor{s.UpdatedAt.UnixMilli(), s.ID} }

// Before reports whether c comes before d in List order (c is newer).
func (c Cursor) Before(d Cursor) bool {
	if c.UpdatedMs != d.UpdatedMs {
		return c.UpdatedMs > d.UpdatedMs
	}
	return c.ID > d.ID
}

// Token encodes c as a page token.
func (c Cursor) Token() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.UpdatedMs, 10) + ":" + c.ID))
}

// ParseToken decodes a page token; "" is the zero Cursor with ok false (start at the newest).
func ParseToken(tok string) (c Cursor, ok bool, err error) {
	if tok == "" {
		return Cursor{}, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return Cursor{}, false, fmt.Errorf("%w: %v", ErrBadPageToken, err)
	}
	ms, id, found := strings.Cut(string(b), ":")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !found || err != nil || id == "" {
		return Cursor{}, false, ErrBadPageToken
	}
	return Cursor{n, id}, true, nil
}

// SortNewest sorts sessions in List order.
func SortNewest(ss []*Session) {
	slices.SortFunc(ss, func(a, b *Session) int {
		ca, cb := CursorOf(a), CursorOf(b)
		switch {
		case ca.Before(cb):
			return -1
		case cb.Before(ca):
			return 1
		}
		return 0
	})
}

// Page cuts ss (in List order, already past the token's cursor) to limit and returns the next
// page token: "" when more is false and nothing was cut.
func Page(ss []*Session, limit int, more bool) ([]*Session, string) {
	if len(ss) > limit {
		ss, more = ss[:limit], true
	}
	if !more || len(ss) == 0 {
		return ss, ""
	}
	return ss, CursorOf(ss[len(ss)-1]).Token()
}

// Limit normalises a List limit: 50 when not positive, at most 1000.
func Limit(n int) int {
	switch {
	case n <= 0:
		return 50
	case n > 1000:
		return 1000
	}
	return n
}
