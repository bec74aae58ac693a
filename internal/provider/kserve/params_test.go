package kserve_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/switchyard/switchyard/gen/go/kserve/inference"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/kserve"
	"github.com/switchyard/switchyard/internal/provider/kserve/kservetest"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// TestParamRules sends each canonical parameter and checks the rule: renamed parameters arrive
// as the input tensor rule.Native; dropped ones are absent and warned about (and sent once their
// tensor is configured); rejected ones fail with KindInvalidArgument before any call.
func TestParamRules(t *testing.T) {
	answer := func(context.Context, *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
		return textResponse("x"), nil
	}
	tensor := func(in *pb.ModelInferRequest, name string) *pb.ModelInferRequest_InferInputTensor {
		for _, t := range in.GetInputs() {
			if t.GetName() == name {
				return t
			}
		}
		return nil
	}
	base := func(req llm.ChatRequest) *llm.ChatRequest {
		req.Model = "ensemble"
		if req.Messages == nil {
			req.Messages = []llm.Message{llm.TextMessage("user", "x")}
		}
		return &req
	}
	renamed := func(req llm.ChatRequest, want *pb.InferTensorContents) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			f := &kservetest.Server{Infer: answer}
			p := start(t, f, nil)
			ctx, warnings := llm.WithWarnings(context.Background())
			if _, err := p.Chat(ctx, base(req)); err != nil {
				t.Fatal(err)
			}
			got := tensor(<-f.Reqs, rule.Native)
			if diff := cmp.Diff(want, got.GetContents(), protocmp.Transform()); diff != "" {
				t.Errorf("tensor %s mismatch (-want +got):\n%s", rule.Native, diff)
			}
			if w := warnings.List(); len(w) != 0 {
				t.Errorf("warnings %q for a renamed parameter", w)
			}
		}
	}
	// dropped checks the warning by default and, when option is set, the tensor sent instead.
	dropped := func(req llm.ChatRequest, option, tensorName string, want *pb.InferTensorContents) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			f := &kservetest.Server{Infer: answer}
			p := start(t, f, nil)
			ctx, warnings := llm.WithWarnings(context.Background())
			if _, err := p.Chat(ctx, base(req)); err != nil {
				t.Fatal(err)
			}
			in := <-f.Reqs
			if w := warnings.List(); len(w) != 1 || len(in.GetInputs()) != 3 { // text_input, max_tokens, stream: nothing else
				t.Errorf("warnings %q, %d inputs; want one warning and only text_input, max_tokens and stream", w, len(in.GetInputs()))
			}
			if option == "" {
				return
			}
			p = start(t, f, map[string]string{option: tensorName})
			if _, err := p.Chat(context.Background(), base(req)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, tensor(<-f.Reqs, tensorName).GetContents(), protocmp.Transform()); diff != "" {
				t.Errorf("with %s set, tensor %s mismatch (-want +got):\n%s", option, tensorName, diff)
			}
		}
	}
	rejected := func(req llm.ChatRequest) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			f := &kservetest.Server{Infer: answer}
			p := start(t, f, nil)
			_, err := p.Chat(context.Background(), base(req))
			if llm.KindOf(err) != llm.KindInvalidArgument {
				t.Fatalf("err = %v; want invalid_argument", err)
			}
			if len(f.Reqs) != 0 {
				t.Error("a rejected request reached the upstream")
			}
		}
	}
	user := func(p llm.Part) []llm.Message {
		return []llm.Message{{Role: "user", ContentIsParts: true, Content: []llm.Part{p}}}
	}
	fp32 := func(v float32) *pb.InferTensorContents { return &pb.InferTensorContents{Fp32Contents: []float32{v}} }
	checks := map[string]providertest.ParamCheck{
		"temperature":         renamed(llm.ChatRequest{Temperature: llm.Ptr(0.75)}, fp32(0.75)),
		"top_p":               renamed(llm.ChatRequest{TopP: llm.Ptr(0.5)}, fp32(0.5)),
		"max_tokens":          renamed(llm.ChatRequest{MaxTokens: llm.Ptr[int32](77)}, &pb.InferTensorContents{IntContents: []int32{77}}),
		"stop":                renamed(llm.ChatRequest{Stop: []string{"a", "b"}}, &pb.InferTensorContents{BytesContents: [][]byte{[]byte("a"), []byte("b")}}),
		"presence_penalty":    dropped(llm.ChatRequest{PresencePenalty: llm.Ptr(1.5)}, "presence_penalty_input", "presence_penalty", fp32(1.5)),
		"frequency_penalty":   dropped(llm.ChatRequest{FrequencyPenalty: llm.Ptr(-0.5)}, "frequency_penalty_input", "frequency_penalty", fp32(-0.5)),
		"seed":                dropped(llm.ChatRequest{Seed: llm.Ptr[int64](42)}, "seed_input", "random_seed", &pb.InferTensorContents{Uint64Contents: []uint64{42}}),
		"n":                   rejected(llm.ChatRequest{N: llm.Ptr[int32](2)}),
		"response_format":     rejected(llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_object"}}),
		"tools":               rejected(llm.ChatRequest{Tools: []llm.Tool{{Name: "f"}}}),
		"tool_choice":         rejected(llm.ChatRequest{ToolChoice: &llm.ToolChoice{Mode: "required"}}),
		"parallel_tool_calls": dropped(llm.ChatRequest{ParallelToolCalls: llm.Ptr(false)}, "", "", nil),
		"user":                dropped(llm.ChatRequest{User: "u-1"}, "", "", nil),
		"reasoning_effort":    dropped(llm.ChatRequest{ReasoningEffort: "high"}, "", "", nil),
		"image_url":           rejected(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartImageURL, ImageURL: "https://x.test/a.png"})}),
		"input_audio":         rejected(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartInputAudio, AudioData: "UklGRg==", AudioFormat: "wav"})}),
		"file":                rejected(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartFile, FileID: "file-1"})}),
		"embeddings.dimensions": func(t *testing.T, _ provider.ParamRule) {
			f := &kservetest.Server{Infer: answer}
			p := start(t, f, nil)
			_, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: []string{"a"}, Dimensions: llm.Ptr[int32](64)})
			if llm.KindOf(err) != llm.KindInvalidArgument || len(f.Reqs) != 0 {
				t.Fatalf("err = %v; want invalid_argument before any call", err)
			}
		},
	}
	providertest.CheckParamRules(t, kserve.ParamRules(), checks)
}
