package ssh_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

func itoa(i int) string { return strconv.Itoa(i) }

func TestBastion(t *testing.T) {
	dir := t.TempDir()
	target, cfg := newServer(t, sshtest.ServerOptions{})
	jumpKey, jumpPub := sshtest.NewKey(t, dir, "id_jump", "")
	// The bastion lets its user in with its own key and forwards only to
	// the target's port; the target does not know that key.
	bastion := sshtest.StartServer(t, sshtest.ServerOptions{
		AuthorizedKeys: map[string][]gossh.PublicKey{"root": {jumpPub}},
		Extra:          []string{"PermitOpen 127.0.0.1:" + itoa(target.Port)},
	})
	closed := sshtest.StartServer(t, sshtest.ServerOptions{
		AuthorizedKeys: map[string][]gossh.PublicKey{"root": {jumpPub}},
		Extra:          []string{"PermitOpen 127.0.0.1:1"},
	})
	kh := filepath.Join(dir, "known_hosts")
	writeFile(t, kh, target.KnownHostsLine()+"\n"+bastion.KnownHostsLine()+"\n"+closed.KnownHostsLine()+"\n")
	cfg.KnownHostsFile = kh

	t.Run("through the bastion", func(t *testing.T) {
		c := cfg
		c.Bastion = &ssh.BastionConfig{Address: bastion.Host, Port: bastion.Port, User: "root", KeyFile: jumpKey}
		cl := dial(t, c, ssh.Options{})
		// The target sees the session; SSH_CONNECTION's server port is the target's.
		got := run(t, cl, ssh.Cmd{Args: sh(`echo "$SSH_CONNECTION"`)})
		if f := strings.Fields(got); len(f) != 4 || f[3] != itoa(target.Port) {
			t.Fatalf("SSH_CONNECTION = %q, want server port %d", got, target.Port)
		}
		if !strings.Contains(bastion.Log(), "Accepted publickey for root") {
			t.Fatalf("bastion log shows no login:\n%s", bastion.Log())
		}
	})
	t.Run("bastion may not forward there", func(t *testing.T) {
		c := cfg
		c.Bastion = &ssh.BastionConfig{Address: closed.Host, Port: closed.Port, User: "root", KeyFile: jumpKey}
		_, err := ssh.Dial(ctxT(t), c, ssh.Options{})
		e := errorAs[*ssh.UnreachableError](t, err)
		if e.Via != closed.Addr() || e.Host != "h1" {
			t.Fatalf("UnreachableError via %q host %q, want via %s: %v", e.Via, e.Host, closed.Addr(), e)
		}
		wantContains(t, "error", e.Error(), "via bastion "+closed.Addr())
	})
	t.Run("bastion host key unknown", func(t *testing.T) {
		c := cfg
		c.Bastion = &ssh.BastionConfig{Address: bastion.Host, Port: bastion.Port, User: "root", KeyFile: jumpKey}
		only := filepath.Join(t.TempDir(), "known_hosts")
		writeFile(t, only, target.KnownHostsLine()+"\n")
		c.KnownHostsFile = only
		_, err := ssh.Dial(ctxT(t), c, ssh.Options{})
		e := errorAs[*ssh.HostKeyError](t, err)
		if e.Problem != ssh.HostKeyUnknown || !strings.Contains(e.Host, "bastion "+bastion.Addr()) {
			t.Fatalf("HostKeyError %v for %q, want unknown for the bastion: %v", e.Problem, e.Host, e)
		}
	})
	t.Run("bastion refuses the target's key", func(t *testing.T) {
		c := cfg
		c.Bastion = &ssh.BastionConfig{Address: bastion.Host, Port: bastion.Port, User: "root", KeyFile: cfg.KeyFile}
		_, err := ssh.Dial(ctxT(t), c, ssh.Options{})
		e := errorAs[*ssh.AuthError](t, err)
		wantContains(t, "error", e.Error(), "bastion", "permission denied")
	})
}

