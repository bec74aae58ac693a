package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
)

// errorHandler answers every failed call with the HTTP status and OpenAI error body from
// errmap.FromStatus, the allowlisted response headers the server sent, and Retry-After when the
// error carries one. A request body the codec could not decode is answered from the decoding
// error itself, so the client learns the offending field (error.param).
func (g *gateway) errorHandler(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	var he errmap.HTTPError
	var hse *runtime.HTTPStatusError
	rb, _ := r.Body.(*requestBody)
	switch {
	case rb != nil && rb.decodeErr != nil && status.Code(err) == codes.InvalidArgument:
		he = errmap.FromStatus(errmap.ToStatus(rb.decodeErr))
	case errors.As(err, &hse):
		he = errmap.FromStatus(status.Convert(hse.Err))
		he.Status = hse.HTTPStatus
	default:
		he = errmap.FromStatus(status.Convert(err))
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok {
		copyHeaders(w.Header(), md.HeaderMD, false)
		copyHeaders(w.Header(), md.TrailerMD, true) // a trailers-only answer carries them here
	}
	if se, ok := errors.AsType[*earlyStreamError](err); ok {
		copyHeaders(w.Header(), se.header, true)
		copyHeaders(w.Header(), se.trailer, true)
	}
	if he.Status >= http.StatusInternalServerError {
		g.log.LogAttrs(ctx, slog.LevelWarn, "rest call failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", he.Status), slog.String("error", err.Error()))
	}
	writeError(w, he)
}

// routingErrorHandler answers requests no route matched: 404 for unknown paths, 405 with an Allow
// header for a known path with the wrong method (grpc-gateway's default would answer 501).
func (g *gateway) routingErrorHandler(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	writeLLMError(w, routingError(w, r, httpStatus))
}

func routingError(w http.ResponseWriter, r *http.Request, httpStatus int) *llm.Error {
	path := clientPath(r)
	switch httpStatus {
	case http.StatusNotFound:
		return llm.Errorf(llm.KindNotFound, "Invalid URL (%s %s)", r.Method, path)
	case http.StatusMethodNotAllowed:
		allow := allowedMethod(r.URL.Path)
		if allow != "" {
			w.Header().Set("Allow", allow)
		}
		return &llm.Error{Kind: llm.KindInvalidArgument, HTTPStatus: http.StatusMethodNotAllowed,
			Message: fmt.Sprintf("Method %s is not allowed for %s; use %s", r.Method, path, allow)}
	case http.StatusBadRequest:
		return llm.Errorf(llm.KindInvalidArgument, "Invalid URL (%s %s)", r.Method, path)
	}
	return &llm.Error{Kind: llm.KindInternal, HTTPStatus: httpStatus}
}

// writeLLMError answers with e mapped through errmap, exactly as if the server had returned it.
func writeLLMError(w http.ResponseWriter, e *llm.Error) {
	writeError(w, errmap.FromStatus(errmap.ToStatus(e)))
}

func writeError(w http.ResponseWriter, he errmap.HTTPError) {
	h := w.Header()
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	if he.RetryAfter != "" {
		h.Set(mdkey.RetryAfter, he.RetryAfter) // canonicalized to Retry-After
	}
	body := encodeWith("", func(b []byte) []byte { return appendError(b, he.Body.Error) })
	w.WriteHeader(he.Status)
	_, _ = w.Write(body) // the client may be gone; nothing else to do
}

// copyHeaders adds the allowlisted keys of md to h; with onlyNew, keys h already has are skipped.
func copyHeaders(h http.Header, md metadata.MD, onlyNew bool) {
	for k, vs := range md {
		if name, ok := outgoingHeader(k); ok && (!onlyNew || h.Get(name) == "") {
			for _, v := range vs {
				h.Add(name, v)
			}
		}
	}
}
