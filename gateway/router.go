package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/switchyard/switchyard/internal/llm"
)

// Public routes. The streaming RPC's path is internal: only the router sends requests there.
const (
	routeChat       = "/v1/chat/completions"
	routeChatStream = "/v1/chat/completions:stream"
	routeEmbeddings = "/v1/embeddings"
	routeRerank     = "/v1/rerank"
	routeModels     = "/v1/models"
	routeModel      = "/v1/models/{id}" // ids contain '/', e.g. "mock/echo"
)

// router is the outermost gateway-specific handler. For each request it:
//   - answers 404 for the internal ":stream" path;
//   - serves the routes also without the /v1 prefix (Dify users often omit it from the base URL);
//   - drops an empty Authorization header, so it reads as no credentials rather than empty ones;
//   - for a request with a body: checks its credentials from the headers (authenticate, when set)
//     and refuses bad ones before reading any of the body; refuses a content coding other than
//     gzip (415); takes the body's size from the process-wide body budget (503 when there is no
//     room) until the call has returned; reads the whole body once, decoding gzip, within
//     bodyTimeout and capped at maxBody (413 above it, coded or decoded), into a pooled buffer
//     that the codec decodes in place (edge.go, encoding.go);
//   - sends POST /v1/chat/completions with "stream": true to the streaming RPC's path;
//   - records the route template as r.Pattern, which the telemetry handler uses for the span name and http.route.
type router struct {
	next         http.Handler
	maxBody      int64
	authenticate func(*http.Request) error // nil: the chain alone checks credentials
	budget       *bodyBudget               // nil: no budget
	bodyTimeout  time.Duration             // 0: no deadline for the body
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasSuffix(path, ":stream") {
		writeLLMError(w, routingError(w, r, http.StatusNotFound))
		return
	}
	public, rawPublic := versioned(path), r.URL.RawPath
	if rawPublic != "" {
		rawPublic = versioned(rawPublic)
	}
	r.Pattern = routeOf(public)

	if vs, ok := r.Header["Authorization"]; ok && allBlank(vs) {
		r.Header.Del("Authorization")
	}

	if r.Body != nil && r.Body != http.NoBody && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if rt.authenticate != nil {
			if err := rt.authenticate(r); err != nil {
				refuse(w, r, err)
				return
			}
		}
		coding, cerr := requestCoding(r.Header)
		if cerr != nil {
			refuse(w, r, cerr)
			return
		}
		bp := getBuf()
		defer putBuf(bp)
		data, held, err := rt.readBudgeted(w, r, coding, (*bp)[:0])
		defer rt.budget.release(held)
		*bp = data
		if err != nil {
			refuse(w, r, err)
			return
		}
		r.Body = &requestBody{data: data}
		if coding != "" {
			r.Header.Del("Content-Encoding") // the services see the decoded body
			r.ContentLength = int64(len(data))
		}
		if public == routeChat && r.Method == http.MethodPost && gjson.GetBytes(data, "stream").Type == gjson.True {
			public, rawPublic = routeChatStream, ""
			c := &coalescer{ResponseWriter: w}
			w = c
			r = r.WithContext(context.WithValue(r.Context(), coalescerKey{}, c))
		}
	}

	if public != path || rawPublic != r.URL.RawPath {
		r2 := *r
		u := *r.URL
		u.Path, u.RawPath = public, rawPublic
		r2.URL = &u
		r = &r2
	}
	rt.next.ServeHTTP(w, r)
}

// readBody reads r's body into dst, failing with a KindTooLarge error above limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, dst []byte) ([]byte, *llm.Error) {
	if n := r.ContentLength; n > limit {
		return dst, tooLarge(limit)
	} else if n > 0 && int64(cap(dst)) < n+1 {
		dst = make([]byte, 0, n+1) // +1 lets the final Read see EOF without growing
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := body.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return dst, tooLarge(limit)
			}
			return dst, readError(err)
		}
	}
}

func tooLarge(limit int64) *llm.Error {
	return llm.Errorf(llm.KindTooLarge, "the request body is larger than the limit of %d bytes", limit)
}

// versioned returns path with the /v1 prefix when it is one of the routes served without it, and
// without a trailing slash.
func versioned(path string) string {
	if len(path) > 1 && path[len(path)-1] == '/' {
		path = path[:len(path)-1]
	}
	switch {
	case strings.HasPrefix(path, "/v1/"):
		return path
	case path == "/chat/completions", path == "/embeddings", path == "/rerank", path == "/models", strings.HasPrefix(path, "/models/"):
		return "/v1" + path
	}
	return path
}

// routeOf returns the route template serving path (with /v1), or "" for unknown paths.
func routeOf(path string) string {
	switch {
	case path == routeChat:
		return routeChat
	case path == routeEmbeddings:
		return routeEmbeddings
	case path == routeRerank:
		return routeRerank
	case path == routeModels:
		return routeModels
	case strings.HasPrefix(path, routeModels+"/") && len(path) > len(routeModels)+1:
		return routeModel
	}
	return ""
}

// allowedMethod returns the method the route serving path (with /v1) accepts.
func allowedMethod(path string) string {
	switch routeOf(path) {
	case routeChat, routeEmbeddings, routeRerank:
		return http.MethodPost
	case routeModels, routeModel:
		return http.MethodGet
	}
	return ""
}

// clientPath is the path as the client sent it, for error messages.
func clientPath(r *http.Request) string {
	if r.RequestURI != "" {
		if p, _, _ := strings.Cut(r.RequestURI, "?"); strings.HasPrefix(p, "/") {
			return p
		}
	}
	return r.URL.Path
}

func allBlank(vs []string) bool {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

// spanName names a server span "METHOD /route", or just the method for unknown routes, so span
// names stay few.
func spanName(_ string, r *http.Request) string {
	route := r.Pattern
	if route == "" {
		route = routeOf(versioned(r.URL.Path))
	}
	if route == "" {
		return r.Method
	}
	return r.Method + " " + route
}
