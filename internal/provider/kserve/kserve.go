// Package kserve adapts model servers speaking the KServe v2 / Triton inference protocol over
// gRPC (inference.GRPCInferenceService, vendored in proto/third_party/kserve) to llm.Provider:
// Triton with TensorRT-LLM's ensemble or BLS model, and any text-generation or embedding model
// behind a KServe v2 server.
//
// Chat renders the messages into one prompt (see the templates below) and calls ModelInfer;
// ChatStream calls Triton's ModelStreamInfer (bidirectional: one request is sent, each response
// carries the next piece of text, as decoupled models such as TensorRT-LLM's send it). The
// protocol has no tool calls, images or structured output: such requests are refused with a
// parameter-class error. It reports no token counts either: the answer's usage is absent unless
// the model has an output with the number of generated tokens (completion_tokens_output), and the
// finish reason is "stop", or "length" when that number reaches max_tokens.
//
// Embed sends the texts as one BYTES tensor of shape [n, 1] (a batch of n) and reads an FP32
// output of shape [n, d], raw little-endian or in fp32_contents.
//
// Configuration: BaseURL, APIKey, Headers, Timeout and the connection options are those of
// grpcupstream (tls, tls_ca_file, tls_server_name, authority, compression, gzip, max_message_bytes,
// keepalive_time, max_retries, retry_backoff). ModelInfer calls are retried by that policy;
// ModelStreamInfer, a bidirectional stream, cannot be retried by the interceptor and is not.
//
// Model options, each settable for all models ("key") or for one ("<model>/key"):
//
//	prompt_template           plain (default) | chatml | llama3 | raw
//	                            plain:  system texts + "\n\n", then "User: …\n" / "Assistant: …\n", then "Assistant:"
//	                            chatml: <|im_start|>role\n…<|im_end|>\n …, then <|im_start|>assistant\n
//	                            llama3: <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n…<|eot_id|> …, then the assistant header
//	                            raw:    message texts joined by "\n"
//	text_input                prompt tensor, BYTES (default text_input)
//	text_output               generated text tensor, BYTES (default text_output)
//	max_tokens_input          INT32 (default max_tokens)
//	temperature_input         FP32 (default temperature)
//	top_p_input               FP32 (default top_p)
//	stop_input                BYTES [1, n] (default stop_words)
//	stream_input              BOOL (default stream)
//	seed_input                UINT64 (default none; TensorRT-LLM: random_seed)
//	presence_penalty_input    FP32 (default none; TensorRT-LLM: presence_penalty)
//	frequency_penalty_input   FP32 (default none; TensorRT-LLM: frequency_penalty)
//	completion_tokens_output  INT32/INT64 generated token count (default none)
//	default_max_tokens        max_tokens when the request has none (default 1024)
//	strip_prompt              true (default) | false: remove the prompt when a blocking answer starts with it
//	                          (TensorRT-LLM's ensemble returns it unless exclude_input_in_output is set)
//	embedding_input           BYTES (default text_input)
//	embedding_output          FP32 (default embedding)
//	model_version             model_version sent with every request (default: the server's choice)
//
// An input option set to "" means the model has no such input: the parameter is dropped with a
// warning (see ParamRules).
package kserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"google.golang.org/grpc"

	pb "github.com/switchyard/switchyard/gen/go/kserve/inference"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/provider"
	"github.com/switchyard/switchyard/internal/provider/grpcupstream"
)

// Triton's request and response parameters for the end of a decoupled stream.
const (
	paramEnableFinal = "triton_enable_empty_final_response"
	paramFinal       = "triton_final_response"
)

// Provider talks to one KServe v2 server. It implements llm.Provider, llm.Embedder,
// llm.ModelLister and io.Closer, and is safe for concurrent use.
type Provider struct {
	cfg    provider.Config
	conn   *grpcupstream.Conn
	client pb.GRPCInferenceServiceClient
	models configs
}

var (
	_ llm.Provider    = (*Provider)(nil)
	_ llm.Embedder    = (*Provider)(nil)
	_ llm.ModelLister = (*Provider)(nil)
	_ io.Closer       = (*Provider)(nil)
)

// New returns a provider for the server cfg describes (see the package documentation). It does
// not connect: the first call does. It matches provider.Factory.
func New(cfg provider.Config) (llm.Provider, error) {
	return NewProvider(cfg)
}

// NewProvider is New returning the concrete type, for callers that need Close. extra dial
// options come last.
func NewProvider(cfg provider.Config, extra ...grpc.DialOption) (*Provider, error) {
	models, err := parseConfigs(cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("kserve.New: %w", err)
	}
	conn, err := grpcupstream.Dial(cfg, ownOptions, extra...)
	if err != nil {
		return nil, fmt.Errorf("kserve.New: %w", err)
	}
	return &Provider{cfg: cfg, conn: conn, client: pb.NewGRPCInferenceServiceClient(conn), models: models}, nil
}

