package auth_test

import (
	"context"
	"testing"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

func TestResolve(t *testing.T) {
	a, err := auth.New(auth.Config{Mode: auth.ModeAPIKey, APIKeys: []auth.APIKey{
		{Name: "k", Key: "sk-good", Tenant: "t"},
		{Name: "r", Key: "sk-reserved", Tenant: "_audit"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ header, tenant, code string }{
		{"Bearer sk-good", "t", ""},
		{"bearer   sk-good  ", "t", ""},
		{"Bearer sk-bad", "", "invalid_api_key"},
		{"", "", "missing_api_key"},
		{"   ", "", "missing_api_key"},
		{"Basic sk-good", "", "invalid_api_key"}, // another scheme: refused, naming the scheme
		{"Bearer sk-reserved", "", "invalid_tenant"},
	} {
		p, err := auth.Resolve(context.Background(), a, tc.header)
		switch {
		case tc.code == "" && (err != nil || p.Tenant != tc.tenant):
			t.Errorf("%q: %v, %v; want tenant %q", tc.header, p, err, tc.tenant)
		case tc.code != "" && (err == nil || llm.AsError(err).Code != tc.code || llm.KindOf(err) != llm.KindUnauthenticated):
			t.Errorf("%q: err = %v, want an unauthenticated error with code %q", tc.header, err, tc.code)
		}
	}
	none, _ := auth.New(auth.Config{})
	if !auth.AdmitsEveryone(none) || auth.AdmitsEveryone(a) {
		t.Error("AdmitsEveryone: want true for mode none only")
	}
	if p, err := auth.Resolve(context.Background(), none, "Basic x"); err != nil || p.Tenant != "default" {
		t.Errorf("mode none with another scheme: %v, %v; want the anonymous principal", p, err)
	}
}
