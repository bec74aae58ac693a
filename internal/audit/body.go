package audit

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/switchyard/switchyard/internal/seal"
)

// Redacted replaces what redaction removes.
const Redacted = "[REDACTED]"

// BodyConfig says whether bodies are kept and how.
type BodyConfig struct {
	// Enabled keeps request and response bodies (default false: metadata only).
	Enabled bool `yaml:"enabled"`
	// RedactPaths are JSON paths whose values are replaced by "[REDACTED]": dot-separated object
	// keys, "*" matching every key or array element, e.g. "request.messages.*.content".
	RedactPaths []string `yaml:"redact_paths"`
	// RedactPatterns are regular expressions (RE2) whose matches in any string value are replaced
	// by "[REDACTED]", e.g. `sk-[A-Za-z0-9_-]{16,}`.
	RedactPatterns []string `yaml:"redact_patterns"`
	// MaxBytes caps a stored body before sealing (default 64 KiB); longer bodies are cut at a
	// message boundary and marked truncated.
	MaxBytes int `yaml:"max_bytes"`
	// Encryption seals bodies (AES-256-GCM with key ids; no keys: plaintext).
	Encryption seal.Config `yaml:"encryption"`
}

// DefaultBodyMaxBytes is BodyConfig.MaxBytes's default.
const DefaultBodyMaxBytes = 64 << 10

// Redactor removes configured paths and patterns from JSON documents. It is safe for concurrent
// use.
type Redactor struct {
	paths    [][]string
	patterns []*regexp.Regexp
}

// managedKeySecret matches the secrets KeyService issues (keystore: "sk-sy-" + 64 hex digits).
// Every Redactor removes them, whatever the configuration: CreateKey's answer carries the secret
// once, and the audit log must not keep it.
var managedKeySecret = regexp.MustCompile(`sk-sy-[0-9a-f]{64}`)

// NewRedactor compiles paths and patterns; managed API key secrets are always redacted.
func NewRedactor(paths, patterns []string) (*Redactor, error) {
	r := &Redactor{patterns: []*regexp.Regexp{managedKeySecret}}
	for _, p := range paths {
		if p == "" || strings.Contains(p, "..") {
			return nil, fmt.Errorf("audit: redact path %q is malformed", p)
		}
		r.paths = append(r.paths, strings.Split(p, "."))
	}
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("audit: redact pattern %q: %w", p, err)
		}
		r.patterns = append(r.patterns, re)
	}
	return r, nil
}

// Redact returns doc with the configured paths and patterns redacted. doc is a JSON value as
// encoding/json decodes it (maps, slices, strings, ...); it is modified in place.
func (r *Redactor) Redact(doc any) any {
	if r == nil {
		return doc
	}
	for _, p := range r.paths {
		doc = redactPath(doc, p)
	}
	if len(r.patterns) > 0 {
		doc = r.redactStrings(doc)
	}
	return doc
}

func redactPath(v any, path []string) any {
	if len(path) == 0 {
		return Redacted
	}
	switch x := v.(type) {
	case map[string]any:
		if path[0] == "*" {
			for k, e := range x {
				x[k] = redactPath(e, path[1:])
			}
		} else if e, ok := x[path[0]]; ok {
			x[path[0]] = redactPath(e, path[1:])
		}
	case []any:
		if path[0] == "*" {
			for i, e := range x {
				x[i] = redactPath(e, path[1:])
			}
		}
	}
	return v
}

func (r *Redactor) redactStrings(v any) any {
	switch x := v.(type) {
	case string:
		for _, re := range r.patterns {
			x = re.ReplaceAllLiteralString(x, Redacted)
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = r.redactStrings(e)
		}
	case []any:
		for i, e := range x {
			x[i] = r.redactStrings(e)
		}
	}
	return v
}

// Body is what a record keeps of a request's payloads before redaction and sealing.
type Body struct {
	Request   json.RawMessage   `json:"request,omitempty"`
	Response  []json.RawMessage `json:"response,omitempty"` // one message per unary answer or stream message
	Truncated bool              `json:"truncated,omitempty"`
}

// bodyAD binds a sealed body to its record.
func bodyAD(r *Record) []byte {
	return fmt.Appendf(nil, "audit\x00%s\x00%s\x00%d", r.Tenant, r.RequestID, r.Time.UnixMicro())
}

// OpenBody decrypts r's body with keys (nil: plaintext). It returns nil for a record without a
// body (never kept, or erased).
func OpenBody(keys *seal.Keyring, r *Record) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := keys.Open(r.BodyKeyID, r.Body, bodyAD(r))
	if err != nil {
		return nil, fmt.Errorf("audit body %q/%d: %w", r.Tenant, r.Seq, err)
	}
	return b, nil
}

// sealBody redacts b, encodes it and seals it into r (Body, BodyKeyID, BodyDigest).
func sealBody(r *Record, b *Body, red *Redactor, keys *seal.Keyring) error {
	var doc any
	raw, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("audit body: %w", err)
	}
	if red != nil && (len(red.paths) > 0 || len(red.patterns) > 0) {
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("audit body: %w", err)
		}
		if raw, err = json.Marshal(red.Redact(doc)); err != nil {
			return fmt.Errorf("audit body: %w", err)
		}
	}
	keyID, sealed, err := keys.Seal(raw, bodyAD(r))
	if err != nil {
		return err
	}
	r.Body, r.BodyKeyID, r.BodyDigest = sealed, keyID, digest(sealed)
	return nil
}
