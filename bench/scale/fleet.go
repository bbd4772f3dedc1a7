package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"installer.dev/installer/pkg/ssh/sshtest"
)

// benchHost is one sshd "host": its own address, host key, log and root directory for the files.
type benchHost struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Port    int    `json:"port"`
	// Root is where this host's files go: every host is this machine, so each gets a directory
	// that stands for its /.
	Root string `json:"root"`
	Log  string `json:"-"`
	cmd  *exec.Cmd
}

// fleet is the running sshds and what a client needs to log in.
type fleet struct {
	hosts      []*benchHost
	keyFile    string // the client's private key (root logs in with it)
	knownHosts string // every host key, as OpenSSH writes them
}

const sshd = "/usr/sbin/sshd"

// startFleet starts n sshds on 127.0.1.1 and on (hostAddress), each with its own ed25519 host key (kept under dir
// and reused by later runs), and collects their keys into one known_hosts.
func startFleet(ctx context.Context, dir string, n, port int) (*fleet, error) {
	if _, err := os.Stat(sshd); err != nil {
		return nil, fmt.Errorf("%s: %w (install Debian's openssh-server)", sshd, err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation directory
		return nil, fmt.Errorf("create /run/sshd (run as root): %w", err)
	}
	for _, d := range []string{"keys", "logs", "roots", "config", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	f := &fleet{keyFile: filepath.Join(dir, "keys", "client"), knownHosts: filepath.Join(dir, "known_hosts")}
	if err := keygen(f.keyFile, "bench-client"); err != nil {
		return nil, err
	}
	clientPub, err := os.ReadFile(f.keyFile + ".pub")
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "config", "authorized_keys")
	if err := os.WriteFile(authorized, clientPub, 0o600); err != nil {
		return nil, err
	}
	var known strings.Builder
	for i := 1; i <= n; i++ {
		h := &benchHost{Name: fmt.Sprintf("h%03d", i), Address: hostAddress(i), Port: port}
		h.Root = filepath.Join(dir, "roots", h.Name)
		h.Log = filepath.Join(dir, "logs", h.Name+".log")
		key := filepath.Join(dir, "keys", h.Name)
		if err := keygen(key, h.Name); err != nil {
			return nil, err
		}
		pub, err := os.ReadFile(key + ".pub")
		if err != nil {
			return nil, err
		}
		fields := strings.Fields(string(pub))
		fmt.Fprintf(&known, "[%s]:%d %s %s\n", h.Address, port, fields[0], fields[1])
		if err := f.start(h, key, authorized, dir); err != nil {
			f.stop()
			return nil, err
		}
		f.hosts = append(f.hosts, h)
	}
	if err := os.WriteFile(f.knownHosts, []byte(known.String()), 0o644); err != nil {
		f.stop()
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, h := range f.hosts {
		for !sshtest.Banner(h.addr()) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				f.stop()
				return nil, fmt.Errorf("sshd for %s did not answer on %s: see %s", h.Name, h.addr(), h.Log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return f, nil
}

// hostAddress is the i-th host's loopback address (from 1): 127.0.1.1-250, then 127.0.2.1-250, ...
// (all of 127.0.0.0/8 is on lo).
func hostAddress(i int) string {
	return fmt.Sprintf("127.0.%d.%d", 1+(i-1)/250, 1+(i-1)%250)
}

func (h *benchHost) addr() string { return net.JoinHostPort(h.Address, strconv.Itoa(h.Port)) }

func (f *fleet) start(h *benchHost, hostKey, authorized, dir string) error {
	config := strings.Join([]string{
		"ListenAddress " + h.addr(),
		"HostKey " + hostKey,
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"UseDNS no",
		"PermitRootLogin prohibit-password",
		"AuthorizedKeysFile " + authorized,
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		// VERBOSE logs every connection ("Accepted publickey") and every session ("Starting
		// session"): the counts in the results come from these lines.
		"LogLevel VERBOSE",
		"MaxStartups 1000:30:1000",
		"Subsystem sftp /usr/lib/openssh/sftp-server",
		// root's own ~/.bashrc on a developer machine may be slow (pyenv's init here: over a
		// second, and bash reads it for every command sshd starts). A clean host's root has
		// none, so every client's sessions run with an empty home instead.
		"SetEnv HOME=" + filepath.Join(dir, "home"),
	}, "\n") + "\n"
	path := filepath.Join(dir, "config", h.Name+".sshd_config")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return err
	}
	if err := os.Truncate(h.Log, 0); err != nil && !os.IsNotExist(err) {
		return err
	}
	h.cmd = exec.Command(sshd, "-D", "-f", path, "-E", h.Log)
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out, err := exec.Command(sshd, "-t", "-f", path).CombinedOutput(); err != nil {
		return fmt.Errorf("sshd -t for %s: %v: %s", h.Name, err, out)
	}
	if err := h.cmd.Start(); err != nil {
		return fmt.Errorf("start sshd for %s: %w", h.Name, err)
	}
	go func() { _ = h.cmd.Wait() }()
	return nil
}

// stop kills every sshd with its sessions (each runs in its own process group).
func (f *fleet) stop() {
	for _, h := range f.hosts {
		if h.cmd != nil && h.cmd.Process != nil {
			_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
}

// logCounts are what one host's sshd logged: connections accepted and sessions started.
type logCounts struct{ connections, sessions int }

// counts reads each host's log from the given offsets (nil: from the start) and returns the
// counts since then, with the new offsets.
func countLogs(hosts []*benchHost, from map[string]int64) (map[string]logCounts, map[string]int64, error) {
	counts, offsets := map[string]logCounts{}, map[string]int64{}
	for _, h := range hosts {
		file, err := os.Open(h.Log)
		if err != nil {
			return nil, nil, err
		}
		if _, err := file.Seek(from[h.Name], 0); err != nil {
			_ = file.Close()
			return nil, nil, err
		}
		var c logCounts
		n := from[h.Name]
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line := sc.Text()
			n += int64(len(line)) + 1
			switch {
			case strings.Contains(line, "Accepted publickey for "):
				c.connections++
			case strings.Contains(line, "Starting session: "):
				c.sessions++
			}
		}
		_ = file.Close()
		if err := sc.Err(); err != nil {
			return nil, nil, err
		}
		counts[h.Name], offsets[h.Name] = c, n
	}
	return counts, offsets, nil
}

func keygen(path, comment string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh-keygen %s: %v: %s", path, err, out)
	}
	return nil
}
