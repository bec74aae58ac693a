package server

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/metadata"

	pb "github.com/switchyard/switchyard/gen/go/switchyard/v1"
	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
	"github.com/switchyard/switchyard/internal/session"
)

// SessionHeader names the session a chat request continues, for OpenAI clients that cannot add
// body fields (REST: the X-Switchyard-Session-Id header). The request's session_id field wins.
// Chat answers of a session echo it.
const SessionHeader = "x-switchyard-session-id"

// Defaults of SessionConfig.
const (
	DefaultSessionTTL       = 15 * time.Minute
	DefaultMaxHistoryTokens = 32768
	// commitTimeout bounds appending a turn once the answer exists; it runs even if the client
	// has gone away, so an answer the model produced is not lost halfway.
	commitTimeout = 10 * time.Second
	// maxCommitAttempts bounds the re-read-and-append loop when other turns of the same
	// session keep winning the race.
	maxCommitAttempts = 100
)

// SessionConfig configures the session service and chat with sessions. The zero value uses the
// defaults.
type SessionConfig struct {
	// DefaultTTL is the sliding expiry of sessions created without a TTL; 0 means
	// DefaultSessionTTL.
	DefaultTTL time.Duration
	// MaxHistoryTokens bounds the history sent upstream with each turn, estimated as characters
	// / 4 (see trimHistory); 0 means DefaultMaxHistoryTokens, negative means no limit.
	MaxHistoryTokens int
}

func (c SessionConfig) withDefaults() SessionConfig {
	if c.DefaultTTL <= 0 {
		c.DefaultTTL = DefaultSessionTTL
	}
	if c.MaxHistoryTokens == 0 {
		c.MaxHistoryTokens = DefaultMaxHistoryTokens
	}
	return c
}

// sessions is what ChatService and SessionService share: the store and the policies.
type sessions struct {
	store     session.Store
	cfg       SessionConfig
	now       func() time.Time
	eraseUser UserEraser // nil: EraseUserSessions erases sessions only
}

func newSessions(store session.Store, cfg SessionConfig) *sessions {
	return &sessions{store: store, cfg: cfg.withDefaults(), now: time.Now}
}

// turn is a chat request bound to a session: the session as loaded and the request's new
// messages, which are appended with the answer when the model call succeeds.
type turn struct {
	sess  *session.Session
	fresh []llm.Message
}

// sessionID returns the session a chat request continues: the body field, else the header, else "".
func sessionID(ctx context.Context, in *pb.CreateChatCompletionRequest) string {
	if id := in.GetSessionId(); id != "" {
		return id
	}
	if vs := metadata.ValueFromIncomingContext(ctx, SessionHeader); len(vs) > 0 {
		return strings.TrimSpace(vs[0])
	}
	return ""
}

// errSessionNotFound is the one answer for an unknown id, a malformed id and another tenant's id.
func errSessionNotFound(id string) *llm.Error {
	return llm.Errorf(llm.KindNotFound, "session %q not found", id)
}

// storeError maps a Store error to the error vocabulary: ErrNotFound → KindNotFound (the same
// message as a missing id), ErrBadPageToken → KindInvalidArgument, context errors → canceled or
// timeout, anything else (ErrConflict after the retries included) → KindUnavailable, with the
// cause kept for operators only.
func storeError(op, id string, err error) error {
	switch {
	case errors.Is(err, session.ErrNotFound):
		return errSessionNotFound(id)
	case errors.Is(err, session.ErrBadPageToken):
		return &llm.Error{Kind: llm.KindInvalidArgument, Param: "page_token", Message: "invalid page_token", Err: err}
	case errors.Is(err, context.Canceled):
		return llm.Wrap(llm.KindCanceled, err, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return llm.Wrap(llm.KindTimeout, err, "session store timed out")
	}
	return llm.Wrap(llm.KindUnavailable, err, "session store unavailable: "+op)
}

// principal returns the caller; every session operation is scoped by its tenant.
func principal(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, llm.Errorf(llm.KindUnauthenticated, "no credentials")
	}
	return p, nil
}

// load returns the caller's tenant's session id. Malformed ids, unknown ids and other tenants'
// ids are all the same NOT_FOUND.
func (ss *sessions) load(ctx context.Context, id string) (*session.Session, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(id); err != nil {
		return nil, errSessionNotFound(id)
	}
	s, err := ss.store.Get(ctx, p.Tenant, id)
	if err != nil {
		return nil, storeError("get", id, err)
	}
	return s, nil
}

