package ssh

import (
	"context"
	"io"
	"io/fs"
	"net"
)

// Runner is what phases use to act on one host. Client implements it over
// SSH; sshtest.Fake implements it in memory, and a dry-run recorder can
// implement it by printing instead of doing.
type Runner interface {
	// Host is the host's name, as used in logs and errors.
	Host() string
	// Run runs cmd and waits for it. A non-zero exit gives a *CommandError;
	// the Result still carries whatever output was captured.
	Run(ctx context.Context, cmd Cmd) (Result, error)
	// ReadFile returns a remote file's content. A missing file gives an
	// error for which errors.Is(err, fs.ErrNotExist) holds.
	ReadFile(ctx context.Context, path string, opts ReadOptions) ([]byte, error)
	// WriteFile writes f atomically (temporary file in the same directory,
	// mode, owner, rename) and reports whether anything changed: a file whose
	// SHA-256, mode and owner already match is left alone.
	WriteFile(ctx context.Context, f File) (changed bool, err error)
	// DialContext opens a TCP connection from the host's side, e.g. to a
	// control plane's 127.0.0.1:6443, without opening any port.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// Cmd is one remote command, argv-shaped: Args are quoted by Quote, never
// joined into a shell string by the caller.
type Cmd struct {
	Args []string
	// Stdin, if not nil, is sent to the command's standard input. It is a
	// byte slice rather than a reader so that a re-dialled attempt can send
	// it again.
	Stdin []byte
	// Sudo runs the command as root. The sudo decorator is applied only when
	// the login user is not root.
	Sudo bool
	// Sensitive keeps the command line, its stdin and its output out of every
	// log line, streamed output and error message.
	Sensitive bool
	// Secrets are values (tokens, passwords) to replace with <redacted>
	// wherever the command line or its stderr is shown.
	Secrets []string
	// Idempotent commands are run once more on a fresh connection when the
	// connection drops while they run.
	Idempotent bool
	// Stdout and Stderr, if set, also receive the output as it arrives.
	Stdout, Stderr io.Writer
}

// Result is what a finished command left behind.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// ReadOptions tune ReadFile.
type ReadOptions struct {
	// Sudo reads the file as root (when the login user is not root).
	Sudo bool
	// To, when set, receives the content as it arrives and ReadFile returns none: a large file
	// (an etcd snapshot) never sits in memory. A read that streams is not retried on a new
	// connection, since To already holds part of the content.
	To io.Writer
}

// File is one file to write on a host.
type File struct {
	Path    string
	Content []byte
	// Mode is the file's permission bits; 0 means 0644.
	Mode fs.FileMode
	// Owner is "user" or "user:group"; empty leaves the owner to whoever
	// writes the file (root with Sudo, else the login user).
	Owner string
	// Sudo writes the file as root (when the login user is not root).
	Sudo bool
	// Sensitive keeps the content out of logs (it never appears in errors).
	Sensitive bool
	// NoReplace refuses (*ReplaceRefusedError) to overwrite an existing file whose content differs.
	NoReplace bool
	// Observed is the file's state as the caller read it moments ago (file-states.sh, one round
	// trip for many files); WriteFile then does not read it again. Nil: WriteFile reads it.
	Observed *FileState
}

// DefaultFileMode is used when File.Mode is 0.
const DefaultFileMode fs.FileMode = 0o644
