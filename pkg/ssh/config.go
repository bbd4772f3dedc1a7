package ssh

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// HostKeyPolicy says what to do with a host key known_hosts does not hold.
// There is deliberately no policy that skips the check.
type HostKeyPolicy string

const (
	// HostKeyStrict refuses unknown and changed keys (the default).
	HostKeyStrict HostKeyPolicy = "strict"
	// HostKeyAcceptNew records unknown keys in known_hosts and refuses
	// changed ones, as OpenSSH's StrictHostKeyChecking=accept-new does.
	HostKeyAcceptNew HostKeyPolicy = "accept-new"
)

// Config is how to reach and log into one host. The command layer
// (cmd/installer, sshConfig) fills it from the cluster spec (spec.ssh merged
// with hosts[].ssh).
type Config struct {
	// Name is the host's name in the spec; it prefixes logs and errors.
	Name    string
	Address string
	Port    int // 0 means 22
	User    string
	// KeyFile is a private key file; "~/" is expanded.
	KeyFile string
	// PassphraseEnv names the environment variable holding KeyFile's
	// passphrase, if it is encrypted.
	PassphraseEnv string
	// Agent uses the ssh-agent at $SSH_AUTH_SOCK.
	Agent bool
	// PasswordEnv names the environment variable holding the login password.
	PasswordEnv string
	// KnownHostsFile defaults to ~/.ssh/known_hosts.
	KnownHostsFile string
	HostKeyPolicy  HostKeyPolicy // "" means strict
	Bastion        *BastionConfig
}

// BastionConfig is a jump host (ProxyJump) in front of the host. Agent,
// known_hosts and host key policy are shared with the host's Config.
type BastionConfig struct {
	Address       string
	Port          int // 0 means 22
	User          string
	KeyFile       string
	PassphraseEnv string
}

// Options are the run-time settings that do not come from the spec.
type Options struct {
	// Logger receives debug lines for commands (sensitive ones masked).
	Logger *slog.Logger
	// Output, if set, receives every non-sensitive command's stdout and
	// stderr, each line prefixed with "[host] " (the CLI's -v).
	Output io.Writer
	// Prompt asks the operator for a key passphrase; nil when not
	// interactive, in which case PassphraseEnv must be set.
	Prompt func(prompt string) (string, error)
	// Getenv looks up PassphraseEnv, PasswordEnv and SSH_AUTH_SOCK;
	// nil means os.Getenv.
	Getenv func(string) string
	// MaxSessions caps concurrent sessions per connection; the rest wait.
	// OpenSSH allows 10 by default; 0 means DefaultMaxSessions.
	MaxSessions int
	// DialTimeout bounds TCP connect plus SSH handshake; 0 means 15s.
	DialTimeout time.Duration
	// Dial opens the TCP connection to a host or its bastion; nil means a net.Dialer. Every network
	// connection the client makes goes through it (tests use it to prove nothing dials early).
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// KeepAlive is the interval between keepalive probes; 0 means 3s.
	KeepAlive time.Duration
	// DeadAfter closes a connection none of whose keepalives was answered for this long, failing
	// the commands on it; 0 means 10s. A loaded host still answers within a second or two.
	DeadAfter time.Duration
	// ReconnectTimeout bounds the TCP connect that replaces a connection closed by DeadAfter;
	// 0 means 5s.
	ReconnectTimeout time.Duration
}

// DefaultMaxSessions stays below OpenSSH's MaxSessions default of 10.
const DefaultMaxSessions = 8

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Dial == nil {
		var d net.Dialer
		o.Dial = d.DialContext
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 15 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 3 * time.Second
	}
	if o.DeadAfter <= 0 {
		o.DeadAfter = 10 * time.Second
	}
	if o.ReconnectTimeout <= 0 {
		o.ReconnectTimeout = 5 * time.Second
	}
	return o
}

func (c Config) withDefaults() (Config, error) {
	if c.Address == "" {
		return c, fmt.Errorf("host %s: no address", c.Name)
	}
	if c.Name == "" {
		c.Name = c.Address
	}
	if c.Port == 0 {
		c.Port = 22
	}
	if c.User == "" {
		c.User = "root"
	}
	if c.HostKeyPolicy == "" {
		c.HostKeyPolicy = HostKeyStrict
	}
	if c.HostKeyPolicy != HostKeyStrict && c.HostKeyPolicy != HostKeyAcceptNew {
		return c, fmt.Errorf("host %s: unknown host key policy %q (want strict or accept-new)", c.Name, c.HostKeyPolicy)
	}
	var err error
	if c.KnownHostsFile == "" {
		c.KnownHostsFile = "~/.ssh/known_hosts"
	}
	if c.KnownHostsFile, err = expandHome(c.KnownHostsFile); err != nil {
		return c, err
	}
	if c.KeyFile, err = expandHome(c.KeyFile); err != nil {
		return c, err
	}
	if c.Bastion != nil {
		b := *c.Bastion
		if b.Address == "" {
			return c, fmt.Errorf("host %s: bastion has no address", c.Name)
		}
		if b.Port == 0 {
			b.Port = 22
		}
		if b.User == "" {
			b.User = c.User
		}
		if b.KeyFile, err = expandHome(b.KeyFile); err != nil {
			return c, err
		}
		c.Bastion = &b
	}
	return c, nil
}

func (c Config) addr() string { return net.JoinHostPort(c.Address, strconv.Itoa(c.Port)) }

func (b BastionConfig) addr() string { return net.JoinHostPort(b.Address, strconv.Itoa(b.Port)) }

func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %s: %w", p, err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

// normalizeAddr is host:port as known_hosts writes it: bare host for port
// 22, [host]:port otherwise.
func normalizeAddr(addr string) string {
	host, port := splitAddr(addr)
	if port == "22" {
		return host
	}
	return "[" + host + "]:" + port
}

func splitAddr(addr string) (host, port string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, "22"
	}
	return host, port
}
