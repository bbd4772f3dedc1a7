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
)

// exitNotExist is what the read script exits with for a missing file.
const exitNotExist = 66

// readScript prints $1, or exits 66 when it does not exist.
const readScript = `[ -e "$1" ] || exit 66; exec cat -- "$1"`

// stateScript prints "missing", or the mode, owner, group and SHA-256 of $1.
const stateScript = `if [ -d "$1" ]; then echo "$1 is a directory" >&2; exit 1; fi
if [ -f "$1" ]; then stat -c '%a %U %G' -- "$1" && sha256sum -- "$1"; else echo missing; fi`

// installScript puts a file in place atomically. $1 is the source (a file,
// "-" for stdin, or $2 itself when already uploaded there), $2 a temporary
// name in the destination's directory, $3 the destination, $4 the octal mode,
// $5 the owner or "". The temporary files are removed whatever happens.
const installScript = `set -e
trap 'rm -f -- "$2"; [ "$1" = - ] || [ "$1" = "$2" ] || rm -f -- "$1"' EXIT
(umask 022 && mkdir -p -- "$(dirname -- "$3")")
umask 077
if [ "$1" = - ]; then cat > "$2"; elif [ "$1" != "$2" ]; then cat -- "$1" > "$2"; fi
chmod -- "$4" "$2"
if [ -n "$5" ]; then chown -- "$5" "$2"; fi
mv -f -- "$2" "$3"`

// metaScript fixes the mode ($2) and owner ($3) of $1.
const metaScript = `chmod -- "$2" "$1" && if [ -n "$3" ]; then chown -- "$3" "$1"; fi`

func script(body string, args ...string) []string {
	return append([]string{"sh", "-c", body, "sh"}, args...)
}

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
	err := c.withConn(ctx, true, func(cn *conn) error {
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
				data, err = io.ReadAll(f)
				return err
			}
		}
		var stdout bytes.Buffer
		stderr.Reset()
		err := c.exec(ctx, cn, CommandLine(script(readScript, p), sudo), nil, &stdout, &stderr)
		data = stdout.Bytes()
		return err
	})
	var exitErr *gossh.ExitError
	switch {
	case err == nil:
		c.log.Debug("read", "path", p, "bytes", len(data))
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

// remoteFile is what stateScript found.
type remoteFile struct {
	exists       bool
	mode         fs.FileMode
	owner, group string
	sum          string
}

func parseState(out string) (remoteFile, error) {
	fields := strings.Fields(out)
	if len(fields) == 1 && fields[0] == "missing" {
		return remoteFile{}, nil
	}
	if len(fields) < 4 {
		return remoteFile{}, fmt.Errorf("unexpected file state %q", out)
	}
	mode, err := strconv.ParseUint(fields[0], 8, 32)
	if err != nil {
		return remoteFile{}, fmt.Errorf("unexpected mode %q: %w", fields[0], err)
	}
	return remoteFile{exists: true, mode: fs.FileMode(mode), owner: fields[1], group: fields[2], sum: fields[3]}, nil
}

func (r remoteFile) ownedBy(want string) bool {
	if want == "" {
		return true
	}
	user, group, hasGroup := strings.Cut(want, ":")
	return r.owner == user && (!hasGroup || r.group == group)
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
	digest := sha256.Sum256(f.Content)
	sum := hex.EncodeToString(digest[:])
	octal := strconv.FormatUint(uint64(mode), 8)
	var changed bool
	var refused error
	var stderr bytes.Buffer
	err := c.withConn(ctx, true, func(cn *conn) error {
		var stdout bytes.Buffer
		stderr.Reset()
		if err := c.exec(ctx, cn, CommandLine(script(stateScript, f.Path), sudo), nil, &stdout, &stderr); err != nil {
			return err
		}
		state, err := parseState(stdout.String())
		if err != nil {
			return err
		}
		if state.exists && state.sum != sum && f.NoReplace {
			refused = &ReplaceRefusedError{Host: c.cfg.Name, Path: f.Path}
			return nil
		}
		if state.exists && state.sum == sum {
			if state.mode == mode && state.ownedBy(f.Owner) {
				changed = false
				return nil
			}
			changed = true
			return c.exec(ctx, cn, CommandLine(script(metaScript, f.Path, octal, f.Owner), sudo), nil, io.Discard, &stderr)
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

// upload moves f's content to the host. With SFTP the data goes straight to
// a temporary file next to the destination (or, under sudo, to a private
// file in /tmp that root then installs); without SFTP it streams over the
// stdin of installScript.
func (c *Client) upload(ctx context.Context, cn *conn, f File, octal string, sudo bool, stderr *bytes.Buffer) error {
	dir, base := path.Split(f.Path)
	tmp := path.Join(dir, "."+base+".installer-"+randomSuffix())
	sc, done, err := c.openSFTP(ctx, cn)
	if err != nil {
		return err
	}
	if sc == nil {
		return c.exec(ctx, cn, CommandLine(script(installScript, "-", tmp, f.Path, octal, f.Owner), sudo), f.Content, io.Discard, stderr)
	}
	defer done()
	src := tmp
	mode := os.FileMode(0o600) // final mode is set by root's installScript
	if sudo {
		src = "/tmp/.installer-upload-" + randomSuffix()
	} else {
		if err := sc.MkdirAll(dir); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		mode, _ = parseOctal(octal)
	}
	if err := sftpPut(sc, src, mode, f.Content); err != nil {
		_ = sc.Remove(src)
		return err
	}
	if !sudo && f.Owner == "" {
		if err := sc.PosixRename(src, f.Path); err != nil {
			_ = sc.Remove(src)
			return fmt.Errorf("rename into place: %w", err)
		}
		return nil
	}
	return c.exec(ctx, cn, CommandLine(script(installScript, src, tmp, f.Path, octal, f.Owner), sudo), nil, io.Discard, stderr)
}

// sftpPut creates p exclusively, sets its mode before any byte is written
// (so secrets never sit in a wider-open file), and writes data.
func sftpPut(sc *sftp.Client, p string, mode os.FileMode, data []byte) error {
	w, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
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
