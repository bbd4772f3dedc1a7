// Package exitcode is the one place that maps errors to the installer's process exit codes
// (docs/exit-codes.md). Packages return typed errors; only main turns them into a number.
package exitcode

import (
	"context"
	"errors"
)

// The installer's exit codes.
const (
	OK             = 0
	Failure        = 1   // a step failed while executing
	InvalidInput   = 2   // the spec, flags or local files are invalid; nothing was touched
	NotImplemented = 3   // the command exists but its work is not built yet
	Unreachable    = 4   // a host cannot be reached or authenticated (host-key refusals included)
	Preflight      = 5   // preflight found blocking problems; nothing was changed
	Refused        = 6   // a step could not be proven safe (not the installer's to change); nothing was changed
	Interrupted    = 130 // Ctrl-C or SIGTERM: stopped between remote steps, lock released
)

// Error carries an exit code with its cause.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New wraps err with an exit code.
func New(code int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Err: err}
}

// Coder is implemented by errors of other packages that know their exit code (for example the SSH
// client's unreachable and authentication errors, code 4).
type Coder interface {
	ExitCode() int
}

// Of returns the exit code for err: 0 for nil, the code of the outermost *Error or Coder in its
// chain, 130 for a cancelled context, 1 otherwise.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var c Coder
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	if errors.Is(err, context.Canceled) {
		return Interrupted
	}
	return Failure
}
