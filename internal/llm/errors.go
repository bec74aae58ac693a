package llm

import (
	"errors"
	"fmt"
	"time"
)

// Error is Switchyard's error. Message is safe to show to clients; the upstream's own status and
// message are kept for operators (logs, ErrorInfo details) and never shown raw.
type Error struct {
	Kind    Kind
	Message string // client-safe
	Code    string // OpenAI error.code, e.g. "model_not_found", "context_length_exceeded"
	Param   string // OpenAI error.param, the offending request field

	Provider        string        // provider name, when the error came from upstream
	UpstreamStatus  int           // upstream HTTP status, 0 if none
	UpstreamMessage string        // upstream's message, for operators only
	RetryAfter      time.Duration // upstream's Retry-After, 0 if none
	HTTPStatus      int           // overrides Kind's HTTP status when non-zero (business 422, say)

	Err error // cause, for errors.Is/As and logs
}

// Errorf returns an *Error of kind k with a client-safe message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k with a client-safe message and err as its cause.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Message: msg, Err: err}
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Kind.Info().SafeMsg
	}
	s := e.Kind.String() + ": " + msg
	if e.Provider != "" {
		s = e.Provider + ": " + s
	}
	if e.UpstreamStatus != 0 {
		s += fmt.Sprintf(" (upstream %d: %s)", e.UpstreamStatus, e.UpstreamMessage)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status to answer with.
func (e *Error) Status() int {
	if e.HTTPStatus != 0 {
		return e.HTTPStatus
	}
	return e.Kind.Info().HTTPStatus
}

// SafeMessage returns the message clients may see.
func (e *Error) SafeMessage() string {
	if e.Message != "" {
		return e.Message
	}
	return e.Kind.Info().SafeMsg
}

// KindOf returns the kind of the first *Error in err's chain, KindCanceled for context.Canceled,
// KindTimeout for context.DeadlineExceeded, and KindInternal otherwise.
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return fromContextErr(err)
}

// AsError returns err as an *Error, converting context errors and wrapping anything else as
// KindInternal with a generic message (the cause stays in Err for logs).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	k := fromContextErr(err)
	return &Error{Kind: k, Err: err}
}
