package ssh

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks host keys against one known_hosts file under a policy.
type hostKeys struct {
	host   string // the spec's host name, for errors
	file   string
	policy HostKeyPolicy
	log    *slog.Logger
}

// certAlgorithms are asked for first when a @cert-authority line covers the
// host, as OpenSSH does.
var certAlgorithms = []string{
	gossh.CertAlgoED25519v01, gossh.CertAlgoECDSA256v01, gossh.CertAlgoECDSA384v01,
	gossh.CertAlgoECDSA521v01, gossh.CertAlgoRSASHA512v01, gossh.CertAlgoRSASHA256v01,
}

var plainAlgorithms = []string{
	gossh.KeyAlgoED25519, gossh.KeyAlgoECDSA256, gossh.KeyAlgoECDSA384, gossh.KeyAlgoECDSA521,
	gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256,
}

// prepare reads known_hosts afresh (accept-new may have added to it) and
// returns the callback for addr and the host key algorithms to ask for.
//
// The algorithms matter: the server picks the first algorithm of ours it
// has, so with the library's default order a host known by its RSA key but
// also holding an ECDSA key would show the ECDSA one and look "changed".
// Asking only for the types known_hosts holds for the host avoids that.
func (h *hostKeys) prepare(addr string) (gossh.HostKeyCallback, []string, error) {
	data, err := os.ReadFile(h.file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read known_hosts: %w", err)
	}
	lookup := func(string, net.Addr, gossh.PublicKey) error { return &knownhosts.KeyError{} }
	if err == nil {
		if lookup, err = knownhosts.New(h.file); err != nil {
			return nil, nil, fmt.Errorf("parse known_hosts: %w", err)
		}
	}
	check := func(hostname string, remote net.Addr, key gossh.PublicKey) error {
		err := lookup(hostname, remote, key)
		if err == nil {
			return nil
		}
		return h.refuse(hostname, key, err)
	}
	return check, knownAlgorithms(lookup, addr, data), nil
}

// refuse turns a lookup failure into a HostKeyError, or records the key
// under accept-new when the host is simply unknown.
func (h *hostKeys) refuse(addr string, key gossh.PublicKey, err error) error {
	shown := key
	if cert, ok := key.(*gossh.Certificate); ok {
		shown = cert.Key
	}
	e := &HostKeyError{
		Host: h.host, Address: addr, KeyType: key.Type(), Fingerprint: gossh.FingerprintSHA256(shown),
		KnownHostsFile: h.file, Err: err,
	}
	var (
		keyErr     *knownhosts.KeyError
		revokedErr *knownhosts.RevokedError
	)
	switch {
	case errors.As(err, &revokedErr):
		e.Problem = HostKeyRevoked
		e.Known = []string{fmt.Sprintf("%s:%d", revokedErr.Revoked.Filename, revokedErr.Revoked.Line)}
	case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
		e.Problem = HostKeyUnknown
		if _, isCert := key.(*gossh.Certificate); h.policy == HostKeyAcceptNew && !isCert {
			if werr := h.record(addr, key); werr != nil {
				return fmt.Errorf("host %s: record new host key %s: %w", h.host, e.Fingerprint, werr)
			}
			h.log.Info("recorded new host key", "host", h.host, "address", addr, "fingerprint", e.Fingerprint, "file", h.file)
			return nil
		}
	case errors.As(err, &keyErr):
		e.Problem = HostKeyChanged
		for _, k := range keyErr.Want {
			e.Known = append(e.Known, fmt.Sprintf("%s:%d", k.Filename, k.Line))
		}
	default:
		e.Problem = HostKeyUntrusted
	}
	return e
}

// record appends one known_hosts line. A single O_APPEND write keeps lines
// whole when several hosts are recorded at once.
func (h *hostKeys) record(addr string, key gossh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(h.file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(h.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(knownhosts.Line([]string{addr}, key) + "\n"); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// knownAlgorithms asks lookup about a key no host has; the KeyError it gives
// back lists every entry known_hosts holds for addr.
func knownAlgorithms(lookup gossh.HostKeyCallback, addr string, data []byte) []string {
	probe, err := gossh.NewPublicKey(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public())
	if err != nil {
		return nil
	}
	host, portStr := splitAddr(addr)
	port, _ := strconv.Atoi(portStr)
	remote := &net.TCPAddr{IP: net.ParseIP(host), Port: port}
	if remote.IP == nil {
		remote.IP = net.IPv4zero
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(lookup(addr, remote, probe), &keyErr) || len(keyErr.Want) == 0 {
		// Unknown host: a plain key, which accept-new can record (a host
		// certificate would need a @cert-authority line to mean anything).
		return slices.Clone(plainAlgorithms)
	}
	lines := bytes.Split(data, []byte("\n"))
	var authority bool
	var algos []string
	for _, k := range keyErr.Want {
		if k.Line >= 1 && k.Line <= len(lines) && bytes.HasPrefix(bytes.TrimSpace(lines[k.Line-1]), []byte("@cert-authority")) {
			authority = true
			continue
		}
		if k.Key.Type() == gossh.KeyAlgoRSA {
			algos = append(algos, gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA)
		} else {
			algos = append(algos, k.Key.Type())
		}
	}
	if authority {
		if len(algos) == 0 {
			algos = plainAlgorithms
		}
		algos = append(slices.Clone(certAlgorithms), algos...)
	}
	var unique []string
	for _, a := range algos {
		if !slices.Contains(unique, a) {
			unique = append(unique, a)
		}
	}
	return unique
}
