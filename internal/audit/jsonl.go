package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"sync"
	"time"
)

// JSONLSink appends records to a file as JSON lines, one record per line, for log shippers to
// tail. It does not rotate the file: rotating by renaming would split a chain across files that
// VerifyJSONL reads one at a time, so retention and archiving belong to the log pipeline (or use
// the SQL Store, which prunes). One process writes a file: the chain heads live in memory,
// recovered from the file when it is opened.
type JSONLSink struct {
	mu    sync.Mutex
	f     *os.File
	w     *bufio.Writer
	heads map[string]jsonHead
}

type jsonHead struct {
	seq  int64
	hash []byte
}

var _ Sink = (*JSONLSink)(nil)

// jsonRecord is the line format. Byte fields are base64 (encoding/json's []byte encoding).
type jsonRecord struct {
	Tenant       string `json:"tenant"`
	Seq          int64  `json:"seq"`
	Time         string `json:"time"` // RFC 3339 with microseconds, UTC
	RequestID    string `json:"request_id"`
	TraceID      string `json:"trace_id,omitempty"`
	Subject      string `json:"subject"`
	KeyName      string `json:"key_name,omitempty"`
	User         string `json:"user,omitempty"`
	Transport    string `json:"transport"`
	RPC          string `json:"rpc"`
	Model        string `json:"model,omitempty"`
	Target       string `json:"target,omitempty"`
	Attempts     int    `json:"attempts"`
	Class        string `json:"class"`
	Code         string `json:"code"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	Estimated    bool   `json:"usage_estimated,omitempty"`
	LatencyUS    int64  `json:"latency_us"`
	ClientAddr   string `json:"client_addr,omitempty"`
	ForwardedFor string `json:"forwarded_for,omitempty"`
	BodyKeyID    string `json:"body_key_id,omitempty"`
	BodyDigest   []byte `json:"body_digest,omitempty"`
	Body         []byte `json:"body,omitempty"`
	PrevHash     []byte `json:"prev_hash"`
	Hash         []byte `json:"hash"`
}

const jsonTime = "2006-01-02T15:04:05.000000Z07:00"

func toJSON(r *Record) jsonRecord {
	return jsonRecord{r.Tenant, r.Seq, r.Time.UTC().Format(jsonTime), r.RequestID, r.TraceID, r.Subject, r.KeyName,
		r.User, r.Transport, r.RPC, r.Model, r.Target, r.Attempts, r.Class, r.Code, r.InputTokens, r.OutputTokens,
		r.UsageEstimated, r.Latency.Microseconds(), r.ClientAddr, r.ForwardedFor, r.BodyKeyID, r.BodyDigest, r.Body, r.PrevHash, r.Hash}
}

func (j *jsonRecord) record() (*Record, error) {
	t, err := time.Parse(jsonTime, j.Time)
	if err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	return &Record{Tenant: j.Tenant, Seq: j.Seq, Time: t.UTC(), RequestID: j.RequestID, TraceID: j.TraceID,
		Subject: j.Subject, KeyName: j.KeyName, User: j.User, Transport: j.Transport, RPC: j.RPC, Model: j.Model,
		Target: j.Target, Attempts: j.Attempts, Class: j.Class, Code: j.Code, InputTokens: j.InputTokens,
		OutputTokens: j.OutputTokens, UsageEstimated: j.Estimated, Latency: time.Duration(j.LatencyUS) * time.Microsecond,
		ClientAddr: j.ClientAddr, ForwardedFor: j.ForwardedFor, BodyKeyID: j.BodyKeyID, BodyDigest: j.BodyDigest,
		Body: j.Body, PrevHash: j.PrevHash, Hash: j.Hash}, nil
}

// OpenJSONL opens (creating, mode 0600) the file at path for appending and recovers each
// tenant's chain head from it. A file whose chains do not verify is refused.
func OpenJSONL(path string) (*JSONLSink, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit.OpenJSONL: %w", err)
	}
	problems, heads, err := verifyJSONL(f)
	if err == nil && len(problems) > 0 {
		err = fmt.Errorf("chain broken: %s", problems[0])
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("audit.OpenJSONL %s: %w", path, err)
	}
	return &JSONLSink{f: f, w: bufio.NewWriterSize(f, 64<<10), heads: heads}, nil
}

// Append chains recs, writes them and flushes the file (without fsync). When it fails, it
// leaves the file and the chain heads as they were, so that the writer's retry continues the
// chains where they ended.
func (s *JSONLSink) Append(_ context.Context, recs []*Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("audit.JSONLSink: closed")
	}
	size, err := s.f.Seek(0, io.SeekEnd) // the buffer is empty between appends
	if err != nil {
		return fmt.Errorf("audit.JSONLSink.Append: %w", err)
	}
	heads := map[string]jsonHead{}
	enc := json.NewEncoder(s.w)
	for _, r := range recs {
		h, ok := heads[r.Tenant]
		if !ok {
			h = s.heads[r.Tenant]
		}
		r.chain(h.seq+1, h.hash)
		if err := enc.Encode(toJSON(r)); err != nil {
			return s.undo(size, err)
		}
		heads[r.Tenant] = jsonHead{r.Seq, r.Hash}
	}
	if err := s.w.Flush(); err != nil {
		return s.undo(size, err)
	}
	maps.Copy(s.heads, heads)
	return nil
}

// undo drops what a failed Append wrote, in the buffer and in the file beyond size.
func (s *JSONLSink) undo(size int64, err error) error {
	s.w.Reset(s.f)
	return fmt.Errorf("audit.JSONLSink.Append: %w", errors.Join(err, s.f.Truncate(size)))
}

// Close flushes and closes the file.
func (s *JSONLSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := errors.Join(s.w.Flush(), s.f.Close())
	s.f = nil
	return err
}

// VerifyJSONL checks the chains of a JSON-lines audit file and returns the first bad record of
// each broken tenant chain. Chains start at the first record of each tenant in the file, so a
// file that starts mid-chain (after external archiving) verifies from there on.
func VerifyJSONL(r io.Reader) ([]Problem, error) {
	problems, _, err := verifyJSONL(r)
	return problems, err
}

func verifyJSONL(r io.Reader) ([]Problem, map[string]jsonHead, error) {
	vs := map[string]*verifier{}
	var order []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		var j jsonRecord
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", line, err)
		}
		rec, err := j.record()
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %w", line, err)
		}
		v, ok := vs[rec.Tenant]
		if !ok {
			v = newVerifier(rec.Tenant, rec.Seq-1, rec.PrevHash)
			vs[rec.Tenant] = v
			order = append(order, rec.Tenant)
		}
		v.next(rec)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	var problems []Problem
	heads := map[string]jsonHead{}
	for _, t := range order {
		v := vs[t]
		if v.problem != nil {
			problems = append(problems, *v.problem)
		}
		heads[t] = jsonHead{v.seq, v.hash}
	}
	return problems, heads, nil
}
