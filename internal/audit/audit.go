// Package audit keeps Switchyard's audit log: one Record per request (gRPC and REST alike),
// written off the request path by a Writer through a bounded buffer into a Sink (the SQL Store,
// or a JSON-lines file), and kept 180 days by default. While the sink is slow or down, records
// wait in a Spool on disk and reach the sink in order once it is back.
//
// # Tamper evidence
//
// Records form one hash chain per tenant: each record carries the hash of the previous record
// of its tenant (PrevHash) and its own hash (Hash), and records are numbered 1, 2, 3, ... per
// tenant (Seq). Editing, removing or reordering a record breaks the chain at that record, which
// Verify reports. Pruning removes a prefix of a tenant's chain and keeps the hash of the last
// removed record as the chain's anchor (its checkpoint), so what remains still verifies.
//
// The hash is SHA-256 over a canonical serialisation (see Record.Hash for the exact bytes).
// Bodies are not hashed themselves: the chain covers BodyDigest, the SHA-256 of the body as
// first stored (sealed when encryption is on), so a body can be erased for privacy (EraseBodies)
// while the chain, and the proof that a body existed, remain.
//
// # Privacy
//
// Bodies (request and response JSON) are kept only when enabled, after redaction, and sealed
// with the configured keys (AES-256-GCM with key ids, internal/seal). Erasing a data
// subject removes the bodies of the records whose principal subject or end user (the request's
// "user" field) is that subject; the metadata (who called what, when, with what outcome) stays
// until the retention ends, as security logging is a legitimate interest (GDPR art. 6(1)(f),
// art. 17(3)(e); CCPA §1798.105(d)). docs/audit.md states the policy.
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard/switchyard/internal/llm"
)

// DefaultRetention is how long records are kept unless configured otherwise.
const DefaultRetention = 180 * 24 * time.Hour

// HashSize is the size of PrevHash, Hash and BodyDigest.
const HashSize = sha256.Size

// Status classes (Record.Class): ok, canceled (the client went away), or the class of the
// failed call's error kind, one of llm's five error classes.
const (
	ClassOK             = "ok"
	ClassCanceled       = "canceled"
	ClassAuthentication = llm.ClassAuthentication
	ClassQuota          = llm.ClassQuota
	ClassParameter      = llm.ClassParameter
	ClassService        = llm.ClassService
	ClassBusiness       = llm.ClassBusiness
)

// UnauthenticatedTenant is the tenant chain of the records of calls refused before a principal
// was known (bad, missing or expired credentials): nothing such a caller claims is trusted, so
// its records share one chain. Tenant names starting with "_" are reserved for the gateway.
const UnauthenticatedTenant = "_unauthenticated"

// Transports (Record.Transport).
const (
	TransportGRPC = "grpc"
	TransportREST = "rest"
)

// Record is one audited request. Fields up to BodyDigest are covered by the hash chain.
type Record struct {
	Tenant       string
	Seq          int64     // position in the tenant's chain, from 1; assigned by the sink
	Time         time.Time // when the request arrived; stored with microsecond precision
	RequestID    string
	TraceID      string
	Subject      string // the principal's subject
	KeyName      string // the principal's API key name, "" for other credentials
	User         string // the end user the request names (OpenAI "user"), if any
	Transport    string // TransportGRPC or TransportREST
	RPC          string // full gRPC method, e.g. /switchyard.v1.ChatService/CreateChatCompletion
	Model        string // the model the caller asked for
	Target       string // "provider/model" that answered (or was tried last)
	Attempts     int    // upstream calls, retries and fallbacks included
	Class        string // Class* constant
	Code         string // gRPC status code name, e.g. "OK", "RESOURCE_EXHAUSTED"
	InputTokens  int64
	OutputTokens int64
	// UsageEstimated says InputTokens and OutputTokens are the gateway's estimate: the upstream
	// reported no usage (llm.Usage.Estimated). Hashed only when set (see ComputeHash).
	UsageEstimated bool
	Latency        time.Duration // stored in microseconds
	ClientAddr     string        // the peer of the gRPC call
	ForwardedFor   string        // X-Forwarded-For as the REST gateway (or a proxy) passed it
	BodyKeyID      string        // key that sealed Body, "" for plaintext
	BodyDigest     []byte        // SHA-256 of Body as first stored; nil without a body
	PrevHash       []byte        // Hash of the tenant's previous record (or the checkpoint)
	Hash           []byte        // ComputeHash(PrevHash)

	Body     []byte    // sealed request/response JSON; nil when off or erased
	ErasedAt time.Time // when Body was erased; zero if never
}

