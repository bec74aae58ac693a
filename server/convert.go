package server

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/switchyard/switchyard/internal/llm"
)

// structJSON returns s as JSON text, or nil if s is nil. param is a format for the request field,
// named in the error.
func structJSON(s *structpb.Struct, param string, args ...any) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	b, err := protojson.Marshal(s)
	if err != nil {
		p := fmt.Sprintf(param, args...)
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Message: "Invalid JSON Schema in '" + p + "'.", Param: p, Err: err}
	}
	return b, nil
}
