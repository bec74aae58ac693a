// Package kservetest is a KServe v2 / Triton inference server for tests: a GRPCInferenceService
// on loopback whose answers are scripted (Server) or come from a small model that answers like
// TensorRT-LLM's ensemble (NewModel). Answers are encoded the way Triton sends them (raw output
// contents), independently of the kserve adapter's decoder.
package kservetest

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/go/kserve/inference"
)

// StreamServer is the server side of one ModelStreamInfer call.
type StreamServer = grpc.BidiStreamingServer[pb.ModelInferRequest, pb.ModelStreamInferResponse]

// Server answers ModelInfer with Infer and ModelStreamInfer with Stream (called with the
// stream's first request). When Reqs is not nil, every request is sent to it before it is
// answered.
type Server struct {
	pb.UnimplementedGRPCInferenceServiceServer
	Infer  func(ctx context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error)
	Stream func(in *pb.ModelInferRequest, s StreamServer) error
	Reqs   chan *pb.ModelInferRequest
}

// ModelInfer implements pb.GRPCInferenceServiceServer.
func (f *Server) ModelInfer(ctx context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	f.record(in)
	if f.Infer == nil {
		return nil, status.Error(codes.Unimplemented, "ModelInfer is not scripted")
	}
	return f.Infer(ctx, in)
}

// ModelStreamInfer implements pb.GRPCInferenceServiceServer.
func (f *Server) ModelStreamInfer(s StreamServer) error {
	in, err := s.Recv()
	if err != nil {
		return err
	}
	f.record(in)
	if f.Stream == nil {
		return status.Error(codes.Unimplemented, "ModelStreamInfer is not scripted")
	}
	return f.Stream(in, s)
}

func (f *Server) record(in *pb.ModelInferRequest) {
	if f.Reqs != nil {
		f.Reqs <- in
	}
}

// Start serves f on a loopback port until t ends and returns its address (host:port).
func Start(t testing.TB, f *Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pb.RegisterGRPCInferenceServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// RawBytes encodes BYTES elements as Triton's raw contents: per element, a 4-byte little-endian
// length, then the bytes.
func RawBytes(elems ...string) []byte {
	var b []byte
	for _, e := range elems {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
	}
	return b
}

// RawFP32 encodes FP32 values as Triton's raw contents (little-endian).
func RawFP32(v ...float32) []byte {
	var b []byte
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

// Tensor names NewModel's model reads and writes (TensorRT-LLM's ensemble names).
const (
	TextInput    = "text_input"
	TextOutput   = "text_output"
	TokensOutput = "output_tokens" // INT32 number of generated words, sent when requested
)

// NewModel returns a Server that answers like a TensorRT-LLM ensemble behind Triton, for
// end-to-end tests. It expects the kserve adapter's "plain" prompt template and answers
// "pong: <last user text>":
//
//   - ModelInfer requesting TextOutput: the prompt followed by the answer (the ensemble echoes
//     its input), plus TokensOutput when requested;
//   - ModelStreamInfer: one response per word of the answer, each with TokensOutput (cumulative)
//     when requested, then Triton's empty final response;
//   - ModelInfer requesting any other output: embeddings, an FP32 [n, d] tensor of that name
//     holding vector(text) for each BYTES input element, in input order.
func NewModel(vector func(text string) []float32) *Server {
	return &Server{
		Infer: func(_ context.Context, in *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
			out := requested(in)
			if out[TextOutput] {
				prompt := prompt(in)
				answer := "pong: " + lastUser(prompt)
				return textResponse(in, prompt+answer, len(strings.Fields(answer)), out[TokensOutput], false), nil
			}
			return embeddings(in, vector)
		},
		Stream: func(in *pb.ModelInferRequest, s StreamServer) error {
			out := requested(in)
			words := strings.SplitAfter("pong: "+lastUser(prompt(in)), " ")
			for i, w := range words {
				if err := s.Send(&pb.ModelStreamInferResponse{InferResponse: textResponse(in, w, i+1, out[TokensOutput], false)}); err != nil {
					return err
				}
			}
			return s.Send(&pb.ModelStreamInferResponse{InferResponse: textResponse(in, "", 0, false, true)})
		},
	}
}

func requested(in *pb.ModelInferRequest) map[string]bool {
	out := map[string]bool{}
	for _, o := range in.GetOutputs() {
		out[o.GetName()] = true
	}
	return out
}

// prompt is the first element of the request's TextInput tensor.
func prompt(in *pb.ModelInferRequest) string {
	for _, t := range in.GetInputs() {
		if t.GetName() != TextInput {
			continue
		}
		if b := t.GetContents().GetBytesContents(); len(b) > 0 {
			return string(b[0])
		}
	}
	return ""
}

// lastUser reads the last user turn of a "plain" prompt ("…User: text\nAssistant:").
func lastUser(prompt string) string {
	i := strings.LastIndex(prompt, "User: ")
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(prompt[i+len("User: "):], "\nAssistant:")
}

// textResponse is a Triton answer carrying text; final marks the empty final response of a
// decoupled model, which has no outputs.
func textResponse(in *pb.ModelInferRequest, text string, tokens int, withTokens, final bool) *pb.ModelInferResponse {
	r := &pb.ModelInferResponse{ModelName: in.GetModelName(), ModelVersion: "1", Id: in.GetId()}
	if final {
		r.Parameters = map[string]*pb.InferParameter{"triton_final_response": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true}}}
		return r
	}
	r.Outputs = []*pb.ModelInferResponse_InferOutputTensor{{Name: TextOutput, Datatype: "BYTES", Shape: []int64{1, 1}}}
	r.RawOutputContents = [][]byte{RawBytes(text)}
	if withTokens {
		r.Outputs = append(r.Outputs, &pb.ModelInferResponse_InferOutputTensor{Name: TokensOutput, Datatype: "INT32", Shape: []int64{1, 1}})
		r.RawOutputContents = append(r.RawOutputContents, binary.LittleEndian.AppendUint32(nil, uint32(tokens)))
	}
	return r
}

func embeddings(in *pb.ModelInferRequest, vector func(string) []float32) (*pb.ModelInferResponse, error) {
	if len(in.GetInputs()) != 1 || len(in.GetOutputs()) != 1 || in.GetInputs()[0].GetDatatype() != "BYTES" {
		return nil, status.Errorf(codes.InvalidArgument, "expected one BYTES input and one requested output, got %d inputs and %d outputs",
			len(in.GetInputs()), len(in.GetOutputs()))
	}
	texts := in.GetInputs()[0].GetContents().GetBytesContents()
	var flat []float32
	d := 0
	for _, t := range texts {
		v := vector(string(t))
		d = len(v)
		flat = append(flat, v...)
	}
	return &pb.ModelInferResponse{ModelName: in.GetModelName(), ModelVersion: "1", Id: in.GetId(),
		Outputs:           []*pb.ModelInferResponse_InferOutputTensor{{Name: in.GetOutputs()[0].GetName(), Datatype: "FP32", Shape: []int64{int64(len(texts)), int64(d)}}},
		RawOutputContents: [][]byte{RawFP32(flat...)}}, nil
}
