package jsonscan

import "testing"

func TestMember(t *testing.T) {
	var seen Seen
	var sc Scanner
	sc.Reset([]byte(`null 1`))
	if isNull, ok := sc.Member(&seen, 63); !ok || !isNull {
		t.Fatalf("first key 63 with null: isNull %v ok %v", isNull, ok)
	}
	if _, ok := sc.Member(&seen, 63); ok {
		t.Fatal("repeated key 63 accepted")
	}
	if isNull, ok := sc.Member(&seen, 0); !ok || isNull {
		t.Fatalf("key 0 before a number: isNull %v ok %v", isNull, ok)
	}
}
