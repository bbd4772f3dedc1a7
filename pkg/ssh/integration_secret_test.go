package ssh_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// snoop is a local user without rights who tries to open a file the moment
// WriteFile creates it and keeps the descriptor to read the content later,
// as someone watching a directory with inotify would.
type snoop struct {
	t          *testing.T
	uid, gid   uint32
	mu         sync.Mutex
	procs      []*snoopProc
	opened     []string
	createdAny bool
}

type snoopProc struct {
	path  string
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	out   *bufio.Reader
}

func newSnoop(t *testing.T) *snoop {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create a second, unprivileged local user that tries to read uploads (CI runs as root)")
	}
	u := sshtest.NewUser(t, sshtest.SudoNone)
	lu, err := user.Lookup(u.Name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(lu.Uid)
	gid, _ := strconv.Atoi(lu.Gid)
	return &snoop{t: t, uid: uint32(uid), gid: uint32(gid)}
}

// open tries to open p as the unprivileged user and returns once it has
// succeeded or failed; on success the process keeps the file open.
func (s *snoop) open(p string) {
	cmd := exec.Command("sh", "-c", `exec 3<"$1" || exit 3; echo opened; read -r _; cat <&3`, "sh", p)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.uid, Gid: s.gid}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		s.t.Error(err)
		return
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Error(err)
		return
	}
	if err := cmd.Start(); err != nil {
		s.t.Errorf("start the snooping process: %v", err)
		return
	}
	pr := &snoopProc{path: p, cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, _ := pr.out.ReadString('\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	s.createdAny = true
	s.procs = append(s.procs, pr)
	if line == "opened\n" {
		s.opened = append(s.opened, p)
	}
}

// read lets every process that opened a file read it to the end and
// returns what each read, by path.
func (s *snoop) read() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := map[string]string{}
	for _, pr := range s.procs {
		_ = pr.stdin.Close()
		var b bytes.Buffer
		_, _ = pr.out.WriteTo(&b)
		_ = pr.cmd.Wait()
		if b.Len() > 0 {
			got[pr.path] = b.String()
		}
	}
	s.procs = nil
	return got
}

// TestWriteFileUnreadableWhileUploading is the security review's M1: a file
// created through SFTP OPEN gets the server's umask (0644) and its mode was
// narrowed one round trip later, so a local user who opened it in between
// read the secret once it was written. Every SFTP creation is intercepted
// here and another local user tries to open the new file at that moment;
// they must never read a byte.
func TestWriteFileUnreadableWhileUploading(t *testing.T) {
	s := newSnoop(t)
	_, userCfg := newServer(t, sshtest.ServerOptions{})
	root := dial(t, asRoot(userCfg), ssh.Options{})
	usr := dial(t, userCfg, ssh.Options{})
	// Like /etc/kubernetes/pki: root's, and anyone may look inside.
	base, err := os.MkdirTemp("", "ssh-secret-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	ssh.SetSFTPCreatedHook(t, s.open)

	secret := "-----BEGIN RSA PRIVATE KEY-----\nsecret " + strings.Repeat("k", 1<<16) + "\n-----END RSA PRIVATE KEY-----\n"
	tests := []struct {
		name     string
		r        ssh.Runner
		f        ssh.File
		wantStat string
		// wantSFTP: the upload must go through SFTP, so the hook must fire.
		wantSFTP bool
	}{
		{"root login", root, ssh.File{Path: base + "/pki/ca.key", Mode: 0o600}, "600 root root", true},
		{"root login, replacing", root, ssh.File{Path: base + "/pki/ca.key", Mode: 0o600}, "600 root root", true},
		{"root login, owner (streamed to file-install.sh)", root, ssh.File{Path: base + "/pki/sa.key", Mode: 0o600, Owner: "nobody:nogroup"}, "600 nobody nogroup", false},
		{"sudo login", usr, ssh.File{Path: base + "/kubeadm/kubeadm.yaml", Mode: 0o600, Sudo: true}, "600 root root", false},
		{"sudo login, owner", usr, ssh.File{Path: base + "/keepalived/keepalived.conf", Mode: 0o600, Owner: "nobody:nogroup", Sudo: true}, "600 nobody nogroup", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Content = []byte(secret + strconv.Itoa(i))
			s.mu.Lock()
			s.opened, s.createdAny = nil, false
			s.mu.Unlock()
			if _, err := tc.r.WriteFile(ctxT(t), tc.f); err != nil {
				t.Fatalf("write: %v", err)
			}
			read := s.read()
			for p, got := range read {
				t.Errorf("another local user opened %s while it was created and read %d bytes: %.40q…", p, len(got), got)
			}
			if len(s.opened) > 0 && len(read) == 0 {
				t.Errorf("another local user could open %v while it was created", s.opened)
			}
			if tc.wantSFTP && !s.createdAny {
				t.Errorf("no file was created through SFTP: the test did not exercise that path")
			}
			if got := strings.TrimSpace(sshtest.Command(t, "stat", "-c", "%a %U %G", "--", tc.f.Path)); got != tc.wantStat {
				t.Errorf("stat = %q, want %q", got, tc.wantStat)
			}
			if data, err := os.ReadFile(tc.f.Path); err != nil || !bytes.Equal(data, tc.f.Content) {
				t.Errorf("content differs (%d bytes, %v)", len(data), err)
			}
			entries, _ := os.ReadDir(filepath.Dir(tc.f.Path))
			for _, e := range entries {
				if strings.Contains(e.Name(), "installer-") {
					t.Errorf("temporary entry left: %s", e.Name())
				}
			}
		})
	}
}