// RetriesCalls reports that p retries failed ModelInfer calls itself, with grpcupstream's
// retry interceptor (max_retries, retry_backoff), so the router makes one attempt per call and
// only falls back (router.SelfRetrying). ModelStreamInfer is not retried by either layer: a
// bidirectional stream cannot be replayed by the interceptor.
func (*Provider) RetriesCalls() bool { return true }

// Close closes the connection; calls in flight fail.
func (p *Provider) Close() error { return p.conn.Close() }

// Models returns the configured model names (cfg.Models).
func (p *Provider) Models() []string { return slices.Clone(p.cfg.Models) }

// Chat renders the prompt and calls ModelInfer.
func (p *Provider) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	mc := p.models.of(req.Model)
	in, prompt, err := p.inferRequest(ctx, mc, req, false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := p.conn.CallContext(ctx)
	defer cancel()
	resp, err := p.client.ModelInfer(ctx, in, p.conn.RetryOptions(ctx, nil)...)
	if err != nil {
		return nil, grpcupstream.Classify(ctx, p.cfg.Name, err, false)
	}
	text, tokens, err := p.decodeText(mc, resp)
	if err != nil {
		return nil, err
	}
	if mc.stripPrompt {
		text = strings.TrimPrefix(text, prompt)
	}
	out := &llm.ChatResponse{ID: resp.GetId(), Model: resp.GetModelName(),
		Choices: []llm.Choice{{Content: &text, FinishReason: finishReason(tokens, maxTokens(mc, req))}}}
	if tokens > 0 {
		out.Usage = &llm.Usage{CompletionTokens: int32(tokens), TotalTokens: int32(tokens)}
	}
	return out, nil
}

// ChatStream renders the prompt and calls ModelStreamInfer with one request. Each response's
// text is a chunk; the stream ends at Triton's final-response flag or when the server closes it.
func (p *Provider) ChatStream(ctx context.Context, req *llm.ChatRequest) (llm.Stream, error) {
	mc := p.models.of(req.Model)
	in, _, err := p.inferRequest(ctx, mc, req, true)
	if err != nil {
		return nil, err
	}
	in.Parameters[paramEnableFinal] = &pb.InferParameter{ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true}}
	ctx, cancel := p.conn.CallContext(ctx)
	up, err := p.client.ModelStreamInfer(ctx, grpcupstream.NoRetry())
	if err == nil {
		if err = up.Send(in); err == nil {
			err = up.CloseSend()
		}
	}
	if err != nil {
		e := grpcupstream.Classify(ctx, p.cfg.Name, err, false)
		cancel()
		return nil, e
	}
	return &stream{p: p, mc: mc, ctx: ctx, cancel: cancel, up: up, model: req.Model, max: maxTokens(mc, req)}, nil
}

// Embed sends the texts as one batch and returns one vector per text, in order.
func (p *Provider) Embed(ctx context.Context, req *llm.EmbeddingRequest) (*llm.EmbeddingResponse, error) {
	if len(req.Tokens) > 0 {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "input", Message: "This model takes text input, not token ids."}
	}
	if req.Dimensions != nil {
		return nil, &llm.Error{Kind: llm.KindInvalidArgument, Param: "dimensions", Message: "This model does not support 'dimensions'."}
	}
	n := len(req.Texts)
	if n == 0 {
		return nil, llm.Errorf(llm.KindInvalidArgument, "embeddings need at least one input")
	}
	mc := p.models.of(req.Model)
	texts := make([][]byte, n)
	for i, t := range req.Texts {
		texts[i] = []byte(t)
	}
	in := &pb.ModelInferRequest{ModelName: req.Model, ModelVersion: mc.version,
		Inputs:  []*input{{Name: mc.embedIn, Datatype: typeBytes, Shape: []int64{int64(n), 1}, Contents: &pb.InferTensorContents{BytesContents: texts}}},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: mc.embedOut}}}
	ctx, cancel := p.conn.CallContext(ctx)
	defer cancel()
	resp, err := p.client.ModelInfer(ctx, in, p.conn.RetryOptions(ctx, nil)...)
	if err != nil {
		return nil, grpcupstream.Classify(ctx, p.cfg.Name, err, false)
	}
	o, raw, ok := output(resp, mc.embedOut)
	if !ok {
		return nil, p.badAnswer(fmt.Errorf("no output %q", mc.embedOut))
	}
	flat, err := fp32Elems(o, raw)
	if err != nil {
		return nil, p.badAnswer(err)
	}
	if len(flat) == 0 || len(flat)%n != 0 {
		return nil, p.badAnswer(fmt.Errorf("%d values for %d inputs", len(flat), n))
	}
	d := len(flat) / n
	out := &llm.EmbeddingResponse{Model: req.Model, Vectors: make([][]float32, n)}
	for i := range n {
		out.Vectors[i] = flat[i*d : (i+1)*d : (i+1)*d]
	}
	return out, nil
}