// begin loads the session id and rewrites req to carry it: the session's parameters where req
// leaves them unset, then the messages sent upstream are the system prompt (unless req's
// messages begin with a system or developer message), the newest history within the budget, and
// req's own messages. It returns the model to use (req's model when set, else the session's).
func (ss *sessions) begin(ctx context.Context, id, model string, req *llm.ChatRequest) (*turn, string, error) {
	s, err := ss.load(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if model == "" {
		// The session's model was checked against its creator's credentials; the caller continuing
		// it may hold narrower ones (another key of the tenant), so check it again.
		model = s.Model
		if p, ok := auth.FromContext(ctx); ok && !p.AllowsModel(model) {
			return nil, "", &llm.Error{Kind: llm.KindPermissionDenied, Code: "model_not_allowed", Param: "model",
				Message: "Your credentials do not allow the model \"" + model + "\"."}
		}
	}
	mergeParams(req, &s.Params)
	t := &turn{sess: s, fresh: req.Messages}
	hist := trimHistory(s.History, ss.cfg.MaxHistoryTokens)
	msgs := make([]llm.Message, 0, 1+len(hist)+len(req.Messages))
	if s.SystemPrompt != "" && !startsWithInstructions(req.Messages) {
		msgs = append(msgs, llm.TextMessage(llm.RoleSystem, s.SystemPrompt))
	}
	for i := range hist {
		msgs = append(msgs, hist[i].Message)
	}
	req.Messages = append(msgs, req.Messages...)
	return t, model, nil
}

func startsWithInstructions(msgs []llm.Message) bool {
	return len(msgs) > 0 && (msgs[0].Role == llm.RoleSystem || msgs[0].Role == llm.RoleDeveloper)
}

// mergeParams fills the parameters req leaves unset from p: request values win.
func mergeParams(req *llm.ChatRequest, p *session.Params) {
	if req.Temperature == nil {
		req.Temperature = p.Temperature
	}
	if req.TopP == nil {
		req.TopP = p.TopP
	}
	if req.MaxTokens == nil {
		req.MaxTokens = p.MaxTokens
	}
	if len(req.Stop) == 0 {
		req.Stop = p.Stop
	}
	if req.PresencePenalty == nil {
		req.PresencePenalty = p.PresencePenalty
	}
	if req.FrequencyPenalty == nil {
		req.FrequencyPenalty = p.FrequencyPenalty
	}
	if req.Seed == nil {
		req.Seed = p.Seed
	}
	if req.ReasoningEffort == "" {
		req.ReasoningEffort = p.ReasoningEffort
	}
}

// trimHistory returns the newest part of h whose estimated size is at most budget tokens
// (estimateTokens); budget < 0 means everything. The part always begins at a user message, so an
// assistant's tool calls are never separated from the tool results that answer them (those come
// after the call and before the next user message), and providers that need the conversation
// to open with a user message get one. When not even the newest user turn fits, nothing is sent.
func trimHistory(h []session.Entry, budget int) []session.Entry {
	if budget < 0 {
		return h
	}
	start, total := len(h), 0
	for i := len(h) - 1; i >= 0; i-- {
		total += estimateTokens(&h[i].Message)
		if total > budget {
			break
		}
		if h[i].Message.Role == llm.RoleUser {
			start = i
		}
	}
	return h[start:]
}

// estimateTokens is a message's size in tokens, estimated as its characters / 4 (rounded up):
// text, reasoning, tool calls and inline data all count.
func estimateTokens(m *llm.Message) int {
	n := len(m.Role) + len(m.Name) + len(m.ToolCallID) + len(m.ReasoningContent)
	for i := range m.Content {
		p := &m.Content[i]
		n += len(p.Text) + len(p.ImageURL) + len(p.AudioData) + len(p.FileData) + len(p.FileID)
	}
	for _, tc := range m.ToolCalls {
		n += len(tc.ID) + len(tc.Name) + len(tc.Arguments)
	}
	return (n + 3) / 4
}

// commit appends t's new messages and the answer to the session as one turn. Concurrent turns
// on the same session are serialized by the store's optimistic versioning: when another turn
// was appended first (ErrConflict), commit re-reads the session and appends after it. The
// answer was computed on the older history; it is kept as it is, because the model call cannot
// be undone and each turn's messages stay together and in commit order. Commit runs to its end
// even when the client has gone away (bounded by commitTimeout).
func (ss *sessions) commit(ctx context.Context, t *turn, answer llm.Message) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	s := t.sess
	for attempt := 1; ; attempt++ {
		now := ss.now()
		n := s.Turns + 1
		hist := make([]session.Entry, len(s.History), len(s.History)+len(t.fresh)+1)
		copy(hist, s.History)
		for _, m := range t.fresh {
			hist = append(hist, session.Entry{Message: m, Turn: n, At: now})
		}
		hist = append(hist, session.Entry{Message: answer, Turn: n, At: now})
		s.History, s.Turns = hist, n
		err := ss.store.Update(ctx, s)
		if err == nil {
			return nil
		}
		if !errors.Is(err, session.ErrConflict) || attempt == maxCommitAttempts {
			return storeError("append turn", s.ID, err)
		}
		if s, err = ss.store.Get(ctx, t.sess.Tenant, t.sess.ID); err != nil {
			return storeError("append turn", t.sess.ID, err)
		}
	}
}

