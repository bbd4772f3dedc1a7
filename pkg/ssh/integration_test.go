package ssh_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// These tests run a real OpenSSH sshd on 127.0.0.1 (see package sshtest).

// newServer starts an sshd and a throw-away user (shell /bin/sh,
// passwordless sudo) and returns a Config for that user that trusts the
// server's host key. Root may log in with the same key (see asRoot); most
// tests use the user because root's shell here may be a slow bash.
// extraKeys are authorized for both.
func newServer(t testing.TB, o sshtest.ServerOptions, extraKeys ...gossh.PublicKey) (*sshtest.Server, ssh.Config) {
	t.Helper()
	dir := t.TempDir()
	user := sshtest.NewUser(t, sshtest.SudoNoPassword)
	key, pub := sshtest.NewKey(t, dir, "id_test", "")
	if o.AuthorizedKeys == nil {
		o.AuthorizedKeys = map[string][]gossh.PublicKey{}
	}
	keys := append([]gossh.PublicKey{pub}, extraKeys...)
	o.AuthorizedKeys["root"] = append(o.AuthorizedKeys["root"], keys...)
	o.AuthorizedKeys[user.Name] = append(o.AuthorizedKeys[user.Name], keys...)
	srv := sshtest.StartServer(t, o)
	kh := filepath.Join(dir, "known_hosts")
	writeFile(t, kh, srv.KnownHostsLine()+"\n")
	return srv, ssh.Config{Name: "h1", Address: srv.Host, Port: srv.Port, User: user.Name, KeyFile: key, KnownHostsFile: kh}
}

func asRoot(c ssh.Config) ssh.Config {
	c.User = "root"
	return c
}

func dial(t *testing.T, cfg ssh.Config, opts ssh.Options) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial(ctxT(t), cfg, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func run(t *testing.T, r ssh.Runner, cmd ssh.Cmd) string {
	t.Helper()
	res, err := r.Run(ctxT(t), cmd)
	if err != nil {
		t.Fatalf("run %q: %v", cmd.Args, err)
	}
	return strings.TrimSpace(string(res.Stdout))
}

func sh(script string, args ...string) []string {
	return append([]string{"sh", "-c", script, "sh"}, args...)
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func errorAs[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	return target
}

func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s %q does not contain %q", what, s, sub)
		}
	}
}

