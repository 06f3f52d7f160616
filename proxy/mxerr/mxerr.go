// Package mxerr is the one place Matrix errors are shaped: a typed error carrying status, errcode and a
// fixed message, and the single writer that turns any error into a `{"errcode","error"}` response.
//
// Refusals are built from proxy/reasons.go's table with New; the few constructors here are for errors that
// have no policy reason. Messages are fixed per kind of refusal and never echo input or Go error strings; the cause travels in
// Unwrap for the log only.
package mxerr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Error is a Matrix error response. The zero value is not useful; use the constructors.
type Error struct {
	Status  int
	ErrCode string
	Message string
	// Reason is the policy reason or edge reason behind the error (decision log, metrics); may be empty.
	Reason string
	// RetryAfterMillis adds retry_after_ms (M_LIMIT_EXCEEDED).
	RetryAfterMillis int64
	// Allow lists the methods of a 405 answer (Allow header).
	Allow []string
	cause error
}

func (e *Error) Error() string {
	s := strconv.Itoa(e.Status) + " " + e.ErrCode + ": " + e.Message
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the cause (for logs).
func (e *Error) Unwrap() error { return e.cause }

// Wrap returns a copy of e that carries cause.
func (e *Error) Wrap(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

// New builds an error.
func New(status int, errcode, message string) *Error {
	return &Error{Status: status, ErrCode: errcode, Message: message}
}

// Forbidden is 403 M_FORBIDDEN.
func Forbidden(message string) *Error { return New(http.StatusForbidden, "M_FORBIDDEN", message) }

// BadJSON is 400 M_BAD_JSON.
func BadJSON(message string) *Error { return New(http.StatusBadRequest, "M_BAD_JSON", message) }

// Unknown is 500 M_UNKNOWN.
func Unknown() *Error {
	return New(http.StatusInternalServerError, "M_UNKNOWN", "Internal server error")
}

// As finds the *Error in err's chain; anything else becomes 500 M_UNKNOWN (with err as cause).
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Unknown().Wrap(err)
}

// Write answers with err as a Matrix error and returns the *Error it wrote (for logging).
func Write(w http.ResponseWriter, err error) *Error {
	e := As(err)
	body := map[string]any{"errcode": e.ErrCode, "error": e.Message}
	if e.RetryAfterMillis > 0 {
		body["retry_after_ms"] = e.RetryAfterMillis
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	if len(e.Allow) > 0 {
		h.Set("Allow", strings.Join(e.Allow, ", "))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
	return e
}
