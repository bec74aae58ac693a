package gateway

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
)

// decodeRerank decodes a rerank request body in the shape the Jina, Cohere and vLLM rerank APIs
// and Dify's plugins send:
//
//	{"model": "...", "query": "...", "documents": ["text", {"text": "..."}, {"title": "...", "body": "..."}],
//	 "top_n": 3, "return_documents": true, "max_chunks_per_doc": 10, "user": "..."}
//
// A document is a string, an object whose only key is "text" (a plain document), or any other
// object: a structured document whose fields keep the order they were sent in (values that are
// not strings are kept as their JSON text). The proto's own JSON form of a document
// ({"text": ...} or {"structured": {"fields": [{"key", "value"}]}}) is read too. null stands for
// an absent field; unknown fields are ignored (as everywhere in the gateway). Errors are
// KindInvalidArgument naming the field as param. data must be a valid JSON object. Rerank
// bodies are not on a hot path, so they are decoded here rather than by the fast decoder.
func decodeRerank(data []byte, m *pb.RerankRequest) *llm.Error {
	m.Reset()
	var err *llm.Error
	seen := map[string]bool{}
	gjson.ParseBytes(data).ForEach( // a copy: the strings outlive the pooled body buffer
		func(k, v gjson.Result) bool {
			key := k.String()
			if seen[key] {
				err = llm.Errorf(llm.KindInvalidArgument, "%q appears more than once in the request body", key)
				err.Param = key
				return false
			}
			seen[key] = true
			if v.Type == gjson.Null {
				return true
			}
			switch key {
			case "model":
				m.Model, err = rerankString(key, v)
			case "query":
				m.Query, err = rerankString(key, v)
			case "user":
				m.User, err = rerankString(key, v)
			case "documents":
				m.Documents, err = rerankDocuments(v)
			case "top_n":
				var n int32
				n, err = rerankInt(key, v)
				m.TopN = &n
			case "max_chunks_per_doc":
				var n int32
				n, err = rerankInt(key, v)
				m.MaxChunksPerDoc = &n
			case "return_documents":
				if v.Type != gjson.True && v.Type != gjson.False {
					err = badRerankValue(key, "a boolean", v)
				}
				m.ReturnDocuments = v.Type == gjson.True
			}
			return err == nil
		})
	return err
}

func badRerankValue(param, want string, v gjson.Result) *llm.Error {
	return &llm.Error{Kind: llm.KindInvalidArgument, Param: param,
		Message: fmt.Sprintf("invalid value for %q: expected %s, got %s", param, want, excerpt(v.Raw))}
}

func rerankString(param string, v gjson.Result) (string, *llm.Error) {
	if v.Type != gjson.String {
		return "", badRerankValue(param, "a string", v)
	}
	s := v.String()
	if !utf8.ValidString(s) {
		return "", &llm.Error{Kind: llm.KindInvalidArgument, Param: param, Message: fmt.Sprintf("invalid value for %q: the string is not valid UTF-8", param)}
	}
	return s, nil
}

func rerankInt(param string, v gjson.Result) (int32, *llm.Error) {
	if v.Type == gjson.Number {
		if f := v.Float(); f == math.Trunc(f) && f >= math.MinInt32 && f <= math.MaxInt32 {
			return int32(f), nil
		}
	}
	return 0, badRerankValue(param, "an integer", v)
}

func rerankDocuments(v gjson.Result) ([]*pb.RerankDocument, *llm.Error) {
	if !v.IsArray() {
		return nil, badRerankValue("documents", "an array of strings or objects", v)
	}
	var docs []*pb.RerankDocument
	var err *llm.Error
	v.ForEach(func(_, e gjson.Result) bool {
		param := "documents[" + strconv.Itoa(len(docs)) + "]"
		var d *pb.RerankDocument
		d, err = rerankDocument(param, e)
		docs = append(docs, d)
		return err == nil
	})
	return docs, err
}