func TestAuthMethods(t *testing.T) {
	dir := t.TempDir()
	encKey, encPub := sshtest.NewKey(t, dir, "id_enc", "correct horse")
	agentKey, agentPub := sshtest.NewKey(t, dir, "id_agent", "")
	strangerKey, _ := sshtest.NewKey(t, dir, "id_stranger", "")
	pwUser := sshtest.NewUser(t, sshtest.SudoNone)
	_, base := newServer(t, sshtest.ServerOptions{Password: true}, encPub, agentPub)
	sock := sshtest.StartAgent(t, agentKey)
	me := base.User

	type prompted struct{ prompts []string }
	tests := []struct {
		name   string
		cfg    func(ssh.Config) ssh.Config
		env    map[string]string
		prompt func(*prompted) func(string) (string, error)
		user   string // want `id -un`; empty means an error is expected
		check  func(t *testing.T, err error, p *prompted)
	}{
		{name: "key file", cfg: func(c ssh.Config) ssh.Config { return c }, user: me},
		{name: "key file, root", cfg: asRoot, user: "root"},
		{
			name: "encrypted key, passphrase from env",
			cfg:  func(c ssh.Config) ssh.Config { c.KeyFile, c.PassphraseEnv = encKey, "KEY_PASS"; return c },
			env:  map[string]string{"KEY_PASS": "correct horse"}, user: me,
		},
		{
			name: "encrypted key, passphrase from the prompt",
			cfg:  func(c ssh.Config) ssh.Config { c.KeyFile = encKey; return c },
			prompt: func(p *prompted) func(string) (string, error) {
				return func(s string) (string, error) { p.prompts = append(p.prompts, s); return "correct horse", nil }
			},
			user: me,
			check: func(t *testing.T, _ error, p *prompted) {
				if len(p.prompts) != 1 || !strings.Contains(p.prompts[0], encKey) {
					t.Errorf("prompts = %q, want one naming %s", p.prompts, encKey)
				}
			},
		},
		{
			name: "encrypted key, no passphrase and not interactive",
			cfg:  func(c ssh.Config) ssh.Config { c.KeyFile, c.PassphraseEnv = encKey, "KEY_PASS"; return c },
			check: func(t *testing.T, err error, _ *prompted) {
				e := errorAs[*ssh.CredentialsError](t, err)
				wantContains(t, "error", e.Error(), encKey, "encrypted", "KEY_PASS")
				if ssh.IsHostAccess(err) {
					t.Error("a local key problem counts as a host access failure")
				}
			},
		},
		{
			name: "encrypted key, wrong passphrase",
			cfg:  func(c ssh.Config) ssh.Config { c.KeyFile, c.PassphraseEnv = encKey, "KEY_PASS"; return c },
			env:  map[string]string{"KEY_PASS": "wrong"},
			check: func(t *testing.T, err error, _ *prompted) {
				e := errorAs[*ssh.CredentialsError](t, err)
				wantContains(t, "error", e.Error(), "wrong passphrase")
				wantContains(t, "error", e.Error(), encKey)
				if strings.Contains(e.Error(), "wrong\"") || strings.Contains(e.Error(), "=wrong") {
					t.Errorf("error leaks the passphrase: %v", e)
				}
			},
		},
		{
			name: "ssh-agent",
			cfg:  func(c ssh.Config) ssh.Config { c.KeyFile, c.Agent = "", true; return c },
			env:  map[string]string{"SSH_AUTH_SOCK": sock}, user: me,
		},
		{
			name: "ssh-agent without SSH_AUTH_SOCK",
			cfg:  func(c ssh.Config) ssh.Config { c.KeyFile, c.Agent = "", true; return c },
			check: func(t *testing.T, err error, _ *prompted) {
				e := errorAs[*ssh.CredentialsError](t, err)
				wantContains(t, "error", e.Error(), "SSH_AUTH_SOCK")
			},
		},
		{
			name: "password from env",
			cfg: func(c ssh.Config) ssh.Config {
				c.KeyFile, c.User, c.PasswordEnv = "", pwUser.Name, "SSH_PASS"
				return c
			},
			env: map[string]string{"SSH_PASS": pwUser.Password}, user: pwUser.Name,
		},
		{
			name: "wrong password",
			cfg: func(c ssh.Config) ssh.Config {
				c.KeyFile, c.User, c.PasswordEnv = "", pwUser.Name, "SSH_PASS"
				return c
			},
			env: map[string]string{"SSH_PASS": "not-it"},
			check: func(t *testing.T, err error, _ *prompted) {
				e := errorAs[*ssh.AuthError](t, err)
				wantContains(t, "error", e.Error(), "host h1", "permission denied", pwUser.Name, "password from $SSH_PASS")
				if strings.Contains(e.Error(), "not-it") {
					t.Errorf("error leaks the password: %v", e)
				}
				if !ssh.IsHostAccess(err) || ssh.IsTransient(err) {
					t.Errorf("auth failure: IsHostAccess=%v IsTransient=%v, want true, false", ssh.IsHostAccess(err), ssh.IsTransient(err))
				}
			},
		},
		{
			name: "password env empty",
			cfg:  func(c ssh.Config) ssh.Config { c.KeyFile, c.PasswordEnv = "", "SSH_PASS"; return c },
			check: func(t *testing.T, err error, _ *prompted) {
				e := errorAs[*ssh.CredentialsError](t, err)
				wantContains(t, "error", e.Error(), "SSH_PASS", "empty")
			},
		},
		{
			name: "key not authorized",
			cfg:  func(c ssh.Config) ssh.Config { c.KeyFile = strangerKey; return c },
			check: func(t *testing.T, err error, _ *prompted) {
				e := errorAs[*ssh.AuthError](t, err)
				wantContains(t, "error", e.Error(), "host h1", `user "`+me+`"`, "key file "+strangerKey, "authorized_keys")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &prompted{}
			opts := ssh.Options{Getenv: env(tc.env)}
			if tc.prompt != nil {
				opts.Prompt = tc.prompt(p)
			}
			c, err := ssh.Dial(ctxT(t), tc.cfg(base), opts)
			if tc.user != "" {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer func() { _ = c.Close() }()
				if got := run(t, c, ssh.Cmd{Args: []string{"id", "-un"}}); got != tc.user {
					t.Errorf("logged in as %q, want %q", got, tc.user)
				}
			} else if err == nil {
				_ = c.Close()
				t.Fatal("dial succeeded, want an error")
			}
			if tc.check != nil {
				tc.check(t, err, p)
			}
		})
	}
}