func TestSudo(t *testing.T) {
	noPass := sshtest.NewUser(t, sshtest.SudoNoPassword)
	withPass := sshtest.NewUser(t, sshtest.SudoPassword)
	dir := t.TempDir()
	key, pub := sshtest.NewKey(t, dir, "id_user", "")
	_, cfg := newServer(t, sshtest.ServerOptions{AuthorizedKeys: map[string][]gossh.PublicKey{
		noPass.Name: {pub}, withPass.Name: {pub},
	}})
	asUser := func(name string) ssh.Config {
		c := cfg
		c.User, c.KeyFile = name, key
		return c
	}
	whoami := sh(`echo "$(id -u) ${SUDO_USER:-none}"`)
	tests := []struct {
		name string
		cfg  ssh.Config
		sudo bool
		want string
	}{
		{"root without sudo decorator", asRoot(cfg), true, "0 none"},
		{"user, sudo", asUser(noPass.Name), true, "0 " + noPass.Name},
		{"user, no sudo", asUser(noPass.Name), false, "uid none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, tc.cfg, ssh.Options{})
			got := run(t, c, ssh.Cmd{Args: whoami, Sudo: tc.sudo})
			if tc.want == "uid none" {
				if strings.HasPrefix(got, "0 ") || !strings.HasSuffix(got, " none") {
					t.Fatalf("got %q, want a non-root uid without sudo", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("sudo wants a password", func(t *testing.T) {
		c := dial(t, asUser(withPass.Name), ssh.Options{})
		_, err := c.Run(ctxT(t), ssh.Cmd{Args: []string{"true"}, Sudo: true})
		e := errorAs[*ssh.SudoError](t, err)
		if !e.NeedsPassword || e.User != withPass.Name {
			t.Fatalf("SudoError = %+v, want NeedsPassword for %s", e, withPass.Name)
		}
		wantContains(t, "error", e.Error(), "host h1", "password", "NOPASSWD", withPass.Name)
		if strings.Contains(e.Error(), "\n") || !ssh.IsHostAccess(err) || ssh.IsTransient(err) {
			t.Errorf("want a one-line, permanent host access error: %q", e.Error())
		}
		// Reading and writing as root fail the same way.
		_, err = c.ReadFile(ctxT(t), "/etc/shadow", ssh.ReadOptions{Sudo: true})
		errorAs[*ssh.SudoError](t, err)
		_, err = c.WriteFile(ctxT(t), ssh.File{Path: "/etc/nope", Sudo: true})
		errorAs[*ssh.SudoError](t, err)
		// Without sudo the user can still work.
		if got := run(t, c, ssh.Cmd{Args: []string{"id", "-un"}}); got != withPass.Name {
			t.Fatalf("id -un = %q", got)
		}
	})
}

func TestRunExitCodesStderrStdin(t *testing.T) {
	_, cfg := newServer(t, sshtest.ServerOptions{})
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var out bytes.Buffer
	c := dial(t, cfg, ssh.Options{Logger: logger, Output: &out})
	token := "abcdef.0123456789abcdef"

	tests := []struct {
		name       string
		cmd        ssh.Cmd
		wantStdout string
		wantCode   int
		wantSignal string
		wantMsg    []string
		hidden     []string // must appear nowhere: error, logs, -v output
	}{
		{name: "success", cmd: ssh.Cmd{Args: []string{"echo", "hello world"}}, wantStdout: "hello world\n"},
		{
			name: "exit code and stderr", cmd: ssh.Cmd{Args: sh(`echo partial; echo "it failed: $1" >&2; exit 3`, "x y")},
			wantStdout: "partial\n", wantCode: 3, wantMsg: []string{"host h1", "exited with code 3", "it failed: x y", `'x y'`},
		},
		{
			name: "stderr tail", cmd: ssh.Cmd{Args: sh(`for i in $(seq 1 50); do echo line$i >&2; done; exit 1`)},
			wantCode: 1, wantMsg: []string{"line41 | ", "line50"}, hidden: []string{"line40 "},
		},
		{
			name: "secrets redacted", cmd: ssh.Cmd{Args: sh(`echo "bad token $1 and s3cret" >&2; exit 2`, token), Secrets: []string{"s3cret"}},
			wantCode: 2, wantMsg: []string{"<redacted>"}, hidden: []string{token, "s3cret"},
		},
		{
			name: "sensitive", cmd: ssh.Cmd{Args: sh(`cat; echo "leak-$1" >&2; exit 5`, "hunter2"), Stdin: []byte("stdin-secret"), Sensitive: true},
			wantStdout: "stdin-secret", wantCode: 5, wantMsg: []string{"host h1", "sensitive command", "code 5", "hidden"},
			hidden: []string{"hunter2", "stdin-secret", "leak-"},
		},
		{
			name: "killed by a signal", cmd: ssh.Cmd{Args: sh(`kill -KILL 0`)},
			wantCode: -1, wantSignal: "KILL", wantMsg: []string{"killed by signal KILL"},
		},
		{name: "stdin", cmd: ssh.Cmd{Args: []string{"tr", "a-z", "A-Z"}, Stdin: []byte("shout\n")}, wantStdout: "SHOUT\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs.Reset()
			out.Reset()
			res, err := c.Run(ctxT(t), tc.cmd)
			if string(res.Stdout) != tc.wantStdout {
				t.Errorf("stdout = %q, want %q", res.Stdout, tc.wantStdout)
			}
			if res.ExitCode != tc.wantCode {
				t.Errorf("exit code = %d, want %d", res.ExitCode, tc.wantCode)
			}
			msg := ""
			if tc.wantCode == 0 {
				if err != nil {
					t.Fatalf("run: %v", err)
				}
			} else {
				e := errorAs[*ssh.CommandError](t, err)
				if e.ExitCode != tc.wantCode || e.Signal != tc.wantSignal || e.Host != "h1" {
					t.Errorf("CommandError = %+v, want code %d signal %q", e, tc.wantCode, tc.wantSignal)
				}
				if ssh.IsHostAccess(err) || ssh.IsTransient(err) {
					t.Error("a failed command counts as a host access or transient failure")
				}
				msg = e.Error()
				wantContains(t, "error", msg, tc.wantMsg...)
			}
			for _, h := range tc.hidden {
				for what, s := range map[string]string{"error": msg, "log": logs.String(), "-v output": out.String()} {
					if strings.Contains(s, h) {
						t.Errorf("%s shows %q: %s", what, h, s)
					}
				}
			}
		})
	}
	t.Run("-v output is prefixed", func(t *testing.T) {
		out.Reset()
		run(t, c, ssh.Cmd{Args: sh(`printf 'a\nb'; echo c >&2`)})
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		want := map[string]bool{"[h1] a": true, "[h1] b": true, "[h1] c": true}
		if len(lines) != 3 {
			t.Fatalf("-v output = %q", out.String())
		}
		for _, l := range lines {
			if !want[l] {
				t.Errorf("-v line %q, want one of %v", l, want)
			}
		}
	})
	t.Run("large stdin", func(t *testing.T) {
		data := make([]byte, 4<<20)
		_, _ = rand.Read(data)
		sum := sha256.Sum256(data)
		got := run(t, c, ssh.Cmd{Args: []string{"sha256sum"}, Stdin: data})
		if !strings.HasPrefix(got, hex.EncodeToString(sum[:])) {
			t.Fatalf("remote sha256 %q, want %x", got, sum)
		}
	})
	t.Run("context cancelled while running", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Run(ctx, ssh.Cmd{Args: []string{"sleep", "30"}})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("error %v after %v, want the context's deadline promptly", err, time.Since(start))
		}
		if got := run(t, c, ssh.Cmd{Args: []string{"echo", "still here"}}); got != "still here" {
			t.Fatalf("after cancelling: %q", got)
		}
	})
	t.Run("streaming to the caller", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		run(t, c, ssh.Cmd{Args: sh(`echo o; echo e >&2`), Stdout: &stdout, Stderr: &stderr})
		if stdout.String() != "o\n" || stderr.String() != "e\n" {
			t.Fatalf("streamed stdout %q stderr %q", stdout.String(), stderr.String())
		}
	})
}

func TestFiles(t *testing.T) {
	for _, sftp := range []bool{true, false} {
		t.Run(map[bool]string{true: "sftp", false: "no sftp subsystem"}[sftp], func(t *testing.T) {
			srv, userCfg := newServer(t, sshtest.ServerOptions{NoSFTP: !sftp})
			user := &sshtest.User{Name: userCfg.User, Home: "/home/" + userCfg.User}
			root := dial(t, asRoot(userCfg), ssh.Options{})
			usr := dial(t, userCfg, ssh.Options{})
			base := "/tmp/installer-ssh-test-" + hex.EncodeToString([]byte(t.Name()))[:12] + itoa(srv.Port)
			t.Cleanup(func() { _, _ = root.Run(context.Background(), ssh.Cmd{Args: []string{"rm", "-rf", "--", base}}) })
			run(t, root, ssh.Cmd{Args: []string{"mkdir", "-p", "-m", "0755", base + "/root-only"}})

			// The host is this machine: check the results locally.
			stat := func(t *testing.T, p string) string {
				return strings.TrimSpace(sshtest.Command(t, "stat", "-c", "%a %U %G", "--", p))
			}
			content := func(t *testing.T, p string) string {
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				return string(data)
			}
			steps := []struct {
				name        string
				r           ssh.Runner
				f           ssh.File
				wantChanged bool
				wantStat    string
			}{
				{"root: new file with mode and owner", root, ssh.File{Path: base + "/a/b/secret.key", Content: []byte("key-1"), Mode: 0o600, Owner: "nobody:nogroup"}, true, "600 nobody nogroup"},
				{"root: same content skipped", root, ssh.File{Path: base + "/a/b/secret.key", Content: []byte("key-1"), Mode: 0o600, Owner: "nobody:nogroup"}, false, "600 nobody nogroup"},
				{"sudo: same content skipped", usr, ssh.File{Path: base + "/a/b/secret.key", Content: []byte("key-1"), Mode: 0o600, Owner: "nobody:nogroup", Sudo: true}, false, "600 nobody nogroup"},
				{"sudo: mode change only", usr, ssh.File{Path: base + "/a/b/secret.key", Content: []byte("key-1"), Mode: 0o640, Owner: "nobody:nogroup", Sudo: true}, true, "640 nobody nogroup"},
				{"sudo: new content", usr, ssh.File{Path: base + "/a/b/secret.key", Content: []byte("key-2"), Mode: 0o640, Owner: "nobody:nogroup", Sudo: true}, true, "640 nobody nogroup"},
				{"root: default mode, no owner", root, ssh.File{Path: base + "/plain.txt", Content: []byte("plain")}, true, "644 root root"},
				{"user with sudo into a root-owned dir", usr, ssh.File{Path: base + "/root-only/conf", Content: []byte("by sudo"), Mode: 0o600, Sudo: true}, true, "600 root root"},
				{"user with sudo, owner", usr, ssh.File{Path: base + "/root-only/conf", Content: []byte("by sudo"), Mode: 0o600, Owner: user.Name, Sudo: true}, true, "600 " + user.Name + " root"},
				{"user with sudo, same again skipped", usr, ssh.File{Path: base + "/root-only/conf", Content: []byte("by sudo"), Mode: 0o600, Owner: user.Name, Sudo: true}, false, "600 " + user.Name + " root"},
				{"user without sudo into its home", usr, ssh.File{Path: user.Home + "/own-" + itoa(srv.Port), Content: []byte("mine"), Mode: 0o640}, true, "640 " + user.Name + " " + user.Name},
			}
			for _, s := range steps {
				t.Run(s.name, func(t *testing.T) {
					changed, err := s.r.WriteFile(ctxT(t), s.f)
					if err != nil {
						t.Fatalf("write: %v", err)
					}
					if changed != s.wantChanged {
						t.Errorf("changed = %v, want %v", changed, s.wantChanged)
					}
					if got := stat(t, s.f.Path); got != s.wantStat {
						t.Errorf("stat = %q, want %q", got, s.wantStat)
					}
					if got := content(t, s.f.Path); got != string(s.f.Content) {
						t.Errorf("content = %q, want %q", got, s.f.Content)
					}
					// Only the file itself: no temporary files left behind.
					entries, _ := os.ReadDir(filepath.Dir(s.f.Path))
					for _, e := range entries {
						if strings.Contains(e.Name(), "installer-") {
							t.Errorf("temporary file left: %s", e.Name())
						}
					}
				})
			}
			t.Run("NoReplace: absent or identical is written, different is refused and kept", func(t *testing.T) {
				p := base + "/root-only/ca.crt"
				f := ssh.File{Path: p, Content: []byte("ours"), Mode: 0o644, Sudo: true, NoReplace: true}
				if changed, err := usr.WriteFile(ctxT(t), f); err != nil || !changed {
					t.Fatalf("absent file: changed %v, err %v", changed, err)
				}
				if changed, err := usr.WriteFile(ctxT(t), f); err != nil || changed {
					t.Fatalf("identical file: changed %v, err %v", changed, err)
				}
				run(t, root, ssh.Cmd{Args: []string{"sh", "-c", `printf theirs > "$1"`, "sh", p}})
				_, err := usr.WriteFile(ctxT(t), f)
				var refused *ssh.ReplaceRefusedError
				if !errors.As(err, &refused) || refused.Path != p || !strings.Contains(err.Error(), "host h1") {
					t.Fatalf("different file: err %v, want a ReplaceRefusedError naming host and path", err)
				}
				if got := content(t, p); got != "theirs" {
					t.Errorf("the refused file was changed to %q", got)
				}
			})
			t.Run("user without sudo into a root-owned dir fails", func(t *testing.T) {
				_, err := usr.WriteFile(ctxT(t), ssh.File{Path: base + "/root-only/denied", Content: []byte("x")})
				if err == nil || !strings.Contains(err.Error(), "host h1") || !strings.Contains(strings.ToLower(err.Error()), "permission denied") {
					t.Fatalf("write error = %v, want permission denied naming the host", err)
				}
				if ssh.IsHostAccess(err) {
					t.Errorf("a refused write counts as a host access failure: %v", err)
				}
			})
			t.Run("read", func(t *testing.T) {
				tests := []struct {
					name    string
					r       ssh.Runner
					path    string
					sudo    bool
					want    string
					missing bool
				}{
					{"root", root, base + "/a/b/secret.key", false, "key-2", false},
					{"user with sudo", usr, base + "/a/b/secret.key", true, "key-2", false},
					{"user with sudo, root-only file", usr, "/etc/shadow", true, "root:", false},
					{"user, own file", usr, user.Home + "/own-" + itoa(srv.Port), false, "mine", false},
					{"missing", root, base + "/nope", false, "", true},
					{"missing with sudo", usr, base + "/root-only/nope", true, "", true},
				}
				for _, tc := range tests {
					t.Run(tc.name, func(t *testing.T) {
						data, err := tc.r.ReadFile(ctxT(t), tc.path, ssh.ReadOptions{Sudo: tc.sudo})
						if tc.missing {
							if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), tc.path) {
								t.Fatalf("read error = %v, want fs.ErrNotExist naming the path", err)
							}
							return
						}
						if err != nil || !strings.HasPrefix(string(data), tc.want) {
							t.Fatalf("read = %q, %v; want prefix %q", data, err, tc.want)
						}
						// Streamed into a writer (etcd snapshots): the same bytes, none returned.
						var buf bytes.Buffer
						streamed, err := tc.r.ReadFile(ctxT(t), tc.path, ssh.ReadOptions{Sudo: tc.sudo, To: &buf})
						if err != nil || streamed != nil || buf.String() != string(data) {
							t.Fatalf("streamed read = %q into %q, %v; want %q into the writer", streamed, buf.String(), err, data)
						}
					})
				}
			})
			if !sftp && !strings.Contains(srv.Log(), "subsystem request for sftp") {
				t.Errorf("sshd log shows no refused sftp request, so the fallback may not have been used:\n%s", srv.Log())
			}
		})
	}
}

