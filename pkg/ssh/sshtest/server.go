package sshtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is where Debian installs the OpenSSH server.
const SSHD = "/usr/sbin/sshd"

// ServerOptions shape one test sshd.
type ServerOptions struct {
	// AuthorizedKeys lists the keys each user may log in with.
	AuthorizedKeys map[string][]gossh.PublicKey
	// Password enables password authentication.
	Password bool
	// NoSFTP leaves out the sftp subsystem.
	NoSFTP bool
	// MaxSessions is sshd's per-connection session limit; 0 keeps its
	// default of 10.
	MaxSessions int
	// HostCA, if set, is a CA private key file: the host key is signed with
	// it (principal 127.0.0.1) and served as a host certificate.
	HostCA string
	// Extra lines appended to sshd_config (e.g. PermitOpen).
	Extra []string
}

// Server is a real OpenSSH sshd listening on 127.0.0.1, stopped when the
// test ends.
type Server struct {
	Host string // 127.0.0.1
	Port int
	Dir  string
	// HostKey is the public half of the server's ed25519 host key.
	HostKey gossh.PublicKey
	cmd     *exec.Cmd
	log     *SyncBuffer
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// KnownHostsLine is the line OpenSSH would write for this server.
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{s.Addr()}, s.HostKey)
}

// Log is what sshd has written to stderr so far.
func (s *Server) Log() string { return s.log.String() }

// PID is the listening sshd's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// StartServer writes a private sshd_config and host key into a temporary
// directory and runs sshd in the foreground on a free loopback port.
func StartServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		t.Fatalf("cannot start a test sshd: %v (install Debian's openssh-server)", err)
	}
	// sshd run as root needs its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("cannot start a test sshd: create /run/sshd: %v (the tests must run as root)", err)
	}
	// Not t.TempDir: sshd reads authorized_keys as the logging-in user, so
	// the directory must be reachable by every test user.
	dir, err := os.MkdirTemp("", "sshtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "ssh_host_ed25519_key")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f", keyFile)
	pub := readPublicKey(t, keyFile+".pub")
	akDir := filepath.Join(dir, "authorized_keys")
	if err := os.Mkdir(akDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for user, keys := range o.AuthorizedKeys {
		var b strings.Builder
		for _, k := range keys {
			b.Write(gossh.MarshalAuthorizedKey(k))
		}
		if err := os.WriteFile(filepath.Join(akDir, user), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var extra []string
	if o.HostCA != "" {
		run(t, "ssh-keygen", "-q", "-s", o.HostCA, "-I", "test-host", "-h", "-n", "127.0.0.1", keyFile+".pub")
		extra = append(extra, "HostCertificate "+keyFile+"-cert.pub")
	}
	extra = append(extra, o.Extra...)

	var lastErr error
	for range 3 { // a free port can be taken between finding and binding it
		port := freePort(t)
		s, err := startSSHD(dir, port, keyFile, akDir, o, extra)
		if err == nil {
			s.HostKey = pub
			t.Cleanup(s.stop)
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("cannot start a test sshd: %v", lastErr)
	return nil
}

func startSSHD(dir string, port int, keyFile, akDir string, o ServerOptions, extra []string) (*Server, error) {
	lines := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + keyFile,
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"UseDNS no",
		"PermitRootLogin yes",
		"AuthorizedKeysFile " + akDir + "/%u",
		"PubkeyAuthentication yes",
		"PasswordAuthentication " + yesNo(o.Password),
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding yes",
		"LogLevel VERBOSE",
		"MaxStartups 100:30:200",
	}
	if o.MaxSessions > 0 {
		lines = append(lines, "MaxSessions "+strconv.Itoa(o.MaxSessions))
	}
	if !o.NoSFTP {
		lines = append(lines, "Subsystem sftp /usr/lib/openssh/sftp-server")
	}
	// Match blocks (e.g. from Extra) must come last in sshd_config.
	lines = append(lines, extra...)
	config := filepath.Join(dir, fmt.Sprintf("sshd_config.%d", port))
	if err := os.WriteFile(config, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	log := &SyncBuffer{}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", config)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so the cleanup stops it and every session.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", SSHD, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &Server{Host: "127.0.0.1", Port: port, Dir: dir, cmd: cmd, log: log}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("sshd exited (%v): %s", err, strings.TrimSpace(log.String()))
		default:
		}
		if Banner(s.Addr()) {
			go func() { <-exited }()
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return nil, fmt.Errorf("sshd did not answer on %s within 10s: %s", s.Addr(), log.String())
}

// Banner reports whether an SSH server answers at addr (its version line).
func Banner(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

func (s *Server) stop() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
}

// KillSessions kills every process the listening sshd has started (the
// per-connection sshd children and the commands they run), which drops
// every connection while the server keeps listening. It returns how many
// processes it killed.
func (s *Server) KillSessions() (int, error) {
	kids := Descendants(s.cmd.Process.Pid)
	for _, pid := range kids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return 0, fmt.Errorf("kill sshd child %d: %w", pid, err)
		}
	}
	return len(kids), nil
}

// Running reports whether a process the server started has substr in its
// command line (read from /proc, so no procps is needed).
func (s *Server) Running(substr string) bool {
	for _, pid := range Descendants(s.cmd.Process.Pid) {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err == nil && bytes.Contains(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), []byte(substr)) {
			return true
		}
	}
	return false
}

// Descendants lists the processes below pid, read from /proc.
func Descendants(pid int) []int {
	parents := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		parents[ppid] = append(parents[ppid], child)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range parents[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func readPublicKey(t testing.TB, path string) gossh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return k
}

// SyncBuffer is a bytes.Buffer that several goroutines may write to (an sshd's log, a client's).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
