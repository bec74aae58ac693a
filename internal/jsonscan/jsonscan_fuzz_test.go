package jsonscan

import (
	"encoding/json"
	"testing"
)

// FuzzScanner checks the scanner against encoding/json: a document Skip accepts is valid JSON, and
// a string Str accepts decodes to the same text.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,true,false,null,{"b":"c\u00e9\ud83d\ude00\n"}]}`, `"\ud800"`, `"a\"b\\/"`,
		` [ ] `, `{"a":1,}`, `01`, `1.`, `-`, `truex`, `"é"`, "\"\xff\"", `"\u0000"`, `{"A":1}`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := New(data)
		if d.Skip(1) && d.End() && !json.Valid(data) {
			t.Fatalf("Skip accepted invalid JSON %q", data)
		}
		d.Reset(data)
		if s, ok := d.Str(); ok && d.End() {
			var want string
			if err := json.Unmarshal(data, &want); err != nil || want != s {
				t.Fatalf("Str(%q) = %q, encoding/json %q (%v)", data, s, want, err)
			}
		}
	})
}

func TestScanner(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`{"a":[1,-2.5e3,true,false,null,{"b":"c"}]}`, true}, {`{"a":1,}`, false}, {`01`, false}, {`1.`, false},
		{`truex`, false}, {`"\ud800"`, false}, {"\"\xff\"", false}, {`"\ud83d\ude00"`, true}, {` [ ] `, true}, {`[1 2]`, false},
	} {
		d := New([]byte(c.in))
		if got := d.Skip(1) && d.End(); got != c.ok {
			t.Errorf("Skip(%s) = %v, want %v", c.in, got, c.ok)
		}
	}
	d := New([]byte(`{"Key":1}`))
	d.Eat('{')
	if _, _, ok := d.Key(true); ok {
		t.Error("Key took an upper-case key")
	}
	d = New([]byte(`{"key":1}`))
	d.Eat('{')
	if k, done, ok := d.Key(true); string(k) != "key" || done || !ok {
		t.Errorf("Key = %q, %v, %v", k, done, ok)
	}
}