func TestConnectionDropped(t *testing.T) {
	srv, cfg := newServer(t, sshtest.ServerOptions{})
	c := dial(t, cfg, ssh.Options{})
	port := func(t *testing.T) string {
		return strings.Fields(run(t, c, ssh.Cmd{Args: sh(`echo "$SSH_CONNECTION"`)}))[1]
	}
	// killWhen kills the sshd child serving the connection (and what it
	// runs) as soon as ready() holds; the returned func waits for that and
	// reports, so nothing touches t after the subtest ends.
	killWhen := func(t *testing.T, ready func() bool) (wait func()) {
		result := make(chan error, 1)
		stop := make(chan struct{})
		go func() {
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					result <- errors.New("the command returned before the connection was killed")
					return
				default:
				}
				if ready() {
					n, err := srv.KillSessions()
					if err == nil && n == 0 {
						err = errors.New("no sshd children to kill")
					}
					result <- err
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			result <- errors.New("the remote command never started")
		}()
		return func() {
			close(stop)
			if err := <-result; err != nil {
				t.Error(err)
			}
		}
	}
	first := port(t)

	t.Run("not idempotent: classified error", func(t *testing.T) {
		marker := "drop-marker-" + itoa(srv.Port)
		wait := killWhen(t, func() bool { return srv.Running(marker) })
		start := time.Now()
		_, err := c.Run(ctxT(t), ssh.Cmd{Args: sh(`sleep 30; echo "$1"`, marker)})
		wait()
		e := errorAs[*ssh.ConnectionLostError](t, err)
		if !ssh.IsTransient(err) || !ssh.IsHostAccess(err) || e.Host != "h1" {
			t.Fatalf("IsTransient=%v IsHostAccess=%v host=%q: %v", ssh.IsTransient(err), ssh.IsHostAccess(err), e.Host, err)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("noticing the drop took %v", time.Since(start))
		}
	})
	second := port(t)
	if second == first {
		t.Fatalf("the next call used client port %s again; want a new connection", second)
	}
	t.Run("idempotent: re-dialled and run again", func(t *testing.T) {
		flag := filepath.Join(sharedTempDir(t), "first-run")
		wait := killWhen(t, func() bool { _, err := os.Stat(flag); return err == nil })
		got := run(t, c, ssh.Cmd{
			Args:       sh(`if [ -e "$1" ]; then echo second run; else touch "$1"; sleep 30; echo first run; fi`, flag),
			Idempotent: true,
		})
		wait()
		if got != "second run" {
			t.Fatalf("got %q, want the command run again after the drop", got)
		}
		if third := port(t); third == second {
			t.Fatalf("client port %s unchanged; want a new connection", third)
		}
	})
}

