package session

import (
	"context"
	"errors"
	"time"

	"github.com/switchyard/switchyard/internal/auth"
	"github.com/switchyard/switchyard/internal/llm"
)

// Turn is a chat request bound to a session: the session as Begin loaded it and the request's
// new messages, which Commit appends with the answer once the model call succeeded. A Turn
// belongs to one request; it is not safe for concurrent use.
type Turn struct {
	m     *Manager
	sess  *Session
	fresh []llm.Message
	model string
}

// SessionID is the id of the turn's session.
func (t *Turn) SessionID() string { return t.sess.ID }

// Model is the model to call: the request's when it named one, else the session's.
func (t *Turn) Model() string { return t.model }

// Begin loads the session id of p's tenant (as Get) and rewrites req to carry it:
//
//   - every parameter req leaves unset (temperature, top_p, max_tokens, stop, presence_penalty,
//     frequency_penalty, seed, reasoning_effort) is taken from the session: request values win;
//   - req.Messages become the session's system prompt (unless req's messages begin with a system
//     or developer message of their own), the newest history within Config.MaxHistoryTokens,
//     then req's own messages.
//
// The history budget is estimated as characters / 4 (text, reasoning, tool calls, inline data);
// the system prompt and req's messages are not counted. The kept history always begins at a
// user message, so an assistant's tool calls are never separated from their results; when not
// even the newest turn fits, none is sent.
//
// model is the request's model; "" means the session's, which is then checked against p's
// allowed models (KindPermissionDenied): the session was created with other credentials,
// perhaps wider ones. Nothing is written until Commit.
func (m *Manager) Begin(ctx context.Context, p *auth.Principal, id, model string, req *llm.ChatRequest) (*Turn, error) {
	s, err := m.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if model == "" {
		model = s.Model
		if !p.AllowsModel(model) {
			return nil, &llm.Error{Kind: llm.KindPermissionDenied, Code: "model_not_allowed", Param: "model",
				Message: "Your credentials do not allow the model \"" + model + "\"."}
		}
	}
	mergeParams(req, &s.Params)
	t := &Turn{m: m, sess: s, fresh: req.Messages, model: model}
	hist := trimHistory(s.History, m.cfg.MaxHistoryTokens)
	msgs := make([]llm.Message, 0, 1+len(hist)+len(req.Messages))
	if s.SystemPrompt != "" && !startsWithInstructions(req.Messages) {
		msgs = append(msgs, llm.TextMessage(llm.RoleSystem, s.SystemPrompt))
	}
	for i := range hist {
		msgs = append(msgs, hist[i].Message)
	}
	req.Messages = append(msgs, req.Messages...)
	return t, nil
}

func startsWithInstructions(msgs []llm.Message) bool {
	return len(msgs) > 0 && (msgs[0].Role == llm.RoleSystem || msgs[0].Role == llm.RoleDeveloper)
}

// mergeParams fills the parameters req leaves unset from p: request values win.
func mergeParams(req *llm.ChatRequest, p *Params) {
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
func trimHistory(h []Entry, budget int) []Entry {
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
	return llm.TokensForChars(n)
}

// Commit appends the turn's new messages and answer to the session as one turn, all with the
// next turn number. Call it only when the model call succeeded: a failed turn appends nothing.
// Concurrent turns of the same session are serialized by the store's optimistic versioning:
// when another turn was appended first (ErrConflict), Commit re-reads the session and appends
// after it, up to 100 times (then KindUnavailable). The answer was computed on the older
// history; it is kept as it is, because the model call cannot be undone, and each turn's
// messages stay together and in commit order. Commit runs to its end even when ctx is canceled
// (the client went away), bounded by 10 s, so an answer the model produced is not half-stored.
func (t *Turn) Commit(ctx context.Context, answer llm.Message) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	s := t.sess
	for attempt := 1; ; attempt++ {
		now := time.Now()
		n := s.Turns + 1
		hist := make([]Entry, len(s.History), len(s.History)+len(t.fresh)+1)
		copy(hist, s.History)
		for _, m := range t.fresh {
			hist = append(hist, Entry{Message: m, Turn: n, At: now})
		}
		hist = append(hist, Entry{Message: answer, Turn: n, At: now})
		s.History, s.Turns = hist, n
		err := t.m.store.Update(ctx, s)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) || attempt == maxWriteAttempts {
			return storeError("append turn", s.ID, err)
		}
		if s, err = t.m.store.Get(ctx, t.sess.Tenant, t.sess.ID); err != nil {
			return storeError("append turn", t.sess.ID, err)
		}
	}
}
