package sshtest_test

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"slices"
	"strings"
	"testing"

	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

func TestFakeRun(t *testing.T) {
	ctx := context.Background()
	f := sshtest.NewFake("cp1")
	f.On(sshtest.Exact("kubeadm", "version", "-o", "short")).Reply("v1.36.5\n")
	f.On(sshtest.Prefix("systemctl", "is-active")).Fail(3, "inactive\n").Times(1)
	f.On(sshtest.Prefix("systemctl", "is-active")).Reply("active\n")
	f.On(sshtest.Regexp(`^cat /etc/os-release$`)).Do(func(c ssh.Cmd) (ssh.Result, error) {
		return ssh.Result{Stdout: []byte("ID=debian\n")}, nil
	})
	f.On(sshtest.Exact("kubeadm", "token", "create")).Fail(1, "token abcdef.0123456789abcdef rejected")
	lost := &ssh.ConnectionLostError{Host: "cp1", Err: errors.New("EOF")}
	f.On(sshtest.Exact("reboot")).Err(lost)

	tests := []struct {
		name      string
		cmd       ssh.Cmd
		stdout    string
		code      int
		errSubstr string
	}{
		{name: "exact", cmd: ssh.Cmd{Args: []string{"kubeadm", "version", "-o", "short"}}, stdout: "v1.36.5\n"},
		{name: "first use of a limited rule", cmd: ssh.Cmd{Args: []string{"systemctl", "is-active", "kubelet"}}, code: 3, errSubstr: `host cp1: command "systemctl is-active kubelet" exited with code 3: inactive`},
		{name: "next rule after the limit", cmd: ssh.Cmd{Args: []string{"systemctl", "is-active", "kubelet"}}, stdout: "active\n"},
		{name: "regexp and Do", cmd: ssh.Cmd{Args: []string{"cat", "/etc/os-release"}}, stdout: "ID=debian\n"},
		{name: "sensitive failure hides everything", cmd: ssh.Cmd{Args: []string{"kubeadm", "token", "create"}, Sensitive: true}, code: 1, errSubstr: "sensitive command exited with code 1 (command and output hidden)"},
		{name: "unscripted", cmd: ssh.Cmd{Args: []string{"rm", "-rf", "/"}}, errSubstr: "fake host cp1: no response scripted for rm -rf /"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := f.Run(ctx, tc.cmd)
			if string(res.Stdout) != tc.stdout || res.ExitCode != tc.code {
				t.Errorf("result = %q code %d, want %q code %d", res.Stdout, res.ExitCode, tc.stdout, tc.code)
			}
			if tc.errSubstr == "" {
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.errSubstr)
			}
			if tc.code != 0 {
				var ce *ssh.CommandError
				if !errors.As(err, &ce) || ce.ExitCode != tc.code {
					t.Fatalf("error %v is not a CommandError with code %d", err, tc.code)
				}
				if tc.cmd.Sensitive && strings.Contains(err.Error(), "abcdef") {
					t.Fatalf("sensitive error leaks output: %v", err)
				}
			}
		})
	}
	if _, err := f.Run(ctx, ssh.Cmd{Args: []string{"reboot"}}); !ssh.IsTransient(err) {
		t.Fatalf("scripted error = %v, want the ConnectionLostError back", err)
	}
	want := [][]string{
		{"kubeadm", "version", "-o", "short"}, {"systemctl", "is-active", "kubelet"}, {"systemctl", "is-active", "kubelet"},
		{"cat", "/etc/os-release"}, {"kubeadm", "token", "create"}, {"rm", "-rf", "/"}, {"reboot"},
	}
	if got := f.Commands(); !slices.EqualFunc(got, want, slices.Equal[[]string]) {
		t.Fatalf("recorded commands = %q, want %q", got, want)
	}
}

func TestFakeFiles(t *testing.T) {
	ctx := context.Background()
	f := sshtest.NewFake("w1")
	f.SetFile("/etc/hostname", []byte("w1\n"), 0o644, "root:root")

	if data, err := f.ReadFile(ctx, "/etc/hostname", ssh.ReadOptions{}); err != nil || string(data) != "w1\n" {
		t.Fatalf("read = %q, %v", data, err)
	}
	if _, err := f.ReadFile(ctx, "/nope", ssh.ReadOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read missing: %v, want fs.ErrNotExist", err)
	}
	steps := []struct {
		name    string
		file    ssh.File
		changed bool
		want    sshtest.FakeFile
	}{
		{"new file, default mode", ssh.File{Path: "/etc/a", Content: []byte("x")}, true, sshtest.FakeFile{Content: []byte("x"), Mode: 0o644}},
		{"same again", ssh.File{Path: "/etc/a", Content: []byte("x")}, false, sshtest.FakeFile{Content: []byte("x"), Mode: 0o644}},
		{"mode change", ssh.File{Path: "/etc/a", Content: []byte("x"), Mode: 0o600}, true, sshtest.FakeFile{Content: []byte("x"), Mode: 0o600}},
		{"owner change", ssh.File{Path: "/etc/a", Content: []byte("x"), Mode: 0o600, Owner: "etcd"}, true, sshtest.FakeFile{Content: []byte("x"), Mode: 0o600, Owner: "etcd"}},
		{"no owner keeps it", ssh.File{Path: "/etc/a", Content: []byte("y"), Mode: 0o600}, true, sshtest.FakeFile{Content: []byte("y"), Mode: 0o600, Owner: "etcd"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			changed, err := f.WriteFile(ctx, s.file)
			if err != nil || changed != s.changed {
				t.Fatalf("write = %v, %v; want changed %v", changed, err, s.changed)
			}
			got, ok := f.File(s.file.Path)
			if !ok || string(got.Content) != string(s.want.Content) || got.Mode != s.want.Mode || got.Owner != s.want.Owner {
				t.Fatalf("file = %+v, want %+v", got, s.want)
			}
		})
	}
	if _, err := f.DialContext(ctx, "tcp", "127.0.0.1:6443"); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("dial without OnDial: %v", err)
	}
	a, b := net.Pipe()
	defer func() { _ = b.Close() }()
	f.OnDial(func(context.Context, string, string) (net.Conn, error) { return a, nil })
	if c, err := f.DialContext(ctx, "tcp", "127.0.0.1:6443"); err != nil || c != a {
		t.Fatalf("dial = %v, %v", c, err)
	}
	var ops []string
	for _, c := range f.Calls() {
		ops = append(ops, c.Op+" "+c.Path+c.Addr)
	}
	want := []string{"read /etc/hostname", "read /nope", "write /etc/a", "write /etc/a", "write /etc/a", "write /etc/a", "write /etc/a", "dial 127.0.0.1:6443", "dial 127.0.0.1:6443"}
	if !slices.Equal(ops, want) {
		t.Fatalf("calls = %q, want %q", ops, want)
	}
}
