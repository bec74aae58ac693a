package kserve_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/switchyard/switchyard/gen/go/kserve/inference"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/kserve"
	"github.com/switchyard/switchyard/internal/provider/kserve/kservetest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

func start(t *testing.T, f *kservetest.Server, opts map[string]string) *kserve.Provider {
	t.Helper()
	f.Reqs = make(chan *pb.ModelInferRequest, 16)
	addr := kservetest.Start(t, f)
	o := map[string]string{"retry_backoff": "1ms"}
	for k, v := range opts {
		o[k] = v
	}
	p, err := kserve.NewProvider(provider.Config{Name: "trt", Type: "kserve", BaseURL: addr, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// textResponse is a TensorRT-LLM ensemble answer: text_output, BYTES [1, 1], raw.
func textResponse(text string, extra ...*pb.ModelInferResponse_InferOutputTensor) *pb.ModelInferResponse {
	r := &pb.ModelInferResponse{ModelName: "ensemble", ModelVersion: "1", Id: "req-1",
		Outputs:           []*pb.ModelInferResponse_InferOutputTensor{{Name: "text_output", Datatype: "BYTES", Shape: []int64{1, 1}}},
		RawOutputContents: [][]byte{kservetest.RawBytes(text)}}
	for _, o := range extra {
		r.Outputs = append(r.Outputs, o)
	}
	return r
}

func userReq(text string) *llm.ChatRequest {
	return &llm.ChatRequest{Model: "ensemble", Messages: []llm.Message{llm.TextMessage("system", "Be brief."), llm.TextMessage("user", text)}}
}

const wantPrompt = "Be brief.\n\nUser: Hi\nAssistant:"

func TestChat(t *testing.T) {
	f := &kservetest.Server{Infer: func(context.Context, *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
		return textResponse(wantPrompt + " Hello there."), nil // the ensemble echoes the prompt
	}}
	p := start(t, f, nil)
	req := userReq("Hi")
	req.Temperature, req.TopP, req.MaxTokens, req.Stop = llm.Ptr(0.5), llm.Ptr(0.25), llm.Ptr[int32](64), []string{"\nUser:", "###"}
	got, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := &llm.ChatResponse{ID: "req-1", Model: "ensemble", Choices: []llm.Choice{{Content: llm.Ptr(" Hello there."), FinishReason: "stop"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response mismatch (-want +got):\n%s", diff)
	}
	wantReq := &pb.ModelInferRequest{ModelName: "ensemble",
		Inputs: []*pb.ModelInferRequest_InferInputTensor{
			{Name: "text_input", Datatype: "BYTES", Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte(wantPrompt)}}},
			{Name: "max_tokens", Datatype: "INT32", Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{IntContents: []int32{64}}},
			{Name: "temperature", Datatype: "FP32", Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{0.5}}},
			{Name: "top_p", Datatype: "FP32", Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{0.25}}},
			{Name: "stop_words", Datatype: "BYTES", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("\nUser:"), []byte("###")}}},
			{Name: "stream", Datatype: "BOOL", Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{BoolContents: []bool{false}}},
		},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "text_output"}}}
	if diff := cmp.Diff(wantReq, <-f.Reqs, protocmp.Transform(), protocmp.IgnoreEmptyMessages()); diff != "" {
		t.Errorf("upstream request mismatch (-want +got):\n%s", diff)
	}
}

func TestChatFinishReasonAndUsageFromTokenCount(t *testing.T) {
	cases := []struct {
		name       string
		tokens     int32
		wantFinish string
	}{
		{"below max_tokens", 3, "stop"},
		{"at max_tokens", 8, "length"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &kservetest.Server{Infer: func(context.Context, *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
				// typed contents this time: servers other than Triton use them
				return &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{
					{Name: "text_output", Datatype: "BYTES", Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("abc")}}},
					{Name: "sequence_length", Datatype: "INT32", Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{IntContents: []int32{c.tokens}}},
				}}, nil
			}}
			p := start(t, f, map[string]string{"completion_tokens_output": "sequence_length", "ensemble/default_max_tokens": "8"})
			got, err := p.Chat(context.Background(), userReq("Hi"))
			if err != nil {
				t.Fatal(err)
			}
			if got.Choices[0].FinishReason != c.wantFinish || got.Usage == nil || got.Usage.CompletionTokens != c.tokens {
				t.Errorf("finish %q usage %+v; want %q and %d completion tokens", got.Choices[0].FinishReason, got.Usage, c.wantFinish, c.tokens)
			}
			in := <-f.Reqs
			if n := len(in.GetOutputs()); n != 2 || in.GetOutputs()[1].GetName() != "sequence_length" {
				t.Errorf("requested outputs %v; want text_output and sequence_length", in.GetOutputs())
			}
			if mt := in.GetInputs()[1]; mt.GetName() != "max_tokens" || mt.GetContents().GetIntContents()[0] != 8 {
				t.Errorf("max_tokens input %v; want the per-model default 8", mt)
			}
		})
	}
}