// answerMessage is the assistant message of a blocking answer's first choice, tool calls
// included.
func answerMessage(r *llm.ChatResponse) llm.Message {
	m := llm.Message{Role: llm.RoleAssistant}
	if r == nil || len(r.Choices) == 0 {
		return m
	}
	c := &r.Choices[0]
	for i := range r.Choices {
		if r.Choices[i].Index == 0 {
			c = &r.Choices[i]
			break
		}
	}
	if c.Content != nil {
		m.Content = []llm.Part{{Type: llm.PartText, Text: *c.Content}}
	} else if c.Refusal != nil {
		m.Content = []llm.Part{{Type: llm.PartText, Text: *c.Refusal}}
	}
	if c.ReasoningContent != nil {
		m.ReasoningContent = *c.ReasoningContent
	}
	m.ReasoningSignature = c.ReasoningSignature
	m.ToolCalls = c.ToolCalls
	return m
}

// answerBuilder accumulates a streamed answer's first choice (index 0) into the message that
// answerMessage would have made of the same answer unstreamed.
type answerBuilder struct {
	text, refusal, reasoning strings.Builder
	hasText, hasRefusal      bool
	signature                string
	calls                    []llm.ToolCall
	callIndex                []int32 // the stream's index of each entry of calls
}

func (b *answerBuilder) add(c *llm.Chunk) {
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 {
			continue
		}
		if ch.Content != nil {
			b.hasText = true
			b.text.WriteString(*ch.Content)
		}
		if ch.Refusal != nil {
			b.hasRefusal = true
			b.refusal.WriteString(*ch.Refusal)
		}
		if ch.ReasoningContent != nil {
			b.reasoning.WriteString(*ch.ReasoningContent)
		}
		if ch.ReasoningSignature != "" {
			b.signature = ch.ReasoningSignature
		}
		for _, d := range ch.ToolCalls {
			b.addCall(d)
		}
	}
}

func (b *answerBuilder) addCall(d llm.ToolCallDelta) {
	for i, idx := range b.callIndex {
		if idx == d.Index {
			tc := &b.calls[i]
			if d.ID != "" {
				tc.ID = d.ID
			}
			if d.Name != "" {
				tc.Name = d.Name
			}
			tc.Arguments += d.Arguments
			return
		}
	}
	b.callIndex = append(b.callIndex, d.Index)
	b.calls = append(b.calls, llm.ToolCall{ID: d.ID, Name: d.Name, Arguments: d.Arguments})
}

func (b *answerBuilder) message() llm.Message {
	m := llm.Message{Role: llm.RoleAssistant, ReasoningContent: b.reasoning.String(),
		ReasoningSignature: b.signature, ToolCalls: b.calls}
	switch {
	case b.hasText && (b.text.Len() > 0 || !b.hasRefusal):
		m.Content = []llm.Part{{Type: llm.PartText, Text: b.text.String()}}
	case b.hasRefusal:
		m.Content = []llm.Part{{Type: llm.PartText, Text: b.refusal.String()}}
	}
	return m
}
