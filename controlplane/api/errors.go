package api

import (
	"errors"
	"fmt"
)

// Error is a business failure of a command or a read. It crosses process
// boundaries (a follower forwards writes to the leader), so it is plain data:
// a code callers can switch on and a message for people.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Code classifies an Error.
type Code string

// Error codes, each mapped to one HTTP status by the API.
const (
	CodeInvalid   Code = "invalid"   // the request breaks a rule
	CodeNotFound  Code = "not_found" // a named object does not exist
	CodeConflict  Code = "conflict"  // the request collides with current state
	CodeForbidden Code = "forbidden" // the caller may not do this
)

func (e *Error) Error() string { return e.Message }

// Is lets errors.Is match on the code: errors.Is(err, &Error{Code: CodeNotFound}).
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code && t.Message == ""
}

// Sentinels for errors.Is.
var (
	ErrInvalid   = &Error{Code: CodeInvalid}
	ErrNotFound  = &Error{Code: CodeNotFound}
	ErrConflict  = &Error{Code: CodeConflict}
	ErrForbidden = &Error{Code: CodeForbidden}
)

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Codes used only on the wire, never by the state machine.
const (
	CodeUnauthenticated Code = "unauthenticated" // no valid client certificate
	CodeUnavailable     Code = "unavailable"     // no leader, or shutting down: retry
	CodeInternal        Code = "internal"        // a bug or an I/O failure on the server
)

// Status is the HTTP status that carries code.
func (c Code) Status() int {
	switch c {
	case CodeInvalid:
		return 400
	case CodeUnauthenticated:
		return 401
	case CodeForbidden:
		return 403
	case CodeNotFound:
		return 404
	case CodeConflict:
		return 409
	case CodeUnavailable:
		return 503
	default:
		return 500
	}
}

// CodeOf returns the code of err if it is an *Error, else CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
