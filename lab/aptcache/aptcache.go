// Package aptcache runs apt-cacher-ng by hand for the lab: bound to the lab bridge address only, with
// its own configuration directory (which replaces /etc/apt-cacher-ng, so it carries the Debian remap
// lines itself) and the machine's own Debian mirror as backend. Hosts install Debian packages through
// it without any route out of the lab.
package aptcache

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"installer.dev/installer/lab/aptsources"
	"installer.dev/installer/lab/internal/proc"
)

// Port is apt-cacher-ng's usual port.
const Port = 3142

// MirrorPort is where `lab up` serves the lab mirror (and its apt repositories) on the bridge; the
// cache must be allowed to fetch from it.
const MirrorPort = 5000

// Config says where the cache runs and keeps its files.
type Config struct {
	Dir      string // runtime files: conf/, log/, pid, socket
	CacheDir string // downloaded packages; kept across lab runs (outside the clone)
	Address  string // the lab bridge address to bind
}

// Server is a started apt-cacher-ng.
type Server struct {
	PID int
	URL string // http://address:port
}

// Start writes the configuration and starts apt-cacher-ng as a daemon, returning once it listens.
func Start(ctx context.Context, c Config) (Server, error) {
	bin, err := exec.LookPath("apt-cacher-ng")
	if err != nil {
		bin = "/usr/sbin/apt-cacher-ng"
		if _, serr := os.Stat(bin); serr != nil {
			return Server{}, fmt.Errorf("apt-cacher-ng not installed: %w", err)
		}
	}
	srcs, err := aptsources.ReadSystem()
	if err != nil {
		return Server{}, err
	}
	archive, err := aptsources.DebianMirror(srcs)
	if err != nil {
		return Server{}, err
	}
	security, err := aptsources.SecurityMirror(srcs)
	if err != nil {
		return Server{}, err
	}
	confDir := filepath.Join(c.Dir, "conf")
	for _, d := range []string{confDir, filepath.Join(c.Dir, "log"), c.CacheDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Server{}, fmt.Errorf("apt cache: %w", err)
		}
	}
	if err := writeConfig(c, confDir, archive, security); err != nil {
		return Server{}, err
	}
	pidFile := filepath.Join(c.Dir, "pid")
	_ = os.Remove(pidFile)
	logFile, err := os.Create(filepath.Join(c.Dir, "log", "stdout.log"))
	if err != nil {
		return Server{}, fmt.Errorf("apt cache: %w", err)
	}
	defer logFile.Close()
	// Without ForeGround it daemonises and writes PidFile; the daemon is then nobody's child here.
	cmd := exec.CommandContext(ctx, bin, "-c", confDir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		return Server{}, fmt.Errorf("start apt-cacher-ng: %w (log %s)", err, logFile.Name())
	}
	addr := net.JoinHostPort(c.Address, strconv.Itoa(Port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		pid := readPID(pidFile)
		if pid > 0 {
			if conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
				conn.Close()
				return Server{PID: pid, URL: "http://" + addr}, nil
			}
		}
		if time.Now().After(deadline) {
			if pid > 0 {
				_ = proc.Stop(ctx, pid, time.Second, "apt-cacher-ng", confDir)
			}
			return Server{}, fmt.Errorf("apt-cacher-ng did not listen on %s within 10s (log %s)", addr, logFile.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the apt-cacher-ng started with this configuration directory, by its recorded PID.
func Stop(ctx context.Context, dir string, pid int) error {
	if err := proc.Stop(ctx, pid, 5*time.Second, "apt-cacher-ng", filepath.Join(dir, "conf")); err != nil {
		return fmt.Errorf("stop apt-cacher-ng: %w", err)
	}
	return nil
}

func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

func writeConfig(c Config, confDir, archive, security string) error {
	conf := strings.Join([]string{
		"CacheDir: " + c.CacheDir,
		"LogDir: " + filepath.Join(c.Dir, "log"),
		"SupportDir: /usr/lib/apt-cacher-ng",
		"SocketPath: " + filepath.Join(c.Dir, "socket"),
		"PidFile: " + filepath.Join(c.Dir, "pid"),
		"BindAddress: " + c.Address,
		"Port: " + strconv.Itoa(Port),
		"ConnectProto: v4",
		"ExThreshold: 4",
		// Upstream ports are limited to 80 by default; the lab mirror's apt repositories are on 5000.
		"AllowUserPorts: 80 " + strconv.Itoa(MirrorPort),
		// -c replaces /etc/apt-cacher-ng, so the Debian remaps (and their backends) must be here too.
		"Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian",
		"Remap-secdeb: security.debian.org security.debian.org/debian-security deb.debian.org/debian-security " +
			"/debian-security cdn-fastly.deb.debian.org/debian-security ; " + security,
		"",
	}, "\n")
	files := map[string]string{
		"acng.conf":       conf,
		"backends_debian": strings.TrimRight(archive, "/") + "/\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(confDir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("apt cache config: %w", err)
		}
	}
	return nil
}
