// Package callinfo is the record of one call to the gRPC server (REST calls included: the REST
// edge reaches the server's interceptor chain through internal/inproc or loopback). The layers
// that learn something about the call write it here as they learn it, and the layers that report
// on the call read it once the handler has returned, instead of re-reading response headers or
// messages or threading hooks through the context.
//
// Who writes what, and when:
//
//   - the request id interceptor (server/interceptor, second outermost, after recovery) makes the
//     record with the call's request id and puts it in the context, once per call;
//   - the chat and embedding services (server) set the route (SetRoute) when the router has
//     answered or given up, the response model (SetResponseModel) when they answer, and the usage
//     (SetUsage) when the upstream has answered: for a stream, when the stream ends, with the
//     last usage the upstream reported (also when the stream ends in an error). A chat answer
//     the upstream reported no usage for gets the server's estimate, marked llm.Usage.Estimated,
//     so every answered chat has usage here.
//
// Readers, after the handler returns: the limits interceptor settles its token reservation with
// the usage; the audit interceptor takes the route, the attempts and the usage (and whether it
// was estimated). They are the only readers of usage: a new consumer of token counts (metrics,
// cost) reads it here too, so that every report agrees.
//
// Adding a field: add it to Info saying who writes it and when, and give Record a setter.
package callinfo

import (
	"context"
	"sync"

	"github.com/switchyard/switchyard/internal/llm"
)

// Info is what a call has learned about itself. Zero values mean "not known": a call refused
// before its handler ran, or one that was never routed, has no target, attempts or usage.
type Info struct {
	// Target is "provider/model" that answered, or the last one tried when every attempt failed.
	Target string
	// Attempts is the number of upstream calls made, retries and fallbacks included.
	Attempts int
	// ResponseModel is the model the answer names (the upstream's name for the model).
	ResponseModel string
	// Usage is the token usage the upstream reported, or the server's estimate when
	// Usage.Estimated; valid only when HasUsage.
	Usage    llm.Usage
	HasUsage bool
}

// Record is the record of one call. Its methods are safe for concurrent use, and safe on a nil
// *Record (a call outside the interceptor chain, as in handler tests): setters do nothing, Info
// returns the zero Info.
type Record struct {
	// RequestID is the call's request id, set when the record is made and never changed.
	RequestID string

	mu   sync.Mutex
	info Info
}

type recordKey struct{}

// NewContext returns a copy of ctx carrying a new record for the call with the given request id,
// and the record.
func NewContext(ctx context.Context, requestID string) (context.Context, *Record) {
	r := &Record{RequestID: requestID}
	return context.WithValue(ctx, recordKey{}, r), r
}

// FromContext returns the record of the call ctx belongs to, or nil outside a call.
func FromContext(ctx context.Context) *Record {
	r, _ := ctx.Value(recordKey{}).(*Record)
	return r
}

// Info returns a snapshot of what r holds.
func (r *Record) Info() Info {
	if r == nil {
		return Info{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info
}

// SetRoute records the target that answered (or was tried last) and the upstream calls made.
func (r *Record) SetRoute(target string, attempts int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.info.Target, r.info.Attempts = target, attempts
	r.mu.Unlock()
}

// SetResponseModel records the model the answer names.
func (r *Record) SetResponseModel(model string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.info.ResponseModel = model
	r.mu.Unlock()
}

// SetUsage records the answer's token usage (the upstream's, or the server's estimate marked
// Estimated), replacing any recorded before.
func (r *Record) SetUsage(u llm.Usage) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.info.Usage, r.info.HasUsage = u, true
	r.mu.Unlock()
}
