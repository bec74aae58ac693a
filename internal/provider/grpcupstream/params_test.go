package grpcupstream_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/grpcupstream"
	"github.com/switchyard/switchyard/internal/provider/providertest"
)

// TestParamRules sends each canonical parameter and checks that the upstream request carries it
// in the field the rule names (rule.Native), with the expected value, and that nothing is warned.
func TestParamRules(t *testing.T) {
	answer := &pb.CreateChatCompletionResponse{Choices: []*pb.Choice{{Message: &pb.AssistantMessage{Content: llm.Ptr("ok")}, FinishReason: "stop"}}}
	// field returns the value of the field named native in m (or in the first content part of
	// the last message, for the content-part parameters).
	field := func(t *testing.T, m proto.Message, native string) any {
		t.Helper()
		r := m.ProtoReflect()
		if req, ok := m.(*pb.CreateChatCompletionRequest); ok && r.Descriptor().Fields().ByName(protoreflect.Name(native)) == nil {
			msgs := req.GetMessages()
			r = msgs[len(msgs)-1].GetContent().GetParts().GetParts()[0].ProtoReflect()
		}
		fd := r.Descriptor().Fields().ByName(protoreflect.Name(native))
		if fd == nil {
			t.Fatalf("no field %q", native)
		}
		if !r.Has(fd) {
			t.Fatalf("field %q not set", native)
		}
		return r.Get(fd).Interface()
	}
	chat := func(req llm.ChatRequest, want any) providertest.ParamCheck {
		return func(t *testing.T, rule provider.ParamRule) {
			f := &fake{chat: func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
				return answer, nil
			}}
			p := start(t, f, nil)
			if req.Messages == nil {
				req.Messages = []llm.Message{llm.TextMessage("user", "x")}
			}
			req.Model = "m"
			ctx, warnings := llm.WithWarnings(context.Background())
			if _, err := p.Chat(ctx, &req); err != nil {
				t.Fatal(err)
			}
			got := field(t, (<-f.reqs).(proto.Message), rule.Native)
			if pm, ok := got.(protoreflect.Message); ok {
				got = pm.Interface()
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", rule.Native, diff)
			}
			if w := warnings.List(); len(w) != 0 {
				t.Errorf("warnings %q for a passed parameter", w)
			}
		}
	}
	user := func(p llm.Part) []llm.Message {
		return []llm.Message{{Role: "user", ContentIsParts: true, Content: []llm.Part{p}}}
	}
	checks := map[string]providertest.ParamCheck{
		"temperature":       chat(llm.ChatRequest{Temperature: llm.Ptr(1.5)}, 1.5),
		"top_p":             chat(llm.ChatRequest{TopP: llm.Ptr(0.3)}, 0.3),
		"max_tokens":        chat(llm.ChatRequest{MaxTokens: llm.Ptr[int32](77)}, int32(77)),
		"stop":              func(t *testing.T, r provider.ParamRule) { checkList(t, r, llm.ChatRequest{Stop: []string{"a", "b"}}) },
		"presence_penalty":  chat(llm.ChatRequest{PresencePenalty: llm.Ptr(-1.5)}, -1.5),
		"frequency_penalty": chat(llm.ChatRequest{FrequencyPenalty: llm.Ptr(1.25)}, 1.25),
		"seed":              chat(llm.ChatRequest{Seed: llm.Ptr[int64](7)}, int64(7)),
		"n":                 chat(llm.ChatRequest{N: llm.Ptr[int32](3)}, int32(3)),
		"response_format":   chat(llm.ChatRequest{ResponseFormat: &llm.ResponseFormat{Type: "json_object"}}, &pb.ResponseFormat{Type: "json_object"}),
		"tools": func(t *testing.T, r provider.ParamRule) {
			checkList(t, r, llm.ChatRequest{Tools: []llm.Tool{{Name: "f"}}})
		},
		"tool_choice":         chat(llm.ChatRequest{Tools: []llm.Tool{{Name: "f"}}, ToolChoice: &llm.ToolChoice{Mode: "required"}}, &pb.ToolChoice{Choice: &pb.ToolChoice_Mode{Mode: "required"}}),
		"parallel_tool_calls": chat(llm.ChatRequest{Tools: []llm.Tool{{Name: "f"}}, ParallelToolCalls: llm.Ptr(false)}, false),
		"user":                chat(llm.ChatRequest{User: "u-9"}, "u-9"),
		"reasoning_effort":    chat(llm.ChatRequest{ReasoningEffort: "high"}, "high"),
		"image_url":           chat(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartImageURL, ImageURL: "https://x.test/a.png", ImageDetail: "high"})}, &pb.ImageURL{Url: "https://x.test/a.png", Detail: "high"}),
		"input_audio":         chat(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartInputAudio, AudioData: "UklGRg==", AudioFormat: "wav"})}, &pb.InputAudio{Data: "UklGRg==", Format: "wav"}),
		"file":                chat(llm.ChatRequest{Messages: user(llm.Part{Type: llm.PartFile, FileID: "file-1"})}, &pb.File{FileId: "file-1"}),
		"embeddings.dimensions": func(t *testing.T, rule provider.ParamRule) {
			f := &fake{embed: func(context.Context, *pb.CreateEmbeddingRequest) (*pb.CreateEmbeddingResponse, error) {
				return &pb.CreateEmbeddingResponse{Data: []*pb.Embedding{{Embedding: []float32{1}}}}, nil
			}}
			p := start(t, f, nil)
			if _, err := p.Embed(context.Background(), &llm.EmbeddingRequest{Model: "e", Texts: []string{"a"}, Dimensions: llm.Ptr[int32](256)}); err != nil {
				t.Fatal(err)
			}
			if got := field(t, (<-f.reqs).(proto.Message), rule.Native); got != int32(256) {
				t.Errorf("%s = %v; want 256", rule.Native, got)
			}
		},
	}
	providertest.CheckParamRules(t, grpcupstream.ParamRules(), checks)
}

// checkList sends req and checks that the repeated field rule.Native carries as many values as
// were sent (stop sequences or tools).
func checkList(t *testing.T, rule provider.ParamRule, req llm.ChatRequest) {
	t.Helper()
	f := &fake{chat: func(context.Context, *pb.CreateChatCompletionRequest) (*pb.CreateChatCompletionResponse, error) {
		return &pb.CreateChatCompletionResponse{}, nil
	}}
	p := start(t, f, nil)
	req.Model, req.Messages = "m", []llm.Message{llm.TextMessage("user", "x")}
	if _, err := p.Chat(context.Background(), &req); err != nil {
		t.Fatal(err)
	}
	in := (<-f.reqs).(*pb.CreateChatCompletionRequest)
	r := in.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(rule.Native))
	if fd == nil || !fd.IsList() || r.Get(fd).List().Len() != max(len(req.Stop), len(req.Tools)) {
		t.Errorf("field %q of %v does not carry the %d values sent", rule.Native, in, max(len(req.Stop), len(req.Tools)))
	}
}
