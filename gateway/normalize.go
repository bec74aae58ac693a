package gateway

import (
	"slices"
	"unsafe"

	"github.com/tidwall/gjson"
)

// The normalizer rewrites OpenAI's polymorphic request fields into the typed shapes of the protos
// (see the comments on MessageContent, ToolChoice and EmbeddingInput) before protojson decodes
// the body. It serves the bodies the fast decoder (fastdecode.go) declines, and defines what that
// decoder must match. It finds the values with one gjson scan and splices text around them; every rewrite
// is an insertion, so the output is the input plus a few bytes, built with one copy. Values that
// are already in the typed shape, null, or of a type protojson will reject are left alone.

// insertion is text to insert before body[pos].
type insertion struct {
	pos  int
	text string
}

// normalizeChat normalizes a chat completion request body:
//
//	messages[].content: "s" → {"text":"s"}, [...] → {"parts":{"parts":[...]}}
//	stop:               "s" → ["s"]
//	tool_choice:        "auto" → {"mode":"auto"}, {"type":...} → {"named":{...}}
//
// body must be valid JSON. It returns body itself when nothing needs rewriting.
func normalizeChat(dst, body []byte) []byte {
	var ins []insertion
	root := parseNoCopy(body)
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "messages":
			if !v.IsArray() {
				return true
			}
			v.ForEach(func(_, msg gjson.Result) bool {
				if !msg.IsObject() {
					return true
				}
				msg.ForEach(func(mk, mv gjson.Result) bool {
					if mk.Str != "content" {
						return true
					}
					switch {
					case mv.Type == gjson.String:
						ins = wrap(ins, mv, `{"text":`, `}`)
					case mv.IsArray():
						ins = wrap(ins, mv, `{"parts":{"parts":`, `}}`)
					}
					return false
				})
				return true
			})
		case "stop":
			if v.Type == gjson.String {
				ins = wrap(ins, v, `[`, `]`)
			}
		case "tool_choice":
			switch {
			case v.Type == gjson.String:
				ins = wrap(ins, v, `{"mode":`, `}`)
			case v.IsObject() && !hasAnyKey(v, "mode", "named"):
				ins = wrap(ins, v, `{"named":`, `}`)
			}
		}
		return true
	})
	return splice(dst, body, ins)
}

// normalizeEmbedding normalizes an embeddings request body's input:
//
//	"s"            → {"texts":["s"]}
//	["a","b"]      → {"texts":["a","b"]}
//	[1,2]          → {"tokens":[{"ids":[1,2]}]}
//	[[1,2],[3]]    → {"tokens":[{"ids":[1,2]},{"ids":[3]}]}
//	[]             → {"texts":[]}
//
// body must be valid JSON. It returns body itself when nothing needs rewriting.
func normalizeEmbedding(dst, body []byte) []byte {
	var ins []insertion
	root := parseNoCopy(body)
	root.ForEach(func(k, v gjson.Result) bool {
		if k.Str != "input" {
			return true
		}
		switch {
		case v.Type == gjson.String:
			ins = wrap(ins, v, `{"texts":[`, `]}`)
		case v.IsArray():
			var first gjson.Result
			v.ForEach(func(_, e gjson.Result) bool { first = e; return false })
			switch {
			case first.Type == gjson.Number:
				ins = wrap(ins, v, `{"tokens":[{"ids":`, `}]}`)
			case first.IsArray():
				ins = append(ins, insertion{v.Index, `{"tokens":`})
				v.ForEach(func(_, e gjson.Result) bool {
					ins = wrap(ins, e, `{"ids":`, `}`)
					return true
				})
				ins = append(ins, insertion{v.Index + len(v.Raw), `}`})
			default: // strings, an empty list, or a mix protojson will reject with the field name
				ins = wrap(ins, v, `{"texts":`, `}`)
			}
		case v.IsObject() && !hasAnyKey(v, "texts", "tokens"):
			ins = wrap(ins, v, `{"texts":`, `}`) // not the typed shape: let protojson reject it as input
		}
		return false
	})
	return splice(dst, body, ins)
}

// parseNoCopy parses body without copying it (gjson.ParseBytes copies). The results alias body and
// must not outlive it; body must not change while they are in use.
func parseNoCopy(body []byte) gjson.Result {
	if len(body) == 0 {
		return gjson.Result{}
	}
	return gjson.Parse(unsafe.String(&body[0], len(body)))
}

// wrap records pre before v and post after it. A value whose position gjson could not determine
// (Index 0 is never a field value in an object body) is left alone.
func wrap(ins []insertion, v gjson.Result, pre, post string) []insertion {
	if v.Index <= 0 {
		return ins
	}
	return append(ins, insertion{v.Index, pre}, insertion{v.Index + len(v.Raw), post})
}

func hasAnyKey(obj gjson.Result, keys ...string) bool {
	found := false
	obj.ForEach(func(k, _ gjson.Result) bool {
		found = slices.Contains(keys, k.Str)
		return !found
	})
	return found
}

// splice appends body to dst[:0] with the insertions applied, or returns body unchanged when there
// are none. Insertions are recorded in document order; the sort only guards against surprises.
func splice(dst, body []byte, ins []insertion) []byte {
	if len(ins) == 0 {
		return body
	}
	if !slices.IsSortedFunc(ins, cmpInsertion) {
		slices.SortStableFunc(ins, cmpInsertion)
	}
	n := len(body)
	for _, in := range ins {
		n += len(in.text)
	}
	out := slices.Grow(dst[:0], n)
	last := 0
	for _, in := range ins {
		out = append(out, body[last:in.pos]...)
		out = append(out, in.text...)
		last = in.pos
	}
	return append(out, body[last:]...)
}

func cmpInsertion(a, b insertion) int { return a.pos - b.pos }
