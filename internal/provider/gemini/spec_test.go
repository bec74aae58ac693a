package gemini_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/genproto/googleapis/api/annotations"
	_ "google.golang.org/genproto/googleapis/type/interval" // imported by content.proto
	_ "google.golang.org/genproto/googleapis/type/latlng"   // imported by content.proto
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// specDir holds Google's official Generative Language API protos, vendored under test/specs
// (provenance in test/specs/README.md).
const (
	specDir     = "../../../test/specs/google-gemini/v1beta"
	protoPrefix = "google/ai/generativelanguage/v1beta/"
)

// requestTypes names the request message of each REST method the adapter calls.
var requestTypes = map[string]protoreflect.FullName{
	"generateContent":       "google.ai.generativelanguage.v1beta.GenerateContentRequest",
	"streamGenerateContent": "google.ai.generativelanguage.v1beta.GenerateContentRequest",
	"embedContent":          "google.ai.generativelanguage.v1beta.EmbedContentRequest",
	"batchEmbedContents":    "google.ai.generativelanguage.v1beta.BatchEmbedContentsRequest",
}

var protos struct {
	once sync.Once
	file protoreflect.FileDescriptor
	err  error
}

// serviceProto compiles generative_service.proto from the spec directory once per test binary.
// Its imports outside the spec (google/api, google/type, google/protobuf) come from the
// descriptors linked into the binary.
func serviceProto(t testing.TB) protoreflect.FileDescriptor {
	t.Helper()
	protos.once.Do(func() {
		c := protocompile.Compiler{Resolver: protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
			if rest, ok := strings.CutPrefix(path, protoPrefix); ok {
				f, err := os.Open(filepath.Join(specDir, rest))
				if err != nil {
					return protocompile.SearchResult{}, err
				}
				return protocompile.SearchResult{Source: f}, nil
			}
			fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
			if err != nil {
				return protocompile.SearchResult{}, err
			}
			return protocompile.SearchResult{Desc: fd}, nil
		})}
		files, err := c.Compile(context.Background(), protoPrefix+"generative_service.proto")
		if err != nil {
			protos.err = err
			return
		}
		protos.file = files[0]
	})
	if protos.err != nil {
		t.Fatalf("compile Gemini protos in %s: %v", specDir, protos.err)
	}
	return protos.file
}

// checkAgainstProtos fails t unless the request is one the Gemini API defines: POST to
// /v1beta/models/{model}:{method} (alt=sse for streams), a body that protojson accepts as the
// method's request message with unknown fields rejected, and every REQUIRED field set in the
// messages present (the top-level model comes from the path).
func checkAgainstProtos(t testing.TB, r *http.Request, body []byte) {
	t.Helper()
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1beta/models/")
	_, method, _ := strings.Cut(rest, ":")
	name, known := requestTypes[method]
	if !ok || !known || r.Method != http.MethodPost {
		t.Errorf("%s %s is not a Gemini API method the adapter should call", r.Method, r.URL.Path)
		return
	}
	if method == "streamGenerateContent" && r.URL.RawQuery != "alt=sse" {
		t.Errorf("stream query = %q, want alt=sse", r.URL.RawQuery)
	}
	if r.Header.Get("Authorization") != "" {
		t.Error("API key sent as Authorization instead of x-goog-api-key")
	}
	md := serviceProto(t).Messages().ByName(name.Name())
	msg := dynamicpb.NewMessage(md)
	if err := protojson.Unmarshal(body, msg); err != nil {
		t.Errorf("request is not a valid %s: %v\nbody: %s", name.Name(), err, body)
		return
	}
	for _, missing := range missingRequired(msg, "", true) {
		t.Errorf("request %s lacks required field %s\nbody: %s", name.Name(), missing, body)
	}
}

// missingRequired lists REQUIRED fields (google.api.field_behavior) left unset in m and in the
// messages it holds.
func missingRequired(m protoreflect.Message, path string, top bool) []string {
	var out []string
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && !fd.HasPresence() {
			continue
		}
		if !(top && fd.Name() == "model") && isRequired(fd) && !m.Has(fd) {
			out = append(out, path+string(fd.Name()))
		}
		if fd.Kind() != protoreflect.MessageKind || !m.Has(fd) || fd.IsMap() {
			continue
		}
		if pkg := fd.Message().ParentFile().Package(); pkg == "google.protobuf" {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			for j := range l.Len() {
				out = append(out, missingRequired(l.Get(j).Message(), path+string(fd.Name())+"[].", false)...)
			}
		default:
			out = append(out, missingRequired(m.Get(fd).Message(), path+string(fd.Name())+".", false)...)
		}
	}
	return out
}

func isRequired(fd protoreflect.FieldDescriptor) bool {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	if !ok || opts == nil {
		return false
	}
	// The compiler stores the extension as a dynamic value: read it reflectively.
	required := false
	opts.ProtoReflect().Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if f.FullName() != annotations.E_FieldBehavior.TypeDescriptor().FullName() || !f.IsList() {
			return true
		}
		l := v.List()
		for i := range l.Len() {
			required = required || l.Get(i).Enum() == protoreflect.EnumNumber(annotations.FieldBehavior_REQUIRED)
		}
		return true
	})
	return required
}

// TestProtoCheckCatchesMistakes makes sure checkAgainstProtos can fail.
func TestProtoCheckCatchesMistakes(t *testing.T) {
	cases := []struct{ name, path, body, want string }{
		{"unknown field", "/v1beta/models/m:generateContent", `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":{"maxTokens":3}}`, "not a valid"},
		{"contents not a list", "/v1beta/models/m:generateContent", `{"contents":{"role":"user"}}`, "not a valid"},
		{"bad enum", "/v1beta/models/m:generateContent", `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"toolConfig":{"functionCallingConfig":{"mode":"REQUIRED"}}}`, "not a valid"},
		{"args not an object", "/v1beta/models/m:generateContent", `{"contents":[{"role":"model","parts":[{"functionCall":{"name":"f","args":"{}"}}]}]}`, "not a valid"},
		{"missing function name", "/v1beta/models/m:generateContent", `{"contents":[{"role":"model","parts":[{"functionCall":{"args":{}}}]}]}`, "contents[].parts[].function_call.name"},
		{"batch item without model", "/v1beta/models/m:batchEmbedContents", `{"requests":[{"content":{"parts":[{"text":"x"}]}}]}`, "requests[].model"},
		{"stream without alt=sse", "/v1beta/models/m:streamGenerateContent", `{"contents":[{"role":"user","parts":[{"text":"x"}]}]}`, "alt=sse"},
		{"unknown method", "/v1beta/models/m:chat", `{}`, "not a Gemini API method"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodPost, "http://upstream"+c.path, nil)
			rec := &recordingTB{TB: t}
			checkAgainstProtos(rec, r, []byte(c.body))
			if !strings.Contains(rec.msgs, c.want) {
				t.Errorf("check of %s reported %q, want %q", c.body, rec.msgs, c.want)
			}
		})
	}
}

// recordingTB records failures instead of reporting them.
type recordingTB struct {
	testing.TB
	msgs string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.msgs += fmt.Sprintf(format, args...) + "\n"
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.msgs += fmt.Sprintf(format, args...) + "\n"
}
func (r *recordingTB) Helper() {}
