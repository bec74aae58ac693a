package gateway

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/tidwall/gjson"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/errmap"
	"github.com/switchyard/switchyard/internal/llm"
)

// codec is the gateway's runtime.Marshaler. It decodes OpenAI request JSON (chat and embeddings
// bodies straight into their protos by the fast decoder, anything it declines by normalizing the
// polymorphic fields and protojson; rerank bodies by decodeRerank) and encodes responses in OpenAI's exact shapes. For streams it frames
// each chunk as an SSE "data: …" event; the gateway adds the "\n\n" delimiter and flushes.
type codec struct {
	marshal   protojson.MarshalOptions
	unmarshal protojson.UnmarshalOptions
}

var _ interface {
	runtime.Marshaler
	runtime.Delimited
	runtime.StreamContentType
} = (*codec)(nil)

func newCodec() *codec {
	return &codec{
		marshal:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
		unmarshal: protojson.UnmarshalOptions{DiscardUnknown: true},
	}
}

// doneChunk is the stream message that renders as "data: [DONE]". The stream wrapper returns it
// after the upstream stream ends cleanly; it is compared by pointer.
var doneChunk = &pb.StreamChatCompletionResponse{}

const ssePrefix = "data: "

func (c *codec) ContentType(any) string       { return "application/json" }
func (c *codec) StreamContentType(any) string { return "text/event-stream" }
func (c *codec) Delimiter() []byte            { return []byte("\n\n") }

// Marshal encodes v. The gateway passes unary responses as themselves, stream chunks as
// map[string]any{"result": msg} and stream errors as map[string]proto.Message{"error": status}.
func (c *codec) Marshal(v any) ([]byte, error) {
	switch t := v.(type) {
	case *pb.CreateChatCompletionResponse:
		return encodeWith("", func(b []byte) []byte { return appendChatCompletion(b, t) }), nil
	case *pb.CreateEmbeddingResponse:
		return encodeWith("", func(b []byte) []byte { return appendEmbeddings(b, t) }), nil
	case *pb.RerankResponse:
		return encodeWith("", func(b []byte) []byte { return appendRerank(b, t) }), nil
	case *pb.ListModelsResponse:
		return encodeWith("", func(b []byte) []byte { return appendModelList(b, t) }), nil
	case *pb.Model:
		return encodeWith("", func(b []byte) []byte { return appendModel(b, t) }), nil
	case map[string]any:
		if r, ok := t["result"]; ok && len(t) == 1 {
			return c.marshalEvent(r)
		}
	case map[string]proto.Message:
		if e, ok := t["error"].(*spb.Status); ok && len(t) == 1 {
			he := errmap.FromStatus(status.FromProto(e))
			return encodeWith(ssePrefix, func(b []byte) []byte { return appendError(b, he.Body.Error) }), nil
		}
	case proto.Message:
		return c.marshal.Marshal(t)
	}
	return nil, fmt.Errorf("gateway: cannot encode %T", v)
}

// marshalEvent encodes one stream message as an SSE data line (without the delimiter).
func (c *codec) marshalEvent(r any) ([]byte, error) {
	switch t := r.(type) {
	case *pb.StreamChatCompletionResponse:
		if t == doneChunk {
			return []byte("data: [DONE]"), nil
		}
		return encodeWith(ssePrefix, func(b []byte) []byte { return appendChunk(b, t) }), nil
	case proto.Message:
		js, err := c.marshal.Marshal(t)
		if err != nil {
			return nil, err
		}
		return append([]byte(ssePrefix), js...), nil
	}
	return nil, fmt.Errorf("gateway: cannot encode stream message %T", r)
}

// Unmarshal decodes data into v like a request body.
func (c *codec) Unmarshal(data []byte, v any) error { return c.decode(data, v, nil) }

// NewDecoder returns a decoder reading the whole of r. When r is the gateway's buffered request
// body the bytes are used in place, and a decoding error is also recorded on it so the error
// handler can answer with the offending field as OpenAI's "param".
func (c *codec) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		if rb, ok := r.(*requestBody); ok {
			return c.decode(rb.take(), v, rb)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("read request body: %w", err)
		}
		return c.decode(data, v, nil)
	})
}

// NewEncoder returns an encoder writing Marshal's output to w.
func (c *codec) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := c.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}

// decode normalizes and decodes one request body into v (a proto message, or **T for a
// body: "request" binding). An empty body decodes to io.EOF, which the gateway treats as an
// empty request. Errors are *llm.Error of KindInvalidArgument with a client-safe message naming
// the field; they are also recorded on rb when it is non-nil.
func (c *codec) decode(data []byte, v any, rb *requestBody) error {
	msg, err := target(v)
	if err != nil {
		return err
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return io.EOF
	}
	if e := c.decodeMessage(data, msg); e != nil {
		if rb != nil {
			rb.decodeErr = e
		}
		return e
	}
	return nil
}