// canonicalVersion starts every hashed serialisation; a new format gets a new version.
const canonicalVersion = "switchyard.audit.v1\n"

// ComputeHash returns the hash of r chained to prev: SHA-256 of
//
//	"switchyard.audit.v1\n" || prev (32 bytes; 32 zero bytes for a tenant's first record)
//	|| the fields in this order: Tenant, Seq, Time (Unix microseconds), RequestID, TraceID,
//	   Subject, KeyName, User, Transport, RPC, Model, Target, Attempts, Class, Code, InputTokens,
//	   OutputTokens, Latency (microseconds), ClientAddr, ForwardedFor, BodyKeyID, BodyDigest
//
//	|| when UsageEstimated is set, and only then, the string "usage_estimated"
//
// where each integer is 8 bytes big-endian (two's complement) and each string or byte field is
// its length as 4 bytes big-endian followed by its bytes. The encoding is unambiguous: no two
// different records serialise to the same bytes (the optional last field is there or not after
// fields whose lengths are all known). Records written before UsageEstimated existed have it
// unset, so they hash as they always did.
func (r *Record) ComputeHash(prev []byte) []byte {
	if len(prev) == 0 {
		prev = make([]byte, HashSize)
	}
	// On the stack for records up to 1 KiB of fields (typical ones take 300-500 bytes).
	buf := make([]byte, 0, 1024)
	buf = append(append(buf, canonicalVersion...), prev...)
	buf = r.appendFields(buf)
	if r.UsageEstimated {
		buf = appendString(buf, hashedUsageEstimated)
	}
	s := sha256.Sum256(buf)
	return s[:]
}

// hashedUsageEstimated is the field ComputeHash appends for a record with UsageEstimated set.
const hashedUsageEstimated = "usage_estimated"

// appendFields appends the fields ComputeHash covers, from Tenant to BodyDigest, in its encoding.
// The spool stores records in the same encoding (spool.go).
func (r *Record) appendFields(b []byte) []byte {
	b = appendString(b, r.Tenant)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Seq))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixMicro()))
	for _, s := range []string{r.RequestID, r.TraceID, r.Subject, r.KeyName, r.User, r.Transport, r.RPC, r.Model, r.Target} {
		b = appendString(b, s)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(int64(r.Attempts)))
	b = appendString(b, r.Class)
	b = appendString(b, r.Code)
	for _, v := range []int64{r.InputTokens, r.OutputTokens, r.Latency.Microseconds()} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	b = appendString(b, r.ClientAddr)
	b = appendString(b, r.ForwardedFor)
	b = appendString(b, r.BodyKeyID)
	return appendString(b, string(r.BodyDigest))
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// errFields is returned by fieldReader for bytes appendFields did not make.
var errFields = errors.New("audit: malformed record encoding")

// fieldReader reads what appendFields wrote.
type fieldReader struct {
	b   []byte
	err error
}