func rerankDocument(param string, e gjson.Result) (*pb.RerankDocument, *llm.Error) {
	switch {
	case e.Type == gjson.String:
		s, err := rerankString(param, e)
		return &pb.RerankDocument{Document: &pb.RerankDocument_Text{Text: s}}, err
	case !e.IsObject():
		return nil, badRerankValue(param, "a string or an object", e)
	}
	var keys []gjson.Result
	var vals []gjson.Result
	e.ForEach(func(k, v gjson.Result) bool {
		keys, vals = append(keys, k), append(vals, v)
		return true
	})
	if len(keys) == 1 && keys[0].String() == "text" && vals[0].Type == gjson.String {
		s, err := rerankString(param+".text", vals[0])
		return &pb.RerankDocument{Document: &pb.RerankDocument_Text{Text: s}}, err
	}
	if len(keys) == 1 && keys[0].String() == "structured" && vals[0].Get("fields").IsArray() {
		return typedStructured(param+".structured.fields", vals[0].Get("fields"))
	}
	s := &pb.StructuredDocument{Fields: make([]*pb.DocumentField, 0, len(keys))}
	for i, k := range keys {
		key, err := rerankString(param, k)
		if err != nil {
			return nil, err
		}
		val := vals[i].Raw // a non-string value is kept as its JSON text
		if vals[i].Type == gjson.String {
			if val, err = rerankString(param+"."+key, vals[i]); err != nil {
				return nil, err
			}
		} else if !utf8.ValidString(val) {
			return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: param + "." + key,
				Message: fmt.Sprintf("invalid value for %q: the value is not valid UTF-8", param+"."+key)}
		}
		s.Fields = append(s.Fields, &pb.DocumentField{Key: key, Value: val})
	}
	return &pb.RerankDocument{Document: &pb.RerankDocument_Structured{Structured: s}}, nil
}

// typedStructured reads the proto JSON form of a structured document's fields.
func typedStructured(param string, fields gjson.Result) (*pb.RerankDocument, *llm.Error) {
	s := &pb.StructuredDocument{}
	var err *llm.Error
	fields.ForEach(func(_, f gjson.Result) bool {
		p := param + "[" + strconv.Itoa(len(s.Fields)) + "]"
		if !f.IsObject() {
			err = badRerankValue(p, "an object with key and value", f)
			return false
		}
		var k, v string
		if k, err = rerankString(p+".key", f.Get("key")); err != nil {
			return false
		}
		if val := f.Get("value"); val.Exists() {
			if v, err = rerankString(p+".value", val); err != nil {
				return false
			}
		}
		s.Fields = append(s.Fields, &pb.DocumentField{Key: k, Value: v})
		return true
	})
	return &pb.RerankDocument{Document: &pb.RerankDocument_Structured{Structured: s}}, err
}

// appendRerank appends r in the shape of the Jina, vLLM and Cohere rerank APIs:
//
//	{"id", "model", "results": [{"index", "relevance_score", "document"?}], "usage": {"total_tokens"},
//	 "meta": {"billed_units": {"search_units"}}?}
//
// A returned document is {"text": ...} for a plain one and the object of its fields for a
// structured one; "meta" is written only when the provider bills search units.
func appendRerank(b []byte, r *pb.RerankResponse) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.GetId())
	b = append(b, `,"model":`...)
	b = appendString(b, r.GetModel())
	b = append(b, `,"results":[`...)
	for i, res := range r.GetResults() {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(res.GetIndex()), 10)
		b = append(b, `,"relevance_score":`...)
		b = appendFloat64(b, res.GetRelevanceScore())
		if d := res.GetDocument(); d != nil {
			b = append(b, `,"document":`...)
			b = appendRerankDocument(b, d)
		}
		b = append(b, '}')
	}
	b = append(b, `],"usage":{"total_tokens":`...)
	b = strconv.AppendInt(b, int64(r.GetUsage().GetTotalTokens()), 10)
	b = append(b, '}')
	if su := r.GetUsage().GetSearchUnits(); su > 0 {
		b = append(b, `,"meta":{"billed_units":{"search_units":`...)
		b = strconv.AppendInt(b, int64(su), 10)
		b = append(b, `}}`...)
	}
	return append(b, '}')
}

func appendRerankDocument(b []byte, d *pb.RerankDocument) []byte {
	s := d.GetStructured()
	if s == nil {
		b = append(b, `{"text":`...)
		b = appendString(b, d.GetText())
		return append(b, '}')
	}
	b = append(b, '{')
	for i, f := range s.GetFields() {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.GetKey())
		b = append(b, ':')
		b = appendString(b, f.GetValue())
	}
	return append(b, '}')
}

// appendFloat64 appends f in the shortest form that round-trips; NaN and infinities (which JSON
// lacks) are written as 0.
func appendFloat64(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, '0')
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
