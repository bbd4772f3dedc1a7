package ssh

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"installer.dev/installer/pkg/scripts"
)

// exitNotExist is what file-read.sh exits with for a missing file.
const exitNotExist = 66

// ReadFile implements Runner. Without sudo it uses SFTP when the server
// offers it; otherwise cat.
func (c *Client) ReadFile(ctx context.Context, p string, opts ReadOptions) ([]byte, error) {
	sudo := opts.Sudo && c.cfg.User != "root"
	if sudo {
		if err := c.ensureSudo(ctx); err != nil {
			return nil, err
		}
	}
	var data []byte
	var stderr bytes.Buffer
	var n int64
	err := c.withConn(ctx, opts.To == nil, func(cn *conn) error {
		var buf bytes.Buffer
		dst := io.Writer(&buf)
		if opts.To != nil {
			dst = opts.To
		}
		counted := &countingWriter{w: dst, n: &n}
		if !sudo {
			sc, done, err := c.openSFTP(ctx, cn)
			if err != nil {
				return err
			}
			if sc != nil {
				defer done()
				f, err := sc.Open(p)
				if err != nil {
					return err
				}
				defer func() { _ = f.Close() }()
				_, err = io.Copy(counted, f)
				data = buf.Bytes()
				return err
			}
		}
		stderr.Reset()
		err := c.exec(ctx, cn, CommandLine(scripts.FileRead.Args(p), sudo), nil, counted, &stderr)
		data = buf.Bytes()
		return err
	})
	var exitErr *gossh.ExitError
	switch {
	case err == nil:
		c.log.Debug("read", "path", p, "bytes", n)
		if opts.To != nil {
			return nil, nil
		}
		return data, nil
	case IsHostAccess(err):
		return nil, err
	case errors.As(err, &exitErr) && exitErr.ExitStatus() == exitNotExist, errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("host %s: read %s: %w", c.cfg.Name, p, fs.ErrNotExist)
	case errors.As(err, &exitErr):
		return nil, &CommandError{Host: c.cfg.Name, ExitCode: exitErr.ExitStatus(), Command: "read " + p, Stderr: tail(redact(stderr.String(), nil), stderrTailLines, stderrTailBytes)}
	}
	return nil, fmt.Errorf("host %s: read %s: %w", c.cfg.Name, p, err)
}

// countingWriter counts what passes through it.
type countingWriter struct {
	w io.Writer
	n *int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	k, err := c.w.Write(b)
	*c.n += int64(k)
	return k, err
}

// FileState is what pkg/scripts' file-state.sh reports of a remote file.
type FileState struct {
	// Exists: the path is a regular file. The other fields are set only then.
	Exists       bool
	Mode         fs.FileMode
	Owner, Group string
	// SHA256 is the content's digest in hex.
	SHA256 string
}

// ParseFileStates reads file-states.sh's output for n paths: one line each, in order.
func ParseFileStates(out string, n int) ([]FileState, error) {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if n == 0 && out == "" {
		return nil, nil
	}
	if len(lines) != n {
		return nil, fmt.Errorf("file states: %d lines for %d files", len(lines), n)
	}
	states := make([]FileState, n)
	for i, line := range lines {
		st, err := ParseFileState(line)
		if err != nil {
			return nil, err
		}
		states[i] = st
	}
	return states, nil
}

// ParseFileState reads file-state.sh's output.
func ParseFileState(out string) (FileState, error) {
	fields := strings.Fields(out)
	if len(fields) == 1 && fields[0] == "missing" {
		return FileState{}, nil
	}
	if len(fields) < 4 {
		return FileState{}, fmt.Errorf("unexpected file state %q", out)
	}
	mode, err := strconv.ParseUint(fields[0], 8, 32)
	if err != nil {
		return FileState{}, fmt.Errorf("unexpected mode %q: %w", fields[0], err)
	}
	return FileState{Exists: true, Mode: fs.FileMode(mode), Owner: fields[1], Group: fields[2], SHA256: fields[3]}, nil
}