func (d *fieldReader) int() int64 {
	if len(d.b) < 8 {
		d.err = errFields
		return 0
	}
	v := int64(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *fieldReader) bytes() []byte {
	if len(d.b) < 4 || uint64(len(d.b)-4) < uint64(binary.BigEndian.Uint32(d.b)) {
		d.err = errFields
		d.b = nil
		return nil
	}
	n := binary.BigEndian.Uint32(d.b)
	v := d.b[4 : 4+n : 4+n]
	d.b = d.b[4+n:]
	if n == 0 {
		return nil
	}
	return v
}

func (d *fieldReader) string() string { return string(d.bytes()) }

// readFields sets r's fields from what appendFields wrote at the start of d.
func (d *fieldReader) readFields(r *Record) {
	r.Tenant, r.Seq, r.Time = d.string(), d.int(), time.UnixMicro(d.int()).UTC()
	for _, s := range []*string{&r.RequestID, &r.TraceID, &r.Subject, &r.KeyName, &r.User, &r.Transport, &r.RPC, &r.Model, &r.Target} {
		*s = d.string()
	}
	r.Attempts = int(d.int())
	r.Class, r.Code = d.string(), d.string()
	r.InputTokens, r.OutputTokens = d.int(), d.int()
	r.Latency = time.Duration(d.int()) * time.Microsecond
	r.ClientAddr, r.ForwardedFor, r.BodyKeyID = d.string(), d.string(), d.string()
	if dg := d.bytes(); dg != nil {
		r.BodyDigest = append([]byte(nil), dg...)
	}
}

// chain sets r's Seq, PrevHash and Hash as the record after (seq, prev) and normalises Time and
// Latency to the stored precision.
func (r *Record) chain(seq int64, prev []byte) {
	r.Time = time.UnixMicro(r.Time.UnixMicro()).UTC()
	r.Latency = time.Duration(r.Latency.Microseconds()) * time.Microsecond
	if len(prev) == 0 {
		prev = make([]byte, HashSize)
	}
	r.Seq = seq
	r.PrevHash = prev
	r.Hash = r.ComputeHash(prev)
}

// sanitize makes r's text fields valid UTF-8 without NUL bytes (invalid bytes and NUL become
// U+FFFD): PostgreSQL refuses both in text, and JSON lines would not keep them as hashed.
func (r *Record) sanitize() {
	for _, s := range []*string{&r.Tenant, &r.RequestID, &r.TraceID, &r.Subject, &r.KeyName, &r.User, &r.Transport,
		&r.RPC, &r.Model, &r.Target, &r.Class, &r.Code, &r.ClientAddr, &r.ForwardedFor, &r.BodyKeyID} {
		if !utf8.ValidString(*s) || strings.IndexByte(*s, 0) >= 0 {
			*s = strings.ReplaceAll(strings.ToValidUTF8(*s, "\uFFFD"), "\x00", "\uFFFD")
		}
	}
}

// Sink stores records. Append assigns each record its Seq, PrevHash and Hash (in order, per
// tenant) and stores them; it is safe for concurrent use, also by several processes sharing the
// sink's storage where the sink says so.
type Sink interface {
	Append(ctx context.Context, recs []*Record) error
	Close() error
}

// Filter selects records for Store.Query. Tenant is required; the other fields narrow.
type Filter struct {
	Tenant    string
	From, To  time.Time // [From, To); zero: unbounded
	Subject   string    // principal subject
	User      string    // end user
	RequestID string
	PageSize  int    // default 100, at most 1000
	PageToken string // from the previous page's next token
}

// Problem is the first record of a tenant's chain that fails verification.
type Problem struct {
	Tenant string
	Seq    int64
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("tenant %q record %d: %s", p.Tenant, p.Seq, p.Reason)
}

// ErrInvalidPageToken is returned by Query for a page token it did not make.
var ErrInvalidPageToken = errors.New("audit: invalid page token")

// verifier checks one tenant's records in seq order, starting after its anchor.
type verifier struct {
	tenant  string
	seq     int64
	hash    []byte
	problem *Problem
}

func newVerifier(tenant string, anchorSeq int64, anchorHash []byte) *verifier {
	if len(anchorHash) == 0 {
		anchorHash = make([]byte, HashSize)
	}
	return &verifier{tenant: tenant, seq: anchorSeq, hash: anchorHash}
}

// next checks r; it reports false (and records the problem) at the first bad record.
func (v *verifier) next(r *Record) bool {
	if v.problem != nil {
		return false
	}
	fail := func(reason string) bool {
		v.problem = &Problem{Tenant: v.tenant, Seq: r.Seq, Reason: reason}
		return false
	}
	switch {
	case r.Seq != v.seq+1:
		return fail(fmt.Sprintf("sequence gap: expected record %d", v.seq+1))
	case !bytes.Equal(r.PrevHash, v.hash):
		return fail("previous-hash link does not match the preceding record")
	case !bytes.Equal(r.Hash, r.ComputeHash(r.PrevHash)):
		return fail("contents do not match the record's hash")
	case r.Body != nil && !bytes.Equal(digest(r.Body), r.BodyDigest):
		return fail("body does not match its digest")
	}
	v.seq, v.hash = r.Seq, r.Hash
	return true
}

// end checks the chain reached the tenant's head (no records were cut off at the end).
func (v *verifier) end(headSeq int64, headHash []byte) {
	if v.problem == nil && (v.seq != headSeq || !bytes.Equal(v.hash, headHash)) {
		v.problem = &Problem{Tenant: v.tenant, Seq: v.seq + 1,
			Reason: fmt.Sprintf("chain ends at record %d but its head is record %d", v.seq, headSeq)}
	}
}

func digest(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
