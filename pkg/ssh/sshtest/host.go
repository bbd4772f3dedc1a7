package sshtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// NewKey makes an ed25519 key pair with ssh-keygen in dir, encrypted when
// passphrase is not empty, and returns the private key's path and the
// public key.
func NewKey(t testing.TB, dir, name, passphrase string) (string, gossh.PublicKey) {
	t.Helper()
	path := filepath.Join(dir, name)
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", name, "-f", path)
	return path, readPublicKey(t, path+".pub")
}

// StartAgent runs a real ssh-agent holding the given (unencrypted) keys and
// returns its socket, for SSH_AUTH_SOCK.
func StartAgent(t testing.TB, keyFiles ...string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start ssh-agent: %v (install openssh-client)", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-agent did not listen on %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, k := range keyFiles {
		add := exec.Command("ssh-add", k)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("ssh-add %s: %v: %s", k, err, out)
		}
	}
	return sock
}

// Sudo says what sudo rights a test user gets.
type Sudo int

const (
	// SudoNone: no sudoers entry.
	SudoNone Sudo = iota
	// SudoNoPassword: ALL=(ALL) NOPASSWD: ALL.
	SudoNoPassword
	// SudoPassword: ALL=(ALL) ALL, so sudo asks for the password.
	SudoPassword
)

// User is a throw-away local account, removed when the test ends.
type User struct {
	Name     string
	Password string
	Home     string
}

// NewUser creates a user with a random name and password (sshd without PAM
// refuses accounts whose password is locked, even for key logins) and the
// given sudo rights.
func NewUser(t testing.TB, sudo Sudo) *User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("creating a test user needs root (running as uid %d)", os.Geteuid())
	}
	u := &User{Name: "itest" + randomHex(4), Password: "pw-" + randomHex(8)}
	u.Home = "/home/" + u.Name
	run(t, "useradd", "--create-home", "--shell", "/bin/sh", u.Name)
	t.Cleanup(func() {
		// -f: the test's sessions may still be winding down.
		if out, err := exec.Command("userdel", "--force", "--remove", u.Name).CombinedOutput(); err != nil {
			t.Errorf("remove test user %s: %v: %s", u.Name, err, out)
		}
	})
	chpasswd := exec.Command("chpasswd")
	chpasswd.Stdin = strings.NewReader(u.Name + ":" + u.Password + "\n")
	if out, err := chpasswd.CombinedOutput(); err != nil {
		t.Fatalf("set password of %s: %v: %s", u.Name, err, out)
	}
	rule := ""
	switch sudo {
	case SudoNoPassword:
		rule = u.Name + " ALL=(ALL) NOPASSWD: ALL\n"
	case SudoPassword:
		rule = u.Name + " ALL=(ALL) ALL\n"
	}
	if rule != "" {
		// sudo ignores sudoers.d names with a dot; the name is the user's.
		path := filepath.Join("/etc/sudoers.d", u.Name)
		if err := os.WriteFile(path, []byte(rule), 0o440); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
		t.Cleanup(func() {
			if err := os.Remove(path); err != nil {
				t.Errorf("remove %s: %v", path, err)
			}
		})
		if out, err := exec.Command("visudo", "-c", "-f", path).CombinedOutput(); err != nil {
			t.Fatalf("check %s: %v: %s", path, err, out)
		}
	}
	return u
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// Command runs a local command for a test and returns its combined output,
// failing the test with that output when it fails.
func Command(t testing.TB, name string, args ...string) string {
	t.Helper()
	return run(t, name, args...)
}