// streamResponse is one response of a decoupled model on ModelStreamInfer.
func streamResponse(text string, final bool) *pb.ModelStreamInferResponse {
	r := textResponse(text)
	if final {
		r.Parameters = map[string]*pb.InferParameter{"triton_final_response": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true}}}
		if text == "" { // Triton's empty final response has no outputs
			r.Outputs, r.RawOutputContents = nil, nil
		}
	}
	return &pb.ModelStreamInferResponse{InferResponse: r}
}

func TestStream(t *testing.T) {
	cases := []struct {
		name string
		msgs []*pb.ModelStreamInferResponse
		want providertest.Assembled
	}{
		{name: "deltas then Triton's empty final response",
			msgs: []*pb.ModelStreamInferResponse{streamResponse("Hel", false), streamResponse("lo", false), streamResponse("", true)},
			want: providertest.Assembled{Role: "assistant", Content: "Hello", FinishReason: "stop", Chunks: 3}},
		{name: "final response with text",
			msgs: []*pb.ModelStreamInferResponse{streamResponse("Hel", false), streamResponse("lo", true)},
			want: providertest.Assembled{Role: "assistant", Content: "Hello", FinishReason: "stop", Chunks: 2}},
		{name: "server closes without a final flag",
			msgs: []*pb.ModelStreamInferResponse{streamResponse("Hi", false)},
			want: providertest.Assembled{Role: "assistant", Content: "Hi", FinishReason: "stop", Chunks: 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &kservetest.Server{Stream: func(_ *pb.ModelInferRequest, s grpc.BidiStreamingServer[pb.ModelInferRequest, pb.ModelStreamInferResponse]) error {
				for _, m := range c.msgs {
					if err := s.Send(m); err != nil {
						return err
					}
				}
				return nil
			}}
			p := start(t, f, nil)
			s, err := p.ChatStream(context.Background(), userReq("Hi"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := providertest.Collect(s)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(&c.want, got); diff != "" {
				t.Errorf("stream mismatch (-want +got):\n%s", diff)
			}
			in := <-f.Reqs
			if !in.GetParameters()["triton_enable_empty_final_response"].GetBoolParam() {
				t.Error("request without triton_enable_empty_final_response")
			}
			last := in.GetInputs()[len(in.GetInputs())-1]
			if last.GetName() != "stream" || !last.GetContents().GetBoolContents()[0] {
				t.Errorf("last input %v; want stream=true", last)
			}
		})
	}
}

func TestStreamUsageFromTokenCount(t *testing.T) {
	count := func(n int64) *pb.ModelInferResponse_InferOutputTensor {
		return &pb.ModelInferResponse_InferOutputTensor{Name: "output_tokens", Datatype: "INT64", Shape: []int64{1, 1}, Contents: &pb.InferTensorContents{Int64Contents: []int64{n}}}
	}
	f := &kservetest.Server{Stream: func(_ *pb.ModelInferRequest, s grpc.BidiStreamingServer[pb.ModelInferRequest, pb.ModelStreamInferResponse]) error {
		for i, text := range []string{"a", "b"} {
			if err := s.Send(&pb.ModelStreamInferResponse{InferResponse: textResponse(text, count(int64(i+1)))}); err != nil {
				return err
			}
		}
		return nil
	}}
	p := start(t, f, map[string]string{"completion_tokens_output": "output_tokens"})
	req := userReq("Hi")
	req.MaxTokens = llm.Ptr[int32](2)
	s, err := p.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := providertest.Collect(s)
	if err != nil {
		t.Fatal(err)
	}
	want := &providertest.Assembled{Role: "assistant", Content: "ab", FinishReason: "length", Usage: &llm.Usage{CompletionTokens: 2, TotalTokens: 2}, Chunks: 4}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stream mismatch (-want +got):\n%s", diff)
	}
}

func TestStreamErrorMessage(t *testing.T) {
	f := &kservetest.Server{Stream: func(_ *pb.ModelInferRequest, s grpc.BidiStreamingServer[pb.ModelInferRequest, pb.ModelStreamInferResponse]) error {
		if err := s.Send(streamResponse("par", false)); err != nil {
			return err
		}
		return s.Send(&pb.ModelStreamInferResponse{ErrorMessage: "in ensemble 'ensemble', Encountered error for requestId 1: out of KV cache blocks"})
	}}
	p := start(t, f, nil)
	s, err := p.ChatStream(context.Background(), userReq("Hi"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := providertest.Collect(s)
	e, ok := errors.AsType[*llm.Error](err)
	if got.Content != "par" || !ok || e.Kind != llm.KindUpstream || e.UpstreamMessage == "" {
		t.Fatalf("stream = %q, %v; want the first piece, then an upstream_error keeping the server's message", got.Content, err)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		stream bool
		want   llm.Kind
	}{
		{"unknown model", status.Error(codes.NotFound, "Request for unknown model: 'x' is not found"), false, llm.KindNotFound},
		{"unexpected input", status.Error(codes.InvalidArgument, "[request id: <id_unknown>] unexpected inference input 'temperature' for model 'm'"), false, llm.KindInvalidArgument},
		{"unavailable", status.Error(codes.Unavailable, "Server not ready"), false, llm.KindUnavailable},
		{"internal", status.Error(codes.Internal, "CUDA error"), false, llm.KindUpstream},
		{"stream unknown model", status.Error(codes.NotFound, "Request for unknown model"), true, llm.KindNotFound},
		{"stream unimplemented", status.Error(codes.Unimplemented, "unknown method ModelStreamInfer"), true, llm.KindNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &kservetest.Server{
				Infer: func(context.Context, *pb.ModelInferRequest) (*pb.ModelInferResponse, error) { return nil, c.err },
				Stream: func(*pb.ModelInferRequest, grpc.BidiStreamingServer[pb.ModelInferRequest, pb.ModelStreamInferResponse]) error {
					return c.err
				},
			}
			p := start(t, f, map[string]string{"max_retries": "0"})
			var err error
			if c.stream {
				var s llm.Stream
				if s, err = p.ChatStream(context.Background(), userReq("Hi")); err == nil {
					_, err = providertest.Collect(s)
					s.Close()
				}
			} else {
				_, err = p.Chat(context.Background(), userReq("Hi"))
			}
			if k := llm.KindOf(err); k != c.want {
				t.Errorf("err = %v; want %v", err, c.want)
			}
		})
	}
}

func TestRetriesModelInfer(t *testing.T) {
	var calls atomic.Int32
	f := &kservetest.Server{Infer: func(context.Context, *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
		if calls.Add(1) == 1 {
			return nil, status.Error(codes.Unavailable, "Server not ready")
		}
		return textResponse("ok"), nil
	}}
	p := start(t, f, map[string]string{"strip_prompt": "false"})
	got, err := p.Chat(context.Background(), userReq("Hi"))
	if err != nil || *got.Choices[0].Content != "ok" || calls.Load() != 2 {
		t.Fatalf("Chat = %v, %v after %d calls; want ok after 2", got, err, calls.Load())
	}
}

func TestCancelReachesUpstream(t *testing.T) {
	t.Run("chat", func(t *testing.T) {
		started, canceled := make(chan struct{}), make(chan struct{})
		f := &kservetest.Server{Infer: func(ctx context.Context, _ *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
			close(started)
			<-ctx.Done()
			close(canceled)
			return nil, ctx.Err()
		}}
		p := start(t, f, nil)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := p.Chat(ctx, userReq("Hi")); errc <- err }()
		<-started
		cancel()
		waitClosed(t, canceled)
		if err := <-errc; llm.KindOf(err) != llm.KindCanceled {
			t.Errorf("err = %v; want canceled", err)
		}
	})
	t.Run("stream", func(t *testing.T) {
		canceled := make(chan struct{})
		f := &kservetest.Server{Stream: func(_ *pb.ModelInferRequest, s grpc.BidiStreamingServer[pb.ModelInferRequest, pb.ModelStreamInferResponse]) error {
			if err := s.Send(streamResponse("a", false)); err != nil {
				return err
			}
			<-s.Context().Done()
			close(canceled)
			return nil
		}}
		p := start(t, f, nil)
		s, err := p.ChatStream(context.Background(), userReq("Hi"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		waitClosed(t, canceled)
		if _, err := s.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("Recv after Close = %v; want io.EOF", err)
		}
	})
}

// waitClosed fails the test if ch is not closed soon; the bound only catches a hang.
func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream did not see the cancellation")
	}
}

