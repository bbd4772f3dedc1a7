package exitcode

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

type sshUnreachable struct{}

func (sshUnreachable) Error() string { return "host cp1: dial tcp: connection refused" }
func (sshUnreachable) ExitCode() int { return Unreachable }

func TestOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, OK},
		{"plain", errors.New("boom"), Failure},
		{"typed", New(InvalidInput, errors.New("bad spec")), InvalidInput},
		{"wrapped typed", fmt.Errorf("validate: %w", New(NotImplemented, errors.New("x"))), NotImplemented},
		{"coder", fmt.Errorf("phase connect: %w", sshUnreachable{}), Unreachable},
		{"outermost wins", New(Preflight, fmt.Errorf("x: %w", sshUnreachable{})), Preflight},
		{"cancelled", fmt.Errorf("phase runtime: %w", context.Canceled), Interrupted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.err); got != tt.want {
				t.Errorf("Of(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
	if New(Failure, nil) != nil {
		t.Error("New(code, nil) must be nil so callers can wrap unconditionally")
	}
}