func TestDialFromHost(t *testing.T) {
	_, cfg := newServer(t, sshtest.ServerOptions{})
	c := dial(t, cfg, ssh.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = conn.Close() }()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	conn, err := c.DialContext(ctxT(t), "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial through the host: %v", err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping\n" {
		t.Fatalf("echo = %q, %v", buf, err)
	}

	closedPort := freePort(t)
	_, err = c.DialContext(ctxT(t), "tcp", "127.0.0.1:"+itoa(closedPort))
	if err == nil || ssh.IsHostAccess(err) || !strings.Contains(err.Error(), "host h1: dial 127.0.0.1:"+itoa(closedPort)) {
		t.Fatalf("dial to a closed port: %v; want a plain dial error naming host and address", err)
	}
}

func TestSessionCap(t *testing.T) {
	const limit = 3
	srv, cfg := newServer(t, sshtest.ServerOptions{MaxSessions: limit})

	t.Run("control: sshd refuses a session above its MaxSessions", func(t *testing.T) {
		key, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := gossh.ParsePrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := gossh.Dial("tcp", srv.Addr(), &gossh.ClientConfig{
			User: cfg.User, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.FixedHostKey(srv.HostKey),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = raw.Close() }()
		for i := range limit {
			if _, err := raw.NewSession(); err != nil {
				t.Fatalf("session %d: %v", i+1, err)
			}
		}
		var refused *gossh.OpenChannelError
		if _, err := raw.NewSession(); !errors.As(err, &refused) {
			t.Fatalf("session %d: %v, want the server to refuse it", limit+1, err)
		}
	})

	t.Run("200 at once complete under the cap", func(t *testing.T) {
		c := dial(t, cfg, ssh.Options{MaxSessions: limit})
		// Each command counts the commands running beside it, on the host.
		dir := sharedTempDir(t)
		script := `set -e; mkdir "$1/$2"; n=$(ls "$1" | wc -l); sleep 0.02; rmdir "$1/$2"; echo "$n"`
		peaks := make([]int, 200)
		errs := make([]error, 200)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range 200 {
			wg.Go(func() {
				res, err := c.Run(ctxT(t), ssh.Cmd{Args: sh(script, dir, itoa(i))})
				errs[i] = err
				peaks[i], _ = strconv.Atoi(strings.TrimSpace(string(res.Stdout)))
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("with %d sessions at most: %v", limit, err)
		}
		peak := slices.Max(peaks)
		if peak < 1 || peak > limit {
			t.Fatalf("up to %d commands ran at once, want 1..%d", peak, limit)
		}
		t.Logf("200 commands, at most %d at once (seen %d): %v", limit, peak, time.Since(start))
	})
}

func TestUnreachable(t *testing.T) {
	_, cfg := newServer(t, sshtest.ServerOptions{})
	t.Run("nothing listening", func(t *testing.T) {
		c := cfg
		c.Port = freePort(t)
		_, err := ssh.Dial(ctxT(t), c, ssh.Options{})
		e := errorAs[*ssh.UnreachableError](t, err)
		wantContains(t, "error", e.Error(), "host h1", "cannot reach 127.0.0.1:"+itoa(c.Port), "refused")
		if !ssh.IsTransient(err) || !ssh.IsHostAccess(err) {
			t.Errorf("IsTransient=%v IsHostAccess=%v, want both", ssh.IsTransient(err), ssh.IsHostAccess(err))
		}
	})
	t.Run("silent server: dial timeout", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.Close() }()
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				defer func() { _ = conn.Close() }()
			}
		}()
		c := cfg
		c.Port = l.Addr().(*net.TCPAddr).Port
		start := time.Now()
		_, err = ssh.Dial(ctxT(t), c, ssh.Options{DialTimeout: 300 * time.Millisecond})
		e := errorAs[*ssh.UnreachableError](t, err)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("error %v after %v, want a deadline within the dial timeout", e, time.Since(start))
		}
	})
}

