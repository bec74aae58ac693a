package kserve

import (
	"encoding/binary"
	"fmt"

	pb "github.com/switchyard/switchyard/gen/go/kserve/inference"
	"github.com/switchyard/switchyard/internal/pbconv"
)

// KServe v2 data types used here.
const (
	typeBytes  = "BYTES"
	typeBool   = "BOOL"
	typeInt32  = "INT32"
	typeUint64 = "UINT64"
	typeFP32   = "FP32"
)

type input = pb.ModelInferRequest_InferInputTensor

// Scalars are sent with shape [1, 1]: a batch of one, as models with max_batch_size > 0
// (TensorRT-LLM's ensemble and BLS models) expect. Contents are typed, never raw.
func bytesInput(name string, vals ...[]byte) *input {
	return &input{Name: name, Datatype: typeBytes, Shape: []int64{1, int64(len(vals))}, Contents: &pb.InferTensorContents{BytesContents: vals}}
}

func int32Input(name string, v int32) *input {
	return &input{Name: name, Datatype: typeInt32, Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{IntContents: []int32{v}}}
}

func fp32Input(name string, v float32) *input {
	return &input{Name: name, Datatype: typeFP32, Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{v}}}
}

func boolInput(name string, v bool) *input {
	return &input{Name: name, Datatype: typeBool, Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{BoolContents: []bool{v}}}
}

func uint64Input(name string, v uint64) *input {
	return &input{Name: name, Datatype: typeUint64, Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{Uint64Contents: []uint64{v}}}
}

// output finds the output tensor name in r and its raw contents (nil when the server used typed
// contents; Triton always sends raw).
func output(r *pb.ModelInferResponse, name string) (*pb.ModelInferResponse_InferOutputTensor, []byte, bool) {
	for i, o := range r.GetOutputs() {
		if o.GetName() != name {
			continue
		}
		var raw []byte
		if i < len(r.GetRawOutputContents()) {
			raw = r.GetRawOutputContents()[i]
		}
		return o, raw, true
	}
	return nil, nil, false
}

// bytesElems decodes a BYTES tensor. Raw BYTES contents are a sequence of elements, each a
// 4-byte little-endian length followed by that many bytes.
func bytesElems(o *pb.ModelInferResponse_InferOutputTensor, raw []byte) ([][]byte, error) {
	if o.GetDatatype() != typeBytes {
		return nil, fmt.Errorf("output %s is %s, want BYTES", o.GetName(), o.GetDatatype())
	}
	if raw == nil {
		return o.GetContents().GetBytesContents(), nil
	}
	var out [][]byte
	for len(raw) > 0 {
		if len(raw) < 4 {
			return nil, fmt.Errorf("output %s: truncated element length", o.GetName())
		}
		n := binary.LittleEndian.Uint32(raw)
		raw = raw[4:]
		if uint64(n) > uint64(len(raw)) {
			return nil, fmt.Errorf("output %s: element of %d bytes in %d", o.GetName(), n, len(raw))
		}
		out = append(out, raw[:n])
		raw = raw[n:]
	}
	return out, nil
}

// fp32Elems decodes an FP32 tensor (raw little-endian, or fp32_contents).
func fp32Elems(o *pb.ModelInferResponse_InferOutputTensor, raw []byte) ([]float32, error) {
	if o.GetDatatype() != typeFP32 {
		return nil, fmt.Errorf("output %s is %s, want FP32", o.GetName(), o.GetDatatype())
	}
	if raw == nil {
		return o.GetContents().GetFp32Contents(), nil
	}
	v, err := pbconv.Float32s(raw)
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", o.GetName(), err)
	}
	return v, nil
}

// intScalar decodes the first element of an integer tensor (INT32 or INT64; raw or typed).
func intScalar(o *pb.ModelInferResponse_InferOutputTensor, raw []byte) (int64, error) {
	c := o.GetContents()
	switch o.GetDatatype() {
	case typeInt32:
		if raw != nil && len(raw) >= 4 {
			return int64(int32(binary.LittleEndian.Uint32(raw))), nil
		}
		if len(c.GetIntContents()) > 0 {
			return int64(c.GetIntContents()[0]), nil
		}
	case "INT64":
		if raw != nil && len(raw) >= 8 {
			return int64(binary.LittleEndian.Uint64(raw)), nil
		}
		if len(c.GetInt64Contents()) > 0 {
			return c.GetInt64Contents()[0], nil
		}
	default:
		return 0, fmt.Errorf("output %s is %s, want INT32 or INT64", o.GetName(), o.GetDatatype())
	}
	return 0, fmt.Errorf("output %s is empty", o.GetName())
}