func (r FileState) ownedBy(want string) bool {
	if want == "" {
		return true
	}
	user, group, hasGroup := strings.Cut(want, ":")
	return r.Owner == user && (!hasGroup || r.Group == group)
}

// WriteFile implements Runner.
func (c *Client) WriteFile(ctx context.Context, f File) (bool, error) {
	if !path.IsAbs(f.Path) {
		return false, fmt.Errorf("host %s: write %s: path is not absolute", c.cfg.Name, f.Path)
	}
	mode := f.Mode.Perm()
	if mode == 0 {
		mode = DefaultFileMode
	}
	sudo := f.Sudo && c.cfg.User != "root"
	if sudo {
		if err := c.ensureSudo(ctx); err != nil {
			return false, err
		}
	}
	// owner is who the file must belong to: f.Owner, or else whoever writes it.
	owner := f.Owner
	if owner == "" {
		owner = c.cfg.User
		if sudo {
			owner = "root"
		}
	}
	digest := sha256.Sum256(f.Content)
	sum := hex.EncodeToString(digest[:])
	octal := strconv.FormatUint(uint64(mode), 8)
	var changed bool
	var refused error
	var stderr bytes.Buffer
	err := c.withConn(ctx, true, func(cn *conn) error {
		stderr.Reset()
		var state FileState
		if f.Observed != nil {
			state = *f.Observed
		} else {
			var stdout bytes.Buffer
			if err := c.exec(ctx, cn, CommandLine(scripts.FileState.Args(f.Path), sudo), nil, &stdout, &stderr); err != nil {
				return err
			}
			var err error
			if state, err = ParseFileState(stdout.String()); err != nil {
				return err
			}
		}
		if state.Exists && state.SHA256 != sum && f.NoReplace {
			refused = &ReplaceRefusedError{Host: c.cfg.Name, Path: f.Path}
			return nil
		}
		// Only a file that is already the wanted owner's, and that no one
		// else may write, is kept when its content matches: anyone else may
		// hold it open for writing and change it after this check (review
		// M2), so it is replaced by a fresh file.
		if state.Exists && state.SHA256 == sum && state.ownedBy(owner) && state.Mode&0o022&^mode == 0 {
			if state.Mode == mode && state.ownedBy(f.Owner) {
				changed = false
				return nil
			}
			changed = true
			return c.exec(ctx, cn, CommandLine(scripts.FileMeta.Args(f.Path, octal, f.Owner), sudo), nil, io.Discard, &stderr)
		}
		changed = true
		return c.upload(ctx, cn, f, octal, sudo, &stderr)
	})
	var exitErr *gossh.ExitError
	switch {
	case err == nil && refused != nil:
		return false, refused
	case err == nil:
		c.log.Debug("wrote", "path", f.Path, "bytes", len(f.Content), "changed", changed, "sensitive", f.Sensitive)
		return changed, nil
	case IsHostAccess(err):
		return false, err
	case errors.As(err, &exitErr):
		return false, &CommandError{Host: c.cfg.Name, ExitCode: exitErr.ExitStatus(), Command: "write " + f.Path, Stderr: tail(redact(stderr.String(), nil), stderrTailLines, stderrTailBytes)}
	}
	return false, fmt.Errorf("host %s: write %s: %w", c.cfg.Name, f.Path, err)
}