// decodeMessage decodes data into msg: the chat and embeddings requests through the fast decoder
// when it covers the body (see fastdecode.go), everything else and every error the general way.
func (c *codec) decodeMessage(data []byte, msg proto.Message) *llm.Error {
	if data[0] == '{' {
		switch m := msg.(type) {
		case *pb.CreateChatCompletionRequest:
			if fastDecodeChat(data, m) {
				return nil
			}
		case *pb.CreateEmbeddingRequest:
			if fastDecodeEmbedding(data, m) {
				return nil
			}
		}
	}
	return c.decodeGeneral(data, msg)
}

// decodeGeneral normalizes data and decodes it with protojson, wording any error for the client.
func (c *codec) decodeGeneral(data []byte, msg proto.Message) *llm.Error {
	if data[0] != '{' || !gjson.ValidBytes(data) {
		if gjson.ValidBytes(data) {
			return llm.Errorf(llm.KindInvalidArgument, "the request body must be a JSON object")
		}
		return llm.Errorf(llm.KindInvalidArgument, "the request body is not valid JSON")
	}
	if m, ok := msg.(*pb.RerankRequest); ok {
		return decodeRerank(data, m)
	}
	bp := getBuf()
	defer putBuf(bp)
	norm := data
	switch msg.(type) {
	case *pb.CreateChatCompletionRequest:
		norm = normalizeChat(*bp, data)
	case *pb.CreateEmbeddingRequest:
		norm = normalizeEmbedding(*bp, data)
	}
	if len(norm) != len(data) { // rewritten into the pooled buffer, which may have grown
		*bp = norm
	}
	if err := c.unmarshal.Unmarshal(norm, msg); err != nil {
		return describeDecodeError(norm, err)
	}
	return nil
}

// target returns the message to decode into: v itself, or a new message stored through v when v
// is a pointer to a message pointer (the generated code passes &req.Request for body: "request").
func target(v any) (proto.Message, error) {
	switch t := v.(type) {
	case **pb.CreateChatCompletionRequest:
		if *t == nil {
			*t = new(pb.CreateChatCompletionRequest)
		}
		return *t, nil
	case proto.Message:
		return t, nil
	}
	return nil, fmt.Errorf("gateway: cannot decode into %T", v)
}

// describeDecodeError turns a protojson error into a message a client can act on: the JSON path
// of the offending value (also returned as param), what was expected, and what was sent.
// protojson's messages name fields by their camelCase JSON names and report the position in the
// normalized body, so the path is recovered from the position instead.
func describeDecodeError(norm []byte, err error) *llm.Error {
	text := strings.TrimPrefix(err.Error(), "proto: ")
	off, ok := errorOffset(norm, text)
	if !ok {
		return &llm.Error{Kind: llm.KindInvalidArgument, Message: "invalid request body: " + text, Err: err}
	}
	path, got := locate(norm, off)
	param := formatPath(cleanPath(path))
	e := &llm.Error{Kind: llm.KindInvalidArgument, Param: param, Err: err}
	switch {
	case strings.Contains(text, "duplicate field"):
		e.Message = fmt.Sprintf("%q appears more than once in the request body", param)
	case param == "":
		e.Message = "invalid request body: " + stripPosition(text)
	default:
		e.Message = fmt.Sprintf("invalid value for %q: %s, got %s", param, expectation(text, path), excerpt(got))
	}
	return e
}

// errorOffset finds the byte offset of protojson's "(line L:C)" position in data. C counts runes.
func errorOffset(data []byte, text string) (int, bool) {
	i := strings.Index(text, "(line ")
	if i < 0 {
		return 0, false
	}
	rest := text[i+len("(line "):]
	j := strings.IndexByte(rest, ')')
	if j < 0 {
		return 0, false
	}
	ls, cs, ok := strings.Cut(rest[:j], ":")
	if !ok {
		return 0, false
	}
	line, err1 := strconv.Atoi(ls)
	col, err2 := strconv.Atoi(cs)
	if err1 != nil || err2 != nil || line < 1 || col < 1 {
		return 0, false
	}
	off := 0
	for ; line > 1; line-- {
		k := bytes.IndexByte(data[off:], '\n')
		if k < 0 {
			return 0, false
		}
		off += k + 1
	}
	for ; col > 1 && off < len(data); col-- {
		_, size := utf8.DecodeRune(data[off:])
		off += size
	}
	return off, off < len(data)
}

