package interceptor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/mdkey"
)

const maxRequestIDLen = 128

// RequestIDFromContext returns the request id of the call ctx belongs to, or "" outside the chain.
func RequestIDFromContext(ctx context.Context) string {
	if r := callinfo.FromContext(ctx); r != nil {
		return r.RequestID
	}
	return ""
}

// withRequestID returns ctx carrying the call's record (callinfo) with the caller's x-request-id
// if it is sane (1 to 128 characters of [A-Za-z0-9._-]), or a new random id otherwise, and the id.
func withRequestID(ctx context.Context) (context.Context, string) {
	var id string
	if vs := metadata.ValueFromIncomingContext(ctx, mdkey.RequestID); len(vs) > 0 && saneRequestID(vs[0]) {
		id = vs[0]
	} else {
		id = newRequestID()
	}
	ctx, _ = callinfo.NewContext(ctx, id)
	return ctx, id
}

func saneRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID returns 32 hex digits: the Unix time in milliseconds (12 digits, so ids sort by
// creation time) then 10 random bytes (80 bits). Time-ordered ids land at the end of the audit
// log's request-id index instead of on a random page of it, which halves the cost of appending a
// record to SQLite (bench/README.md, "Audit append").
func newRequestID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(b[:])
}

func unaryRequestID(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, id := withRequestID(ctx)
	// The header goes out with the response or the error status, whichever comes first.
	_ = grpc.SetHeader(ctx, metadata.Pairs(mdkey.RequestID, id))
	return handler(ctx, req)
}

func streamRequestID(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, id := withRequestID(ss.Context())
	_ = ss.SetHeader(metadata.Pairs(mdkey.RequestID, id))
	return handler(srv, &middleware.WrappedServerStream{ServerStream: ss, WrappedContext: ctx})
}