func TestHostKeyPolicies(t *testing.T) {
	dir := t.TempDir()
	caKey, caPub := sshtest.NewKey(t, dir, "host_ca", "")
	_, otherCAPub := sshtest.NewKey(t, dir, "other_ca", "")
	_, otherKey := sshtest.NewKey(t, dir, "other_host_key", "")
	srv, base := newServer(t, sshtest.ServerOptions{HostCA: caKey})
	addr := "[127.0.0.1]:" + itoa(srv.Port)
	fingerprint := gossh.FingerprintSHA256(srv.HostKey)
	hashed := func(t *testing.T) string {
		f := filepath.Join(t.TempDir(), "kh")
		writeFile(t, f, srv.KnownHostsLine()+"\n")
		sshtest.Command(t, "ssh-keygen", "-H", "-f", f)
		data, _ := os.ReadFile(f)
		if !strings.HasPrefix(string(data), "|1|") {
			t.Fatalf("ssh-keygen -H wrote %q, want a hashed entry", data)
		}
		return string(data)
	}
	authorized := func(k gossh.PublicKey) string { return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k))) }

	tests := []struct {
		name    string
		known   func(t *testing.T) string // known_hosts content; "-" means no file
		policy  ssh.HostKeyPolicy
		problem ssh.HostKeyProblem // 0: connects
		msg     []string
		after   func(t *testing.T, known string, file string)
	}{
		{name: "strict, known", known: func(*testing.T) string { return srv.KnownHostsLine() + "\n" }},
		{name: "strict, hashed entry", known: hashed},
		{
			name: "strict, unknown", known: func(*testing.T) string { return "" }, problem: ssh.HostKeyUnknown,
			msg: []string{"host h1", fingerprint, "is not in", "accept-new", "ssh-keyscan -p " + itoa(srv.Port) + " 127.0.0.1"},
		},
		{
			name: "strict, no known_hosts file", known: func(*testing.T) string { return "-" }, problem: ssh.HostKeyUnknown,
			msg: []string{fingerprint},
		},
		{
			name: "accept-new, unknown: recorded", known: func(*testing.T) string { return "" }, policy: ssh.HostKeyAcceptNew,
			after: func(t *testing.T, _ string, file string) {
				data, _ := os.ReadFile(file)
				want := addr + " " + authorized(srv.HostKey) + "\n"
				if string(data) != want {
					t.Fatalf("known_hosts = %q, want %q", data, want)
				}
				// Now known: strict passes.
				cfg := base
				cfg.KnownHostsFile = file
				c := dial(t, cfg, ssh.Options{})
				if got := run(t, c, ssh.Cmd{Args: []string{"echo", "ok"}}); got != "ok" {
					t.Fatalf("after recording: %q", got)
				}
			},
		},
		{
			name: "accept-new, no known_hosts file: created", known: func(*testing.T) string { return "-" }, policy: ssh.HostKeyAcceptNew,
			after: func(t *testing.T, _ string, file string) {
				st, err := os.Stat(file)
				if err != nil || st.Mode().Perm() != 0o600 {
					t.Fatalf("known_hosts stat = %v, %v; want mode 0600", st, err)
				}
			},
		},
		{
			name: "strict, changed", known: func(*testing.T) string { return addr + " " + authorized(otherKey) + "\n" }, problem: ssh.HostKeyChanged,
			msg: []string{"HOST KEY CHANGED", fingerprint, "ssh-keygen -R '" + addr + "'", ":1"},
		},
		{
			name: "accept-new, changed: refused and not recorded", policy: ssh.HostKeyAcceptNew,
			known: func(*testing.T) string { return addr + " " + authorized(otherKey) + "\n" }, problem: ssh.HostKeyChanged,
			msg: []string{"HOST KEY CHANGED", fingerprint},
			after: func(t *testing.T, known string, file string) {
				if data, _ := os.ReadFile(file); string(data) != known {
					t.Fatalf("known_hosts changed to %q", data)
				}
			},
		},
		{
			name: "revoked", known: func(*testing.T) string {
				return "@revoked * " + authorized(srv.HostKey) + "\n" + srv.KnownHostsLine() + "\n"
			},
			policy: ssh.HostKeyAcceptNew, problem: ssh.HostKeyRevoked, msg: []string{"@revoked", fingerprint},
		},
		{
			name:  "cert-authority",
			known: func(*testing.T) string { return "@cert-authority " + addr + " " + authorized(caPub) + "\n" },
		},
		{
			name:    "cert-authority of another CA",
			known:   func(*testing.T) string { return "@cert-authority " + addr + " " + authorized(otherCAPub) + "\n" },
			problem: ssh.HostKeyUntrusted, msg: []string{"not trusted", fingerprint},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "ssh", "known_hosts")
			known := tc.known(t)
			if known != "-" {
				_ = os.MkdirAll(filepath.Dir(file), 0o700)
				writeFile(t, file, known)
			}
			cfg := base
			cfg.KnownHostsFile, cfg.HostKeyPolicy = file, tc.policy
			c, err := ssh.Dial(ctxT(t), cfg, ssh.Options{})
			if tc.problem == 0 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer func() { _ = c.Close() }()
				if got := run(t, c, ssh.Cmd{Args: []string{"echo", "ok"}}); got != "ok" {
					t.Fatalf("echo ok = %q", got)
				}
			} else {
				if err == nil {
					_ = c.Close()
					t.Fatalf("dial succeeded, want a %v host key error", tc.problem)
				}
				e := errorAs[*ssh.HostKeyError](t, err)
				if e.Problem != tc.problem || e.Host != "h1" {
					t.Fatalf("problem %v host %q, want %v h1: %v", e.Problem, e.Host, tc.problem, e)
				}
				wantContains(t, "error", e.Error(), tc.msg...)
				if !ssh.IsHostAccess(err) || ssh.IsTransient(err) {
					t.Errorf("host key error: IsHostAccess=%v IsTransient=%v, want true, false", ssh.IsHostAccess(err), ssh.IsTransient(err))
				}
			}
			if tc.after != nil {
				tc.after(t, known, file)
			}
		})
	}
}