// upload moves f's content to the host without any other local user being
// able to read it on the way (docs/ssh.md, "Files and the API server").
//
// SFTP OPEN (pkg/sftp sends no attributes with it) creates a file with the
// server's umask, usually 0644, and a chmod comes one round trip later, when
// someone may already hold the file open. So:
//   - under sudo, with an owner to set, or without SFTP, the content streams
//     over the stdin of file-install.sh, which creates the temporary file
//     with umask 077 next to the destination, sets mode and owner, and
//     renames it: one session;
//   - otherwise SFTP writes into a fresh directory next to the destination
//     that is made 0700 before anything is created in it: the file's mode
//     does not matter while no one else can look it up there. It is renamed
//     over the destination, and the directory is removed.
func (c *Client) upload(ctx context.Context, cn *conn, f File, octal string, sudo bool, stderr *bytes.Buffer) error {
	dir, base := path.Split(f.Path)
	var sc *sftp.Client
	if !sudo && f.Owner == "" {
		var done func()
		var err error
		if sc, done, err = c.openSFTP(ctx, cn); err != nil {
			return err
		}
		if sc != nil {
			defer done()
		}
	}
	if sc == nil {
		tmp := path.Join(dir, "."+base+".installer-"+randomSuffix())
		return c.exec(ctx, cn, CommandLine(scripts.FileInstall.Args("-", tmp, f.Path, octal, f.Owner), sudo), f.Content, io.Discard, stderr)
	}
	if err := sc.MkdirAll(dir); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	stage := path.Join(dir, ".installer-"+randomSuffix())
	if err := sc.Mkdir(stage); err != nil {
		return fmt.Errorf("create %s: %w", stage, err)
	}
	src := path.Join(stage, base)
	// Whatever happens, nothing stays behind: the file (when not renamed)
	// and the directory.
	defer func() {
		_ = sc.Remove(src)
		_ = sc.RemoveDirectory(stage)
	}()
	if err := sc.Chmod(stage, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", stage, err)
	}
	mode, _ := parseOctal(octal)
	if err := sftpPut(sc, src, mode, f.Content); err != nil {
		return err
	}
	if err := sc.PosixRename(src, f.Path); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return nil
}

// sftpCreated, when set (by tests), is called with the path of each file
// sftpPut has just created, before its mode is set or any byte is written.
var sftpCreated func(path string)

// sftpPut creates p exclusively, sets its mode and writes data. p must be
// in a directory no one else can enter: the file is created with the
// server's umask (see upload).
func sftpPut(sc *sftp.Client, p string, mode os.FileMode, data []byte) error {
	w, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	if sftpCreated != nil {
		sftpCreated(p)
	}
	if err := w.Chmod(mode); err != nil {
		_ = w.Close()
		return fmt.Errorf("chmod %s: %w", p, err)
	}
	if _, err := w.ReadFrom(bytes.NewReader(data)); err != nil {
		_ = w.Close()
		return fmt.Errorf("upload to %s: %w", p, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("upload to %s: %w", p, err)
	}
	return nil
}

func parseOctal(s string) (os.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	return os.FileMode(m), err
}

// openSFTP starts an SFTP session holding one session slot until done is
// called. It returns a nil client when the server has no SFTP subsystem.
func (c *Client) openSFTP(ctx context.Context, cn *conn) (*sftp.Client, func(), error) {
	if cn.noSFTP.Load() {
		return nil, nil, nil
	}
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, nil, err
	}
	s, err := c.newSession(ctx, cn)
	if err != nil {
		release()
		return nil, nil, err
	}
	fail := func(err error) (*sftp.Client, func(), error) {
		_ = s.Close()
		release()
		return nil, nil, err
	}
	w, err := s.StdinPipe()
	if err != nil {
		return fail(err)
	}
	r, err := s.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	if err := s.RequestSubsystem("sftp"); err != nil {
		if cn.alive() && strings.Contains(err.Error(), "subsystem request failed") {
			c.log.Debug("no SFTP subsystem; streaming files over stdin")
			cn.noSFTP.Store(true)
			_, _, _ = fail(nil)
			return nil, nil, nil
		}
		return fail(fmt.Errorf("start sftp: %w", err))
	}
	sc, err := sftp.NewClientPipe(r, w, sftp.UseConcurrentWrites(true))
	if err != nil {
		return fail(fmt.Errorf("start sftp: %w", err))
	}
	return sc, func() {
		_ = sc.Close()
		_ = s.Close()
		release()
	}, nil
}

func randomSuffix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
