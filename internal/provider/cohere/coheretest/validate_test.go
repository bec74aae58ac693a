package coheretest

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestValidate shows the validator refuses what the spec forbids (so that the adapter's tests,
// which pass every request through it, can fail).
func TestValidate(t *testing.T) {
	const okChat = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	cases := []struct {
		name, path, auth, body, wantErr string
	}{
		{"ok chat", "/v2/chat", "Bearer k", okChat, ""},
		{"no auth", "/v2/chat", "", okChat, "Authorization"},
		{"no model", "/v2/chat", "Bearer k", `{"messages":[]}`, "model"},
		{"unknown field", "/v2/chat", "Bearer k", `{"model":"m","messages":[],"top_p":0.5}`, "unknown chat field"},
		{"temperature", "/v2/chat", "Bearer k", `{"model":"m","messages":[],"temperature":1.5}`, "temperature"},
		{"p", "/v2/chat", "Bearer k", `{"model":"m","messages":[],"p":1}`, "p 1"},
		{"tool_choice", "/v2/chat", "Bearer k", `{"model":"m","messages":[],"tool_choice":"AUTO"}`, "tool_choice"},
		{"stop", "/v2/chat", "Bearer k", `{"model":"m","messages":[],"stop_sequences":["a","b","c","d","e","f"]}`, "stop_sequences"},
		{"tool without parameters", "/v2/chat", "Bearer k", `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}]}`, "parameters"},
		{"tool message without id", "/v2/chat", "Bearer k", `{"model":"m","messages":[{"role":"tool","content":"x"}]}`, "tool_call_id"},
		{"arguments object", "/v2/chat", "Bearer k", `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":{}}}]}]}`, "arguments"},
		{"image in system", "/v2/chat", "Bearer k", `{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"u"}}]}]}`, "type"},
		{"bad role", "/v2/chat", "Bearer k", `{"model":"m","messages":[{"role":"developer","content":"x"}]}`, "role"},
		{"ok embed", "/v2/embed", "Bearer k", `{"model":"m","texts":["a"],"input_type":"search_query","embedding_types":["float"]}`, ""},
		{"embed without input_type", "/v2/embed", "Bearer k", `{"model":"m","texts":["a"]}`, "input_type"},
		{"embed 97 texts", "/v2/embed", "Bearer k", `{"model":"m","input_type":"clustering","texts":[` + strings.Repeat(`"a",`, 96) + `"a"]}`, "texts"},
		{"ok rerank", "/v2/rerank", "Bearer k", `{"model":"m","query":"q","documents":["a"],"top_n":1}`, ""},
		{"rerank object documents", "/v2/rerank", "Bearer k", `{"model":"m","query":"q","documents":[{"text":"a"}]}`, "documents[0]"},
		{"rerank top_n 0", "/v2/rerank", "Bearer k", `{"model":"m","query":"q","documents":["a"],"top_n":0}`, "top_n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", c.path, strings.NewReader(c.body))
			r.Header.Set("Content-Type", "application/json")
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			err := Validate(r, []byte(c.body))
			if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
				t.Errorf("Validate = %v, want an error with %q", err, c.wantErr)
			}
		})
	}
}
