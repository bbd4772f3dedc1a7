package ssh

import (
	"errors"
	"fmt"
	"strings"
)

// AuthError means the host refused every credential offered. Permanent:
// retrying with the same credentials cannot help.
type AuthError struct {
	Host    string
	Address string
	User    string
	// Offered describes what was tried, e.g. "key file ~/.ssh/id_ed25519".
	Offered []string
	Err     error
}

func (e *AuthError) Error() string {
	offered := "nothing"
	if len(e.Offered) > 0 {
		offered = strings.Join(e.Offered, ", ")
	}
	return fmt.Sprintf("host %s: permission denied for user %q at %s (offered %s); check spec.ssh.user, keyFile, agent or passwordEnv, and the user's authorized_keys on the host",
		e.Host, e.User, e.Address, offered)
}

func (e *AuthError) Unwrap() error { return e.Err }

// HostKeyProblem says why a host key was refused.
type HostKeyProblem int

const (
	// HostKeyUnknown: known_hosts has no key for the host (strict policy).
	HostKeyUnknown HostKeyProblem = iota + 1
	// HostKeyChanged: known_hosts has other keys for the host.
	HostKeyChanged
	// HostKeyRevoked: the key is marked @revoked in known_hosts.
	HostKeyRevoked
	// HostKeyUntrusted: a host certificate no @cert-authority line vouches
	// for, or one that is invalid for this host.
	HostKeyUntrusted
)

func (p HostKeyProblem) String() string {
	switch p {
	case HostKeyUnknown:
		return "unknown"
	case HostKeyChanged:
		return "changed"
	case HostKeyRevoked:
		return "revoked"
	case HostKeyUntrusted:
		return "untrusted"
	}
	return fmt.Sprintf("HostKeyProblem(%d)", int(p))
}

// HostKeyError means the host's key was refused. Permanent.
type HostKeyError struct {
	Host    string
	Address string // host:port as looked up in known_hosts
	Problem HostKeyProblem
	// KeyType and Fingerprint (SHA256:...) describe the key the host showed.
	KeyType        string
	Fingerprint    string
	KnownHostsFile string
	// Known lists the known_hosts entries ("file:line") that disagree.
	Known []string
	Err   error
}

func (e *HostKeyError) Error() string {
	entry := normalizeAddr(e.Address)
	switch e.Problem {
	case HostKeyUnknown:
		host, port := splitAddr(e.Address)
		return fmt.Sprintf("host %s: host key %s %s of %s is not in %s; check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then add it (ssh-keyscan -p %s %s >> %s) or set spec.ssh.hostKeyPolicy: accept-new",
			e.Host, e.KeyType, e.Fingerprint, e.Address, e.KnownHostsFile, port, host, e.KnownHostsFile)
	case HostKeyChanged:
		return fmt.Sprintf("host %s: HOST KEY CHANGED for %s: it shows %s %s, but %s holds a different key (%s); if the host was reinstalled, remove the old entry (ssh-keygen -R '%s' -f %s), otherwise treat this as an attack",
			e.Host, e.Address, e.KeyType, e.Fingerprint, e.KnownHostsFile, strings.Join(e.Known, ", "), entry, e.KnownHostsFile)
	case HostKeyRevoked:
		return fmt.Sprintf("host %s: host key %s %s of %s is marked @revoked in %s; the host needs a new host key",
			e.Host, e.KeyType, e.Fingerprint, e.Address, strings.Join(e.Known, ", "))
	default:
		return fmt.Sprintf("host %s: host certificate %s %s of %s is not trusted by %s: %v; check the @cert-authority line and the certificate's principals",
			e.Host, e.KeyType, e.Fingerprint, e.Address, e.KnownHostsFile, e.Err)
	}
}

func (e *HostKeyError) Unwrap() error { return e.Err }

// UnreachableError means no SSH connection could be set up: the address did
// not answer, refused, timed out, or closed the connection during the
// handshake. Transient.
type UnreachableError struct {
	Host    string
	Address string
	// Via is the bastion's address when the hop went through one.
	Via string
	Err error
}