// inferRequest validates req against what the protocol can express and builds the request.
// Unsupported optional parameters are dropped with a warning on ctx.
func (p *Provider) inferRequest(ctx context.Context, mc *modelConfig, req *llm.ChatRequest, stream bool) (*pb.ModelInferRequest, string, error) {
	if err := checkSupported(req); err != nil {
		return nil, "", err
	}
	prompt := templates[mc.template](req.Messages)
	in := &pb.ModelInferRequest{ModelName: req.Model, ModelVersion: mc.version, Parameters: map[string]*pb.InferParameter{},
		Inputs:  []*input{bytesInput(mc.textIn, []byte(prompt))},
		Outputs: []*pb.ModelInferRequest_InferRequestedOutputTensor{{Name: mc.textOut}}}
	add := func(tensor, param string, mk func(string) *input) {
		if tensor == "" {
			llm.Warn(ctx, "%s is not supported by this model and was ignored", param)
			return
		}
		in.Inputs = append(in.Inputs, mk(tensor))
	}
	if mc.maxTokensIn != "" {
		in.Inputs = append(in.Inputs, int32Input(mc.maxTokensIn, maxTokens(mc, req)))
	} else if req.MaxTokens != nil {
		llm.Warn(ctx, "max_tokens is not supported by this model and was ignored")
	}
	if v := req.Temperature; v != nil {
		add(mc.temperatureIn, "temperature", func(n string) *input { return fp32Input(n, float32(*v)) })
	}
	if v := req.TopP; v != nil {
		add(mc.topPIn, "top_p", func(n string) *input { return fp32Input(n, float32(*v)) })
	}
	if len(req.Stop) > 0 {
		add(mc.stopIn, "stop", func(n string) *input {
			words := make([][]byte, len(req.Stop))
			for i, s := range req.Stop {
				words[i] = []byte(s)
			}
			return bytesInput(n, words...)
		})
	}
	if v := req.Seed; v != nil {
		add(mc.seedIn, "seed", func(n string) *input { return uint64Input(n, uint64(*v)) })
	}
	if v := req.PresencePenalty; v != nil {
		add(mc.presenceIn, "presence_penalty", func(n string) *input { return fp32Input(n, float32(*v)) })
	}
	if v := req.FrequencyPenalty; v != nil {
		add(mc.frequencyIn, "frequency_penalty", func(n string) *input { return fp32Input(n, float32(*v)) })
	}
	if mc.streamIn != "" {
		in.Inputs = append(in.Inputs, boolInput(mc.streamIn, stream))
	}
	if mc.tokensOut != "" {
		in.Outputs = append(in.Outputs, &pb.ModelInferRequest_InferRequestedOutputTensor{Name: mc.tokensOut})
	}
	for _, d := range []struct {
		set  bool
		name string
	}{{req.User != "", "user"}, {req.ReasoningEffort != "", "reasoning_effort"}, {req.ParallelToolCalls != nil, "parallel_tool_calls"}} {
		if d.set {
			llm.Warn(ctx, "%s is not supported by this model and was ignored", d.name)
		}
	}
	return in, prompt, nil
}

// checkSupported refuses what the protocol cannot express: tools, non-text content, several
// choices and structured output.
func checkSupported(req *llm.ChatRequest) error {
	reject := func(param, msg string) error {
		return &llm.Error{Kind: llm.KindInvalidArgument, Param: param, Message: msg}
	}
	if len(req.Tools) > 0 {
		return reject("tools", "This model does not support tools.")
	}
	if tc := req.ToolChoice; tc != nil && tc.Mode != "none" && tc.Mode != "auto" {
		return reject("tool_choice", "This model does not support tools.")
	}
	if req.N != nil && *req.N > 1 {
		return reject("n", "This model returns one choice per request ('n' must be 1).")
	}
	if rf := req.ResponseFormat; rf != nil && rf.Type != "" && rf.Type != "text" {
		return reject("response_format", "This model does not support 'response_format' "+rf.Type+".")
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		if m.Role == llm.RoleTool || len(m.ToolCalls) > 0 {
			return reject(fmt.Sprintf("messages[%d]", i), "This model does not support tools.")
		}
		for _, part := range m.Content {
			if part.Type != llm.PartText {
				return reject(fmt.Sprintf("messages[%d].content", i), "This model takes text only; '"+part.Type+"' content is not supported.")
			}
		}
	}
	return nil
}

