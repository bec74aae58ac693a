package interceptor_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/errmap"
)

// TestAuthorization: each RPC needs its scope and the requested model must be allowed; denials
// are PERMISSION_DENIED naming the missing scope or the model, streams included.
func TestAuthorization(t *testing.T) {
	cs := start(t, auth.Config{Mode: "api_key", APIKeys: []auth.APIKey{
		{Name: "default", Key: "sk-default", Tenant: "acme"},
		{Name: "models-only", Key: "sk-models", Tenant: "acme", Scopes: []string{"models:read"}},
		{Name: "chat-only", Key: "sk-chat", Tenant: "acme", Scopes: []string{"chat:write"}},
		{Name: "other-model", Key: "sk-other", Tenant: "acme", Models: []string{"other/*"}},
		{Name: "this-model", Key: "sk-this", Tenant: "acme", Models: []string{"fake/m"}},
	}})
	chat := func(ctx context.Context) error {
		_, err := cs.chat.CreateChatCompletion(ctx, chatReq("hi"))
		return err
	}
	stream := func(ctx context.Context) error {
		s, err := cs.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: chatReq("hi")})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}
	list := func(ctx context.Context) error {
		_, err := cs.models.ListModels(ctx, &pb.ListModelsRequest{})
		return err
	}
	cases := []struct {
		name     string
		key      string
		call     func(context.Context) error
		want     codes.Code
		wantText string // in the message of a denial
	}{
		{"default scopes chat", "sk-default", chat, codes.OK, ""},
		{"default scopes stream", "sk-default", stream, codes.OK, ""},
		{"default scopes list models", "sk-default", list, codes.OK, ""},
		{"models:read cannot chat", "sk-models", chat, codes.PermissionDenied, `"chat:write" scope`},
		{"models:read cannot stream", "sk-models", stream, codes.PermissionDenied, `"chat:write" scope`},
		{"models:read lists models", "sk-models", list, codes.OK, ""},
		{"chat:write cannot list models", "sk-chat", list, codes.PermissionDenied, `"models:read" scope`},
		{"chat:write chats", "sk-chat", chat, codes.OK, ""},
		{"model not allowed", "sk-other", chat, codes.PermissionDenied, `model "fake/m"`},
		{"model not allowed on a stream", "sk-other", stream, codes.PermissionDenied, `model "fake/m"`},
		{"model allowed", "sk-this", chat, codes.OK, ""},
		{"model allowed on a stream", "sk-this", stream, codes.OK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call(withMD("authorization", "Bearer "+c.key))
			if got := status.Code(err); got != c.want {
				t.Fatalf("code = %v (%v); want %v", got, err, c.want)
			}
			if c.want == codes.OK {
				return
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, c.wantText) {
				t.Errorf("message %q does not name %s", msg, c.wantText)
			}
			if info := errorInfo(err); info == nil || info.GetMetadata()[errmap.MetaHTTPStatus] != "403" {
				t.Errorf("ErrorInfo = %v; want http_status 403", info)
			}
		})
	}
}