func stripPosition(text string) string {
	i := strings.Index(text, "(line ")
	if i < 0 {
		return text
	}
	j := strings.IndexByte(text[i:], ')')
	if j < 0 {
		return text
	}
	return strings.TrimSpace(strings.Replace(text[:i]+text[i+j+1:], " :", ":", 1))
}

// pathSeg is one step of a JSON path: an object key, or an array index when isIndex.
type pathSeg struct {
	key     string
	index   int
	isIndex bool
}

// locate returns the path to the innermost value (or object key) at byte offset off, and that
// value's raw JSON.
func locate(data []byte, off int) ([]pathSeg, string) {
	var path []pathSeg
	v := parseNoCopy(data)
	for v.IsObject() || v.IsArray() {
		var (
			next  gjson.Result
			seg   pathSeg
			onKey bool
			i     int
		)
		v.ForEach(func(k, e gjson.Result) bool {
			switch {
			case v.IsObject() && k.Index > 0 && off >= k.Index && off < k.Index+len(k.Raw):
				seg, next, onKey = pathSeg{key: strings.Clone(k.Str)}, k, true
				return false
			case e.Index > 0 && off >= e.Index && off < e.Index+len(e.Raw):
				if v.IsArray() {
					seg = pathSeg{index: i, isIndex: true}
				} else {
					seg = pathSeg{key: strings.Clone(k.Str)}
				}
				next = e
				return false
			}
			i++
			return true
		})
		if !next.Exists() {
			break
		}
		path = append(path, seg)
		v = next
		if onKey {
			break
		}
	}
	return path, strings.Clone(v.Raw)
}

// cleanPath drops the wrapper keys the normalizer inserted, so paths read as the client wrote them.
func cleanPath(path []pathSeg) []pathSeg {
	out := path[:0:0]
	for i := 0; i < len(path); i++ {
		s := path[i]
		out = append(out, s)
		if s.isIndex || i+1 >= len(path) {
			continue
		}
		next := path[i+1]
		switch s.key {
		case "content":
			if next.key == "text" {
				i++
			} else if next.key == "parts" && i+2 < len(path) && path[i+2].key == "parts" {
				i += 2
			}
		case "tool_choice":
			if next.key == "mode" || next.key == "named" {
				i++
			}
		case "input":
			if next.key == "texts" {
				i++
			} else if next.key == "tokens" {
				i++
				if i+2 < len(path) && path[i+2].key == "ids" {
					out = append(out, path[i+1])
					i += 2
				}
			}
		}
	}
	return out
}

func formatPath(path []pathSeg) string {
	var sb strings.Builder
	for _, s := range path {
		if s.isIndex {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(s.index))
			sb.WriteByte(']')
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(s.key)
	}
	return sb.String()
}

// expectation says what the field takes, from protojson's "invalid value for <kind> field" or,
// for the polymorphic fields, from the field itself.
func expectation(text string, path []pathSeg) string {
	if len(path) > 0 {
		switch last := path[len(path)-1]; {
		case last.key == "content" || (len(path) > 1 && path[len(path)-2].key == "content"):
			return "expected a string, an array of content parts or null"
		case last.key == "tool_choice":
			return `expected "none", "auto", "required" or an object naming a function`
		case last.key == "stop":
			return "expected a string or an array of strings"
		case last.key == "input":
			return "expected a string, an array of strings, or token arrays"
		}
	}
	kinds := []struct{ proto, want string }{
		{"string", "expected a string"},
		{"bool", "expected true or false"},
		{"int32", "expected an integer"},
		{"int64", "expected an integer"},
		{"uint32", "expected a non-negative integer"},
		{"uint64", "expected a non-negative integer"},
		{"double", "expected a number"},
		{"float", "expected a number"},
		{"bytes", "expected a base64 string"},
	}
	for _, k := range kinds {
		if strings.Contains(text, "invalid value for "+k.proto+" field") {
			return k.want
		}
	}
	if strings.Contains(text, "unexpected token") {
		return "wrong type"
	}
	return stripPosition(text)
}

// excerpt shortens a raw JSON value for an error message.
func excerpt(raw string) string {
	const max = 40
	if len(raw) <= max {
		return raw
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(raw[cut]) {
		cut--
	}
	return raw[:cut] + "…"
}

// requestBody is a fully read request body. The decoder takes its bytes without another copy,
// and records a decoding error on it for the error handler.
type requestBody struct {
	data      []byte
	off       int
	decodeErr *llm.Error
}

func (b *requestBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (b *requestBody) Close() error { return nil }

// take returns the unread bytes and marks them read.
func (b *requestBody) take() []byte {
	d := b.data[b.off:]
	b.off = len(b.data)
	return d
}
