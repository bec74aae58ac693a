package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/switchyard/switchyard/bench/internal/harness"
	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
)

// The kinds of operation, and their share of the traffic: slots out of 20.
const (
	kindRESTChat = iota
	kindRESTStream
	kindGRPCChat
	kindGRPCStream
	kindEmbed
	kindSession
	kindCount
)

var (
	kindNames = [kindCount]string{"REST chat", "REST stream (SSE)", "gRPC chat", "gRPC stream", "REST embeddings", "session (create, gRPC turn, REST turn, delete)"}
	kindShort = [kindCount]string{"rest", "sse", "grpc", "gstream", "embed", "session"}
	// schedule cycles through the kinds in proportion: 5 REST chat, 4 SSE, 4 gRPC chat, 3 gRPC
	// streams, 2 embeddings, 2 session operations in every 20.
	schedule = []int{
		kindRESTChat, kindRESTStream, kindGRPCChat, kindGRPCStream, kindEmbed,
		kindRESTChat, kindRESTStream, kindGRPCChat, kindSession, kindRESTChat,
		kindGRPCStream, kindRESTStream, kindGRPCChat, kindRESTChat, kindEmbed,
		kindRESTStream, kindGRPCChat, kindGRPCStream, kindSession, kindRESTChat,
	}
)

// maxInFlight bounds the operations running at once; beyond it an operation is counted as an
// error ("skipped") rather than started, so a stalled gateway cannot make the soak itself grow.
const maxInFlight = 2000

const opTimeout = 30 * time.Second

// clients sends the traffic and counts the outcomes.
type clients struct {
	http     *http.Client
	base     string // http://host:port of the REST listener
	cc       *grpc.ClientConn
	chat     pb.ChatServiceClient
	sessions pb.SessionServiceClient
	auth     metadata.MD
	abandon  float64

	ok, errs [kindCount]atomic.Int64
	inFlight atomic.Int64
	sessN    atomic.Int64

	mu       sync.Mutex
	errCount map[string]int
}

func newClients(gw *harness.Gateway, abandon float64) (*clients, error) {
	cc, err := grpc.NewClient(gw.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial gateway gRPC: %w", err)
	}
	return &clients{
		http: &http.Client{Transport: &http.Transport{
			// At most 100 connections: a burst queues here rather than opening (and later closing)
			// connections in the gateway, which would show as goroutine and fd noise.
			MaxConnsPerHost: 100, MaxIdleConns: 100, MaxIdleConnsPerHost: 100, DisableCompression: true, IdleConnTimeout: time.Minute,
		}},
		base:     "http://" + gw.HTTPAddr,
		cc:       cc,
		chat:     pb.NewChatServiceClient(cc),
		sessions: pb.NewSessionServiceClient(cc),
		auth:     metadata.Pairs("authorization", "Bearer "+harness.APIKey),
		abandon:  abandon,
		errCount: map[string]int{},
	}, nil
}

func (c *clients) close() { _ = c.cc.Close() }

// drive starts rate operations per second, cycling through schedule, until ctx ends, then waits
// for the running ones.
func (c *clients) drive(ctx context.Context, rate int) {
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		due := start.Add(time.Duration(i) * interval)
		if w := time.Until(due); w > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(w):
			}
		} else if ctx.Err() != nil {
			return
		}
		kind := schedule[i%len(schedule)]
		if c.inFlight.Load() >= maxInFlight {
			c.count(kind, errors.New("skipped: too many operations in flight"))
			continue
		}
		c.inFlight.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.inFlight.Add(-1)
			opCtx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), c.auth), opTimeout)
			defer cancel()
			c.count(kind, c.do(opCtx, kind))
		}()
	}
}

func (c *clients) count(kind int, err error) {
	if err == nil {
		c.ok[kind].Add(1)
		return
	}
	c.errs[kind].Add(1)
	msg := kindShort[kind] + ": " + strings.Join(strings.Fields(err.Error()), " ")
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.errCount[msg]; seen || len(c.errCount) < 100 {
		c.errCount[msg]++
	}
}