func (e *UnreachableError) Error() string {
	via := ""
	if e.Via != "" {
		via = " via bastion " + e.Via
	}
	return fmt.Sprintf("host %s: cannot reach %s%s: %v; check the address, port and firewall", e.Host, e.Address, via, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// ConnectionLostError means an established connection dropped while an
// operation was using it. Transient: the next call dials again.
type ConnectionLostError struct {
	Host string
	Err  error
}

func (e *ConnectionLostError) Error() string {
	return fmt.Sprintf("host %s: connection lost: %v", e.Host, e.Err)
}

func (e *ConnectionLostError) Unwrap() error { return e.Err }

// SudoError means sudo refused to run a command as root without a password.
// Permanent until the host's sudoers change.
type SudoError struct {
	Host          string
	User          string
	NeedsPassword bool
	// Detail is sudo's own message when it is not the password prompt.
	Detail string
}

func (e *SudoError) Error() string {
	if e.NeedsPassword {
		return fmt.Sprintf("host %s: sudo asks user %q for a password, and SSH commands have no terminal to type it; add a NOPASSWD rule on the host, e.g. '%s ALL=(ALL) NOPASSWD: ALL' in /etc/sudoers.d/%s, or log in as root",
			e.Host, e.User, e.User, e.User)
	}
	return fmt.Sprintf("host %s: sudo -n failed for user %q: %s; the user needs passwordless sudo (a NOPASSWD rule) or root login", e.Host, e.User, e.Detail)
}

// ReplaceRefusedError means a NoReplace file exists on the host with other content: it is not the
// installer's to overwrite, and nothing was written.
type ReplaceRefusedError struct {
	Host string
	Path string
}

func (e *ReplaceRefusedError) Error() string {
	return fmt.Sprintf("host %s: %s exists with other content; refusing to replace it", e.Host, e.Path)
}

// CommandError means a remote command ran and failed.
type CommandError struct {
	Host string
	// ExitCode is the command's exit status, -1 when it had none (killed by
	// a signal, see Signal).
	ExitCode int
	Signal   string
	// Command is the redacted command line; empty for sensitive commands.
	Command string
	// Stderr is the redacted tail of stderr; empty for sensitive commands.
	Stderr    string
	Sensitive bool
}

func (e *CommandError) Error() string {
	status := fmt.Sprintf("exited with code %d", e.ExitCode)
	if e.Signal != "" {
		status = "was killed by signal " + e.Signal
	}
	if e.Sensitive {
		return fmt.Sprintf("host %s: a sensitive command %s (command and output hidden)", e.Host, status)
	}
	msg := fmt.Sprintf("host %s: command %q %s", e.Host, e.Command, status)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// CredentialsError means a credential could not be prepared on this machine
// (unreadable or encrypted key file, missing passphrase or password variable,
// unreachable agent). It is a local input problem, found before any host is
// contacted.
type CredentialsError struct {
	// What names the credential, e.g. "key file /root/.ssh/id_ed25519".
	What string
	Err  error
}

func (e *CredentialsError) Error() string { return fmt.Sprintf("%s: %v", e.What, e.Err) }

func (e *CredentialsError) Unwrap() error { return e.Err }

// IsHostAccess reports whether err means a host could not be reached or
// logged into (auth, host key, unreachable, dropped connection, sudo): the
// failures the CLI reports with exit code 4.
func IsHostAccess(err error) bool {
	var (
		a *AuthError
		h *HostKeyError
		u *UnreachableError
		l *ConnectionLostError
		s *SudoError
	)
	return errors.As(err, &a) || errors.As(err, &h) || errors.As(err, &u) || errors.As(err, &l) || errors.As(err, &s)
}

// IsTransient reports whether retrying later may help: the host could not be
// reached or the connection dropped. Auth, host key, sudo and command
// failures are permanent.
func IsTransient(err error) bool {
	var (
		u *UnreachableError
		l *ConnectionLostError
	)
	return errors.As(err, &u) || errors.As(err, &l)
}
