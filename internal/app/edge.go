package app

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/switchyard/switchyard/internal/audit"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/mdkey"
	"github.com/switchyard/switchyard/server/interceptor"
)

// The REST edge's protections (docs/edge.md): the early credential check, the machine-sized body
// budget and the per-connection limits.

// Body budget defaults: an eighth of the memory the process may use, at least 64 MiB and at most
// 4 GiB.
const (
	minBodyBudget = 64 << 20
	maxBodyBudget = 4 << 30
)

// defaultBodyBudget is server.max_inflight_body_bytes when the config leaves it out: an eighth of
// the cgroup's memory limit, or of the machine's RAM without one, within [64 MiB, 4 GiB], and
// never below maxBody (one largest body must fit).
func defaultBodyBudget(maxBody int64) int64 {
	return max(min(max(memoryLimit()/8, minBodyBudget), maxBodyBudget), maxBody)
}

// memoryLimit is the cgroup memory limit, or the RAM, or 0.
func memoryLimit() int64 {
	if n := cgroupMemoryLimit(); n > 0 {
		return n
	}
	return ramSize()
}

// cgroupMemoryLimit is the cgroup (v2, then v1) memory limit, or 0 without one.
func cgroupMemoryLimit() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(f); err == nil {
			// "max" (v2) or a huge number (v1) means no limit.
			if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil && n > 0 && n < 1<<50 {
				return n
			}
		}
	}
	return 0
}

// ramSize is MemTotal from /proc/meminfo, or 0.
func ramSize() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// edgeAuthenticate is the gateway's early credential check (gateway.Options.Authenticate): the
// chain's rule, auth.Resolve, over the same authenticator (whose caches make the chain's second
// check cheap). REST callers present no client certificate to the chain, so none is used here
// either. A refusal is audited like the chain's refusals before authentication, in the
// "_unauthenticated" chain, with the HTTP method and path as its RPC. nil in mode none, which
// admits everyone.
func edgeAuthenticate(a auth.Authenticator, aud *auditLog) func(*http.Request) error {
	if auth.AdmitsEveryone(a) {
		return nil
	}
	return func(r *http.Request) error {
		start := time.Now()
		_, err := auth.Resolve(r.Context(), a, r.Header.Get("Authorization"))
		if err != nil && aud != nil {
			aud.writer.Write(&audit.Entry{Record: edgeRecord(r, start, err)})
		}
		return err
	}
}

// edgeRecord is the audit record of a request the edge refused with err.
func edgeRecord(r *http.Request, start time.Time, err error) *audit.Record {
	rec := &audit.Record{
		Tenant:       audit.UnauthenticatedTenant,
		Time:         start,
		Transport:    audit.TransportREST,
		RPC:          r.Method + " " + r.URL.Path,
		Latency:      time.Since(start),
		ClientAddr:   r.RemoteAddr,
		ForwardedFor: strings.Join(r.Header.Values(mdkey.ForwardedFor), ", "),
	}
	rec.Class, rec.Code = interceptor.AuditOutcome(errmap.ToStatus(err).Err())
	if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
		rec.TraceID = sc.TraceID().String()
	}
	return rec
}
