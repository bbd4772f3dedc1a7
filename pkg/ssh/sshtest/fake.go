package sshtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"installer.dev/installer/pkg/ssh"
)

// Matcher decides whether a scripted response applies to a command's argv.
type Matcher func(args []string) bool

// Exact matches exactly this argv.
func Exact(args ...string) Matcher {
	return func(got []string) bool { return slices.Equal(got, args) }
}

// Prefix matches an argv that starts with these arguments.
func Prefix(args ...string) Matcher {
	return func(got []string) bool { return len(got) >= len(args) && slices.Equal(got[:len(args)], args) }
}

// Regexp matches the quoted command line (ssh.Quote(argv)).
func Regexp(pattern string) Matcher {
	re := regexp.MustCompile(pattern)
	return func(got []string) bool { return re.MatchString(ssh.Quote(got)) }
}

// Any matches every command.
func Any() Matcher { return func([]string) bool { return true } }

// Rule is one scripted response.
type Rule struct {
	match  Matcher
	result ssh.Result
	fail   bool
	err    error
	do     func(ssh.Cmd) (ssh.Result, error)
	times  int // 0: unlimited
	used   int
}

// Reply makes matching commands succeed with this stdout.
func (r *Rule) Reply(stdout string) *Rule {
	r.result = ssh.Result{Stdout: []byte(stdout)}
	return r
}

// Fail makes matching commands exit with code and stderr, as a
// *ssh.CommandError like the real client's.
func (r *Rule) Fail(code int, stderr string) *Rule {
	r.result = ssh.Result{Stderr: []byte(stderr), ExitCode: code}
	r.fail = true
	return r
}

// Err makes matching commands return err (e.g. an *ssh.ConnectionLostError).
func (r *Rule) Err(err error) *Rule {
	r.err = err
	return r
}

// Do computes the response.
func (r *Rule) Do(fn func(ssh.Cmd) (ssh.Result, error)) *Rule {
	r.do = fn
	return r
}

// Times limits the rule to n uses; later commands fall to later rules.
func (r *Rule) Times(n int) *Rule {
	r.times = n
	return r
}

// Call is one recorded operation: Op is "run", "read", "write" or "dial".
type Call struct {
	Op   string
	Cmd  ssh.Cmd  // run
	Path string   // read, write
	File ssh.File // write
	Addr string   // dial
}

// FakeFile is a file on the fake host.
type FakeFile struct {
	Content []byte
	Mode    fs.FileMode
	Owner   string
}

// Fake is an in-memory ssh.Runner. Commands answer from scripted rules,
// first match wins; a command no rule matches fails the call with an error
// naming it. Files live in a map. Safe for concurrent use.
type Fake struct {
	name string
	mu   sync.Mutex
	// rules, calls and files are guarded by mu.
	rules []*Rule
	calls []Call
	files map[string]FakeFile
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ ssh.Runner = (*Fake)(nil)

// NewFake returns a fake host with this name and no files.
func NewFake(name string) *Fake {
	return &Fake{name: name, files: map[string]FakeFile{}}
}

// On adds a rule for commands m matches.
func (f *Fake) On(m Matcher) *Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := &Rule{match: m}
	f.rules = append(f.rules, r)
	return r
}

// SetFile puts a file on the fake host.
func (f *Fake) SetFile(path string, content []byte, mode fs.FileMode, owner string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = FakeFile{Content: bytes.Clone(content), Mode: mode, Owner: owner}
}

// RemoveFile deletes a file from the fake host (a simulated rm).
func (f *Fake) RemoveFile(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.files, path)
}