func maxTokens(mc *modelConfig, req *llm.ChatRequest) int32 {
	if req.MaxTokens != nil {
		return *req.MaxTokens
	}
	return mc.defaultMaxTokens
}

// finishReason is "length" when the model reported as many generated tokens as allowed.
func finishReason(tokens int64, limit int32) string {
	if tokens > 0 && tokens >= int64(limit) {
		return llm.FinishLength
	}
	return llm.FinishStop
}

// decodeText reads the generated text and, when configured, the generated token count (0 if
// not reported).
func (p *Provider) decodeText(mc *modelConfig, resp *pb.ModelInferResponse) (string, int64, error) {
	o, raw, ok := output(resp, mc.textOut)
	if !ok {
		return "", 0, p.badAnswer(fmt.Errorf("no output %q", mc.textOut))
	}
	elems, err := bytesElems(o, raw)
	if err != nil {
		return "", 0, p.badAnswer(err)
	}
	var b strings.Builder
	for _, e := range elems { // a batch of one: normally a single element
		b.Write(e)
	}
	var tokens int64
	if mc.tokensOut != "" {
		if o, raw, ok := output(resp, mc.tokensOut); ok {
			if tokens, err = intScalar(o, raw); err != nil {
				return "", 0, p.badAnswer(err)
			}
		}
	}
	return b.String(), tokens, nil
}

func (p *Provider) badAnswer(err error) *llm.Error {
	return &llm.Error{Kind: llm.KindUpstream, Provider: p.cfg.Name, Message: "the upstream provider sent an invalid answer",
		Err: fmt.Errorf("kserve %s: %w", p.cfg.Name, err)}
}

// stream reads ModelStreamInfer responses. Used by one goroutine at a time.
type stream struct {
	p      *Provider
	mc     *modelConfig
	ctx    context.Context
	cancel context.CancelFunc
	up     grpc.BidiStreamingClient[pb.ModelInferRequest, pb.ModelStreamInferResponse]
	model  string
	max    int32

	started bool       // a chunk was returned
	tokens  int64      // the largest generated-token count reported
	usage   *llm.Chunk // the usage report, sent after the finish chunk
	done    bool
}

func (s *stream) Recv() (*llm.Chunk, error) {
	for {
		if s.usage != nil {
			u := s.usage
			s.usage = nil
			return u, nil
		}
		if s.done {
			return nil, io.EOF
		}
		msg, err := s.up.Recv()
		if errors.Is(err, io.EOF) {
			return s.finish(), nil
		}
		if err != nil {
			e := grpcupstream.Classify(s.ctx, s.p.cfg.Name, err, s.started)
			s.stop()
			return nil, e
		}
		if em := msg.GetErrorMessage(); em != "" {
			s.stop()
			return nil, &llm.Error{Kind: llm.KindUpstream, Provider: s.p.cfg.Name, Message: "the model server reported an error",
				UpstreamStatus: 502, UpstreamMessage: em}
		}
		r := msg.GetInferResponse()
		final := r.GetParameters()[paramFinal].GetBoolParam()
		var text string
		if _, _, ok := output(r, s.mc.textOut); ok {
			var tokens int64
			if text, tokens, err = s.p.decodeText(s.mc, r); err != nil {
				s.stop()
				return nil, err
			}
			s.tokens = max(s.tokens, tokens)
		}
		if final {
			c := s.finish()
			if text != "" {
				c.Choices[0].Content = &text
			}
			return c, nil
		}
		if text == "" {
			continue // an empty response carries nothing for the client
		}
		return s.chunk(llm.ChunkChoice{Content: &text}), nil
	}
}

// chunk wraps one choice delta; the first carries the assistant role.
func (s *stream) chunk(ch llm.ChunkChoice) *llm.Chunk {
	if !s.started {
		s.started = true
		ch.Role = llm.RoleAssistant
	}
	return &llm.Chunk{Model: s.model, Choices: []llm.ChunkChoice{ch}}
}

// finish returns the chunk with the finish reason and ends the stream; a usage report follows
// when the model counted its tokens.
func (s *stream) finish() *llm.Chunk {
	c := s.chunk(llm.ChunkChoice{FinishReason: finishReason(s.tokens, s.max)})
	if s.tokens > 0 {
		s.usage = &llm.Chunk{Model: s.model, Usage: &llm.Usage{CompletionTokens: int32(s.tokens), TotalTokens: int32(s.tokens)}}
	}
	s.stop()
	return c
}

func (s *stream) stop() {
	s.done = true
	s.cancel()
}

// Close cancels the upstream call if it is still running.
func (s *stream) Close() error {
	s.stop()
	return nil
}