// TestWriteFileReplacesFileOfAnotherOwner is the security review's M2: a
// file with the right content but another owner (or writable by others)
// was only chmod-ed and chown-ed, so whoever had created it could keep it
// open and rewrite it after the check. It must be replaced by a new file.
func TestWriteFileReplacesFileOfAnotherOwner(t *testing.T) {
	s := newSnoop(t)
	_, userCfg := newServer(t, sshtest.ServerOptions{})
	root := dial(t, asRoot(userCfg), ssh.Options{})
	usr := dial(t, userCfg, ssh.Options{})
	base := sharedTempDir(t) // world-writable, like /var/tmp
	tests := []struct {
		name     string
		r        ssh.Runner
		f        ssh.File
		mode     os.FileMode // of the planted file
		wantStat string
	}{
		{"sudo, owner root:root", usr, ssh.File{Path: base + "/sudo-owner.tar.gz", Mode: 0o644, Owner: "root:root", Sudo: true}, 0o644, "644 root root"},
		{"sudo, no owner", usr, ssh.File{Path: base + "/sudo.tar.gz", Mode: 0o644, Sudo: true}, 0o644, "644 root root"},
		{"root login, no owner, other mode", root, ssh.File{Path: base + "/root.tar.gz", Mode: 0o600}, 0o644, "600 root root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Content = []byte("the real archive")
			if err := os.WriteFile(tc.f.Path, tc.f.Content, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(tc.f.Path, int(s.uid), int(s.gid)); err != nil {
				t.Fatal(err)
			}
			// The planter keeps a descriptor open for writing.
			held, err := os.OpenFile(tc.f.Path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = held.Close() }()
			changed, err := tc.r.WriteFile(ctxT(t), tc.f)
			if err != nil || !changed {
				t.Fatalf("write: changed %v, err %v; want a replaced file", changed, err)
			}
			if _, err := held.WriteAt([]byte("EVIL!!!"), 0); err != nil {
				t.Fatal(err)
			}
			if data, err := os.ReadFile(tc.f.Path); err != nil || !bytes.Equal(data, tc.f.Content) {
				t.Errorf("content = %q (%v): the planted file was kept and rewritten after the check", data, err)
			}
			if got := strings.TrimSpace(sshtest.Command(t, "stat", "-c", "%a %U %G", "--", tc.f.Path)); got != tc.wantStat {
				t.Errorf("stat = %q, want %q", got, tc.wantStat)
			}
			if changed, err := tc.r.WriteFile(ctxT(t), tc.f); err != nil || changed {
				t.Errorf("second write: changed %v, err %v; want nothing to do", changed, err)
			}
		})
	}
}