func TestPool(t *testing.T) {
	encKey, encPub := sshtest.NewKey(t, t.TempDir(), "id_enc", "pool pass")
	_, cfg := newServer(t, sshtest.ServerOptions{}, encPub)
	cfg.KeyFile = encKey
	var out bytes.Buffer
	var prompts atomic.Int32
	p := ssh.NewPool(ssh.Options{Output: &out, Prompt: func(string) (string, error) {
		prompts.Add(1)
		return "pool pass", nil
	}})
	a, err := p.Get(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Get(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("two Gets for one host gave two clients")
	}
	other := cfg
	other.Name = "h2"
	c, err := p.Get(ctxT(t), other)
	if err != nil {
		t.Fatal(err)
	}
	if c == a || c.Host() != "h2" {
		t.Fatalf("second host got client %q", c.Host())
	}
	if n := prompts.Load(); n != 1 {
		t.Fatalf("passphrase asked %d times for two hosts, want once", n)
	}
	run(t, a, ssh.Cmd{Args: []string{"echo", "pooled"}})
	run(t, c, ssh.Cmd{Args: []string{"echo", "too"}})
	if out.String() != "[h1] pooled\n[h2] too\n" {
		t.Fatalf("-v output = %q", out.String())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctxT(t), ssh.Cmd{Args: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("run after Close: %v, want a closed-client error", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// sharedTempDir is a temporary directory the test users can write to.
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ssh-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFileStatesAndObserved: file-states.sh reports many files in one session, in order, as
// ParseFileStates reads them; WriteFile with that state does not read the file again.
func TestFileStatesAndObserved(t *testing.T) {
	srv, userCfg := newServer(t, sshtest.ServerOptions{})
	root := dial(t, asRoot(userCfg), ssh.Options{})
	base := "/tmp/installer-ssh-states-" + itoa(srv.Port)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	run(t, root, ssh.Cmd{Args: []string{"mkdir", "-p", base + "/dir"}})
	if err := os.WriteFile(base+"/a", []byte("a\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := root.Run(ctxT(t), ssh.Cmd{Args: scripts.FileStates.Args(base+"/a", base+"/missing")})
	if err != nil {
		t.Fatal(err)
	}
	states, err := ssh.ParseFileStates(string(res.Stdout), 2)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("a\n"))
	if want := (ssh.FileState{Exists: true, Mode: 0o640, Owner: "root", Group: "root", SHA256: hex.EncodeToString(sum[:])}); states[0] != want || states[1].Exists {
		t.Fatalf("states %+v, want %+v and missing", states, want)
	}
	if _, err := root.Run(ctxT(t), ssh.Cmd{Args: scripts.FileStates.Args(base+"/a", base+"/dir")}); err == nil {
		t.Fatal("a directory among the paths: no error")
	}
	if _, err := ssh.ParseFileStates("missing\n", 2); err == nil {
		t.Fatal("one line for two files: no error")
	}

	// The caller's observation is trusted, not read again: a file said missing is written though
	// it is there with this content; one said identical to new content is left as it is.
	f := ssh.File{Path: base + "/a", Content: []byte("a\n"), Mode: 0o640, Observed: &ssh.FileState{}}
	if changed, err := root.WriteFile(ctxT(t), f); err != nil || !changed {
		t.Fatalf("write with an observed missing file = %v, %v; want written", changed, err)
	}
	sumB := sha256.Sum256([]byte("b\n"))
	f.Content, f.Observed = []byte("b\n"), &ssh.FileState{Exists: true, Mode: 0o640, Owner: "root", Group: "root", SHA256: hex.EncodeToString(sumB[:])}
	if changed, err := root.WriteFile(ctxT(t), f); err != nil || changed {
		t.Fatalf("write with an observed identical file = %v, %v; want left alone", changed, err)
	}
	if data, _ := os.ReadFile(base + "/a"); string(data) != "a\n" {
		t.Fatalf("content %q, want the file untouched", data)
	}
}