// Files returns the paths of the fake host's files below dir ("/etc/kubernetes/pki/").
func (f *Fake) Files(dir string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p := range f.files {
		if strings.HasPrefix(p, dir) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// File returns a file from the fake host.
func (f *Fake) File(path string) (FakeFile, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ff, ok := f.files[path]
	return ff, ok
}

// OnDial sets what DialContext does; by default it fails.
func (f *Fake) OnDial(fn func(ctx context.Context, network, addr string) (net.Conn, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dial = fn
}

// Calls returns every operation so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Commands returns the argv of every command run so far.
func (f *Fake) Commands() [][]string {
	var out [][]string
	for _, c := range f.Calls() {
		if c.Op == "run" {
			out = append(out, c.Cmd.Args)
		}
	}
	return out
}

// Host implements ssh.Runner.
func (f *Fake) Host() string { return f.name }

// Run implements ssh.Runner.
func (f *Fake) Run(ctx context.Context, cmd ssh.Cmd) (ssh.Result, error) {
	if err := ctx.Err(); err != nil {
		return ssh.Result{}, err
	}
	f.mu.Lock()
	cmd.Args = slices.Clone(cmd.Args)
	cmd.Stdin = bytes.Clone(cmd.Stdin)
	f.calls = append(f.calls, Call{Op: "run", Cmd: cmd})
	var rule *Rule
	for _, r := range f.rules {
		if (r.times == 0 || r.used < r.times) && r.match(cmd.Args) {
			r.used++
			rule = r
			break
		}
	}
	f.mu.Unlock()
	if rule == nil {
		return ssh.Result{}, fmt.Errorf("fake host %s: no response scripted for %s", f.name, ssh.Quote(cmd.Args))
	}
	var res ssh.Result
	var err error
	switch {
	case rule.do != nil:
		res, err = rule.do(cmd)
	case rule.err != nil:
		err = rule.err
	default:
		res = rule.result
		res.Stdout, res.Stderr = bytes.Clone(res.Stdout), bytes.Clone(res.Stderr)
		if rule.fail {
			err = f.commandError(cmd, res)
		}
	}
	if cmd.Stdout != nil {
		_, _ = cmd.Stdout.Write(res.Stdout)
	}
	if cmd.Stderr != nil {
		_, _ = cmd.Stderr.Write(res.Stderr)
	}
	return res, err
}

func (f *Fake) commandError(cmd ssh.Cmd, res ssh.Result) *ssh.CommandError {
	e := &ssh.CommandError{Host: f.name, ExitCode: res.ExitCode, Sensitive: cmd.Sensitive}
	if !cmd.Sensitive {
		e.Command = ssh.Quote(cmd.Args)
		e.Stderr = string(bytes.TrimSpace(res.Stderr))
	}
	return e
}

// ReadFile implements ssh.Runner.
func (f *Fake) ReadFile(ctx context.Context, path string, opts ssh.ReadOptions) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, Call{Op: "read", Path: path})
	ff, ok := f.files[path]
	if !ok {
		return nil, fmt.Errorf("fake host %s: read %s: %w", f.name, path, fs.ErrNotExist)
	}
	if opts.To != nil {
		_, err := opts.To.Write(ff.Content)
		return nil, err
	}
	return bytes.Clone(ff.Content), nil
}

// WriteFile implements ssh.Runner with the real client's rule: nothing
// changes when content, mode and owner already match.
func (f *Fake) WriteFile(ctx context.Context, file ssh.File) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	mode := file.Mode.Perm()
	if mode == 0 {
		mode = ssh.DefaultFileMode
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	file.Content = bytes.Clone(file.Content)
	f.calls = append(f.calls, Call{Op: "write", Path: file.Path, File: file})
	old, ok := f.files[file.Path]
	if ok && bytes.Equal(old.Content, file.Content) && old.Mode == mode && (file.Owner == "" || old.Owner == file.Owner) {
		return false, nil
	}
	if ok && file.NoReplace && !bytes.Equal(old.Content, file.Content) {
		return false, &ssh.ReplaceRefusedError{Host: f.name, Path: file.Path}
	}
	owner := file.Owner
	if owner == "" && ok {
		owner = old.Owner
	}
	f.files[file.Path] = FakeFile{Content: file.Content, Mode: mode, Owner: owner}
	return true, nil
}

// DialContext implements ssh.Runner.
func (f *Fake) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Op: "dial", Addr: addr})
	dial := f.dial
	f.mu.Unlock()
	if dial == nil {
		return nil, fmt.Errorf("fake host %s: dial %s: %w", f.name, addr, errors.ErrUnsupported)
	}
	return dial(ctx, network, addr)
}
