package interceptor

import (
	"context"
	"log/slog"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/callinfo"
	"github.com/switchyard/switchyard/internal/limits"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/mdkey"
)

// streamChatMethod is the one streaming RPC that is rate limited.
const streamChatMethod = "/" + chatServicePrefix + "StreamChatCompletion"

const (
	chatServicePrefix      = "switchyard.v1.ChatService/"
	embeddingServicePrefix = "switchyard.v1.EmbeddingService/"
	rerankServicePrefix    = "switchyard.v1.RerankService/"
)

// rateLimited reports whether calls of fullMethod count against the limits: the inference RPCs
// (chat, embeddings and rerank). Models, sessions, admin, health and reflection calls do not.
func rateLimited(fullMethod string) bool {
	m := strings.TrimPrefix(fullMethod, "/")
	return strings.HasPrefix(m, chatServicePrefix) || strings.HasPrefix(m, embeddingServicePrefix) ||
		strings.HasPrefix(m, rerankServicePrefix)
}

// estimateTokens is the tokens a request reserves before its call: its encoded size / 4 (about
// four characters per token; the size counts the text, tool schemas and little else) plus the
// completion tokens it allows (max_completion_tokens, else max_tokens; nothing when unset, the
// real usage settles it).
func estimateTokens(req proto.Message) int64 {
	n := int64(llm.TokensForChars(proto.Size(req)))
	var chat *pb.CreateChatCompletionRequest
	switch r := req.(type) {
	case *pb.CreateChatCompletionRequest:
		chat = r
	case *pb.StreamChatCompletionRequest:
		chat = r.GetRequest()
	}
	switch {
	case chat == nil:
	case chat.MaxCompletionTokens != nil:
		n += int64(max(chat.GetMaxCompletionTokens(), 0))
	case chat.MaxTokens != nil:
		n += int64(max(chat.GetMaxTokens(), 0))
	}
	return n
}

// limitHeaders returns the x-ratelimit-* headers of res: the request headers when a requests
// per minute limit applies, the token headers when a tokens per minute limit applies.
func limitHeaders(res *limits.Reservation) metadata.MD {
	if res == nil || (res.Requests.Limit == 0 && res.Tokens.Limit == 0) {
		return nil
	}
	md := make(metadata.MD, 6)
	if q := res.Requests; q.Limit > 0 {
		md[mdkey.LimitRequests] = []string{strconv.FormatInt(q.Limit, 10)}
		md[mdkey.RemainingRequests] = []string{strconv.FormatInt(q.Remaining, 10)}
		md[mdkey.ResetRequests] = []string{limits.FormatReset(q.Reset)}
	}
	if q := res.Tokens; q.Limit > 0 {
		md[mdkey.LimitTokens] = []string{strconv.FormatInt(q.Limit, 10)}
		md[mdkey.RemainingTokens] = []string{strconv.FormatInt(q.Remaining, 10)}
		md[mdkey.ResetTokens] = []string{limits.FormatReset(q.Reset)}
	}
	return md
}

// usedTokens is the total of the usage the server recorded for the call in ctx (some upstreams
// leave total_tokens unset), -1 when it recorded none.
func usedTokens(ctx context.Context) int64 {
	info := callinfo.FromContext(ctx).Info()
	if !info.HasUsage {
		return -1
	}
	u := info.Usage
	return int64(max(u.TotalTokens, u.PromptTokens+u.CompletionTokens))
}

// reserve checks the call against l for the principal in ctx: it sets the x-ratelimit-*
// headers with setHeader and returns the reservation, or the refusal as a status error (with
// retry-after set). Calls without a principal (exempt from auth) are not limited: nil, nil.
func reserve(ctx context.Context, l *limits.Limiter, log *slog.Logger, req proto.Message, setHeader func(metadata.MD) error) (*limits.Reservation, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, nil
	}
	res, err := l.Reserve(ctx, limits.Request{Tenant: p.Tenant, Key: p.KeyName, Tokens: estimateTokens(req)})
	if md := limitHeaders(res); md != nil {
		_ = setHeader(md)
	}
	if err != nil {
		return nil, mapError(ctx, log, err)
	}
	return res, nil
}

// unaryLimits enforces l on the inference RPCs (see rateLimited). A refused call is answered
// with RESOURCE_EXHAUSTED, retry-after and the x-ratelimit-* headers, and goes no further; an
// admitted one gets the headers too, and its reservation is settled with the usage the server
// recorded in the call's record (callinfo) once the handler returns. A nil l disables limits.
func unaryLimits(l *limits.Limiter, log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		m, isProto := req.(proto.Message)
		if l == nil || !isProto || !rateLimited(info.FullMethod) {
			return handler(ctx, req)
		}
		res, err := reserve(ctx, l, log, m, func(md metadata.MD) error { return grpc.SetHeader(ctx, md) })
		if err != nil {
			return nil, err
		}
		if res == nil {
			return handler(ctx, req)
		}
		resp, err := handler(ctx, req)
		res.Settle(context.WithoutCancel(ctx), usedTokens(ctx), err != nil)
		return resp, err
	}
}

// streamLimits is unaryLimits for StreamChatCompletion: it receives the request before the
// handler runs, checks it, and hands it to the handler's RecvMsg; the reservation is settled
// when the stream ends, with the last usage the upstream reported.
func streamLimits(l *limits.Limiter, log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if l == nil || info.FullMethod != streamChatMethod {
			return handler(srv, ss)
		}
		ctx := ss.Context()
		if _, ok := auth.FromContext(ctx); !ok {
			return handler(srv, ss)
		}
		first := new(pb.StreamChatCompletionRequest)
		if err := ss.RecvMsg(first); err != nil {
			return err
		}
		res, err := reserve(ctx, l, log, first, ss.SetHeader)
		if err != nil {
			return err
		}
		err = handler(srv, &limitedStream{ServerStream: ss, first: first})
		res.Settle(context.WithoutCancel(ctx), usedTokens(ctx), err != nil)
		return err
	}
}

// limitedStream hands the request received by streamLimits to the handler's first RecvMsg.
type limitedStream struct {
	grpc.ServerStream
	first *pb.StreamChatCompletionRequest // nil once handed over
}

func (s *limitedStream) RecvMsg(m any) error {
	if s.first != nil {
		if dst, ok := m.(*pb.StreamChatCompletionRequest); ok {
			dst.Request, s.first = s.first.Request, nil
			return nil
		}
	}
	return s.ServerStream.RecvMsg(m)
}