// topErrors lists the n most frequent error messages as markdown bullets.
func (c *clients) topErrors(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs := make([]string, 0, len(c.errCount))
	for m := range c.errCount {
		msgs = append(msgs, m)
	}
	sort.Slice(msgs, func(i, j int) bool { return c.errCount[msgs[i]] > c.errCount[msgs[j]] })
	var b strings.Builder
	for _, m := range msgs[:min(n, len(msgs))] {
		fmt.Fprintf(&b, "- %d × `%s`\n", c.errCount[m], strings.ReplaceAll(m, "`", "'"))
	}
	return b.String()
}

const (
	restChat   = `{"model":"chat","messages":[{"role":"user","content":"Soak: say hello."}],"max_tokens":32}`
	restStream = `{"model":"chat","messages":[{"role":"user","content":"Soak: stream hello."}],"max_tokens":32,"stream":true}`
	restEmbed  = `{"model":"embed","input":"soak embedding input"}`
	restTurn   = `{"model":"chat","messages":[{"role":"user","content":"Soak: second turn over REST."}]}`
)

func (c *clients) do(ctx context.Context, kind int) error {
	switch kind {
	case kindRESTChat:
		_, err := c.post(ctx, "/v1/chat/completions", restChat, "")
		return err
	case kindRESTStream:
		body, err := c.post(ctx, "/v1/chat/completions", restStream, "")
		if err == nil && !bytes.HasSuffix(body, []byte("data: [DONE]\n\n")) {
			err = fmt.Errorf("stream did not end with [DONE]: …%s", body[max(0, len(body)-120):])
		}
		return err
	case kindGRPCChat:
		_, err := c.chat.CreateChatCompletion(ctx, chatRequest("chat", "", "Soak: say hello over gRPC."))
		return err
	case kindGRPCStream:
		return c.grpcStream(ctx)
	case kindEmbed:
		_, err := c.post(ctx, "/v1/embeddings", restEmbed, "")
		return err
	default:
		return c.session(ctx)
	}
}

// post sends body to the REST listener and returns the answer's body when the status is 200.
func (c *clients) post(ctx context.Context, path, body, sessionID string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+harness.APIKey)
	if sessionID != "" {
		req.Header.Set("X-Switchyard-Session-Id", sessionID)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	return harness.ReadOK(resp)
}

func chatRequest(model, sessionID, text string) *pb.CreateChatCompletionRequest {
	return &pb.CreateChatCompletionRequest{
		Model:     model,
		SessionId: sessionID,
		Messages: []*pb.ChatMessage{
			{Role: "user", Content: &pb.MessageContent{Content: &pb.MessageContent_Text{Text: text}}},
		},
	}
}

func (c *clients) grpcStream(ctx context.Context) error {
	s, err := c.chat.StreamChatCompletion(ctx, &pb.StreamChatCompletionRequest{Request: chatRequest("chat", "", "Soak: stream hello over gRPC.")})
	if err != nil {
		return err
	}
	for {
		if _, err := s.Recv(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// session creates a session with a 30 s TTL, continues it once over gRPC (model from the session)
// and once over REST (header), then deletes it, or leaves a share of them to expire.
func (c *clients) session(ctx context.Context) error {
	created, err := c.sessions.CreateSession(ctx, &pb.CreateSessionRequest{
		Model: "chat", SystemPrompt: "You are terse.", Ttl: durationpb.New(30 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	id := created.GetSession().GetId()
	if _, err := c.chat.CreateChatCompletion(ctx, chatRequest("", id, "Soak: first turn over gRPC.")); err != nil {
		return fmt.Errorf("gRPC turn: %w", err)
	}
	if _, err := c.post(ctx, "/v1/chat/completions", restTurn, id); err != nil {
		return fmt.Errorf("REST turn: %w", err)
	}
	// Every n-th session is deleted, so the share abandoned is exact whatever the rate.
	n := c.sessN.Add(1)
	if c.abandon < 1 && float64(n%100) >= c.abandon*100 {
		if _, err := c.sessions.DeleteSession(ctx, &pb.DeleteSessionRequest{Id: id}); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
	}
	return nil
}
