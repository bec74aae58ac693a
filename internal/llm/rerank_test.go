package llm

import "testing"

func TestRerankDocumentAsText(t *testing.T) {
	if got := (RerankDocument{Text: "plain"}).AsText(); got != "plain" {
		t.Errorf("text document: %q", got)
	}
	d := RerankDocument{Fields: map[string]string{"title": "T", "body": "B"}, Keys: []string{"title", "body", "title", "missing"}}
	if got := d.AsText(); got != "title: T\nbody: B" {
		t.Errorf("structured document: %q", got)
	}
	if got := (RerankDocument{Fields: map[string]string{"a": "1"}}).AsText(); got != "a: 1" {
		t.Errorf("fields without keys: %q", got)
	}
}