func TestEmbed(t *testing.T) {
	cases := []struct {
		name    string
		out     *pb.ModelInferResponse
		want    [][]float32
		wantErr bool
	}{
		{name: "raw FP32 [2, 3]", out: &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{{Name: "dense", Datatype: "FP32", Shape: []int64{2, 3}}},
			RawOutputContents: [][]byte{kservetest.RawFP32(1, 2, 3, 4, 5, 6)}}, want: [][]float32{{1, 2, 3}, {4, 5, 6}}},
		{name: "fp32_contents", out: &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{{Name: "dense", Datatype: "FP32", Shape: []int64{2, 1},
			Contents: &pb.InferTensorContents{Fp32Contents: []float32{0.5, -0.5}}}}}, want: [][]float32{{0.5}, {-0.5}}},
		{name: "values not divisible by inputs", out: &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{{Name: "dense", Datatype: "FP32"}},
			RawOutputContents: [][]byte{kservetest.RawFP32(1, 2, 3)}}, wantErr: true},
		{name: "wrong datatype", out: &pb.ModelInferResponse{Outputs: []*pb.ModelInferResponse_InferOutputTensor{{Name: "dense", Datatype: "FP16"}},
			RawOutputContents: [][]byte{{0, 0, 0, 0}}}, wantErr: true},
		{name: "missing output", out: &pb.ModelInferResponse{}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &kservetest.Server{Infer: func(context.Context, *pb.ModelInferRequest) (*pb.ModelInferResponse, error) { return c.out, nil }}
			p := start(t, f, map[string]string{"bge/embedding_input": "TEXT", "bge/embedding_output": "dense"})
			got, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "bge", Texts: []string{"a", "bb"}})
			if c.wantErr {
				if llm.KindOf(err) != llm.KindUpstream {
					t.Fatalf("err = %v; want upstream_error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got.Vectors); diff != "" {
				t.Errorf("vectors mismatch (-want +got):\n%s", diff)
			}
			wantReq := &pb.ModelInferRequest{ModelName: "bge",
				Inputs:  []*pb.ModelInferRequest_InferInputTensor{{Name: "TEXT", Datatype: "BYTES", Shape: []int64{2, 1}, Contents: &pb.InferTensorContents{BytesContents: [][]byte{[]byte("a"), []byte("bb")}}}},
				Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: "dense"}}}
			if diff := cmp.Diff(wantReq, <-f.Reqs, protocmp.Transform()); diff != "" {
				t.Errorf("upstream request mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPromptTemplates(t *testing.T) {
	msgs := []llm.Message{llm.TextMessage("developer", "Be brief."), llm.TextMessage("user", "Hi"), llm.TextMessage("assistant", "Hello."), llm.TextMessage("user", "Bye")}
	cases := []struct{ template, want string }{
		{"plain", "Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Bye\nAssistant:"},
		{"chatml", "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"},
		{"llama3", "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
			"<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"raw", "Be brief.\nHi\nHello.\nBye"},
	}
	for _, c := range cases {
		t.Run(c.template, func(t *testing.T) {
			f := &kservetest.Server{Infer: func(context.Context, *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
				return textResponse("x"), nil
			}}
			p := start(t, f, map[string]string{"prompt_template": c.template})
			if _, err := p.Chat(context.Background(), &llm.ChatRequest{Model: "m", Messages: msgs}); err != nil {
				t.Fatal(err)
			}
			if got := string((<-f.Reqs).GetInputs()[0].GetContents().GetBytesContents()[0]); got != c.want {
				t.Errorf("prompt\n%q\nwant\n%q", got, c.want)
			}
		})
	}
}

func TestNewValidatesOptions(t *testing.T) {
	cases := []struct {
		name    string
		opts    map[string]string
		wantErr bool
	}{
		{name: "defaults"},
		{name: "model and connection options", opts: map[string]string{"prompt_template": "llama3", "llama/prompt_template": "chatml", "seed_input": "random_seed", "tls": "true", "max_retries": "1"}},
		{name: "unknown template", opts: map[string]string{"prompt_template": "vicuna"}, wantErr: true},
		{name: "unknown per-model template", opts: map[string]string{"m/prompt_template": "vicuna"}, wantErr: true},
		{name: "unknown key", opts: map[string]string{"text_inptu": "x"}, wantErr: true},
		{name: "empty text output", opts: map[string]string{"text_output": ""}, wantErr: true},
		{name: "bad default_max_tokens", opts: map[string]string{"default_max_tokens": "0"}, wantErr: true},
		{name: "bad strip_prompt", opts: map[string]string{"strip_prompt": "maybe"}, wantErr: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := kserve.New(provider.Config{BaseURL: "triton:8001", Options: c.opts})
			if (err != nil) != c.wantErr {
				t.Fatalf("New = %v; want error %v", err, c.wantErr)
			}
			if err == nil {
				_ = p.(*kserve.Provider).Close()
			}
		})
	}
}
