package ssh

import (
	"io"
	"regexp"
	"strings"
	"sync"
)

// Redacted replaces secrets wherever people read them: command output, errors, rendered files
// (manifests.Redacted is this constant).
const Redacted = "<redacted>"

const (
	stderrTailLines = 10
	stderrTailBytes = 2000
)

// lockedWriter lets several hosts stream into one writer, a line at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// linePrefixer writes each complete line as one "[host] line\n" write.
// Lines are redacted like stderr in errors; a private key's lines after its
// BEGIN line are dropped until its END line (a line alone cannot show it).
type linePrefixer struct {
	w       io.Writer
	prefix  string
	secrets []string
	buf     []byte
	inKey   bool
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		line := string(p.buf[:i+1])
		p.buf = p.buf[i+1:]
		if p.inKey {
			p.inKey = !privateKeyEnd.MatchString(line)
			continue
		}
		if loc := privateKeyBegin.FindStringIndex(line); loc != nil && !privateKeyEnd.MatchString(line) {
			p.inKey = true
			line = line[:loc[0]] + Redacted + "\n"
		}
		if _, err := io.WriteString(p.w, p.prefix+redact(line, p.secrets)); err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}

// flush writes a last line that had no newline.
func (p *linePrefixer) flush() {
	if len(p.buf) > 0 {
		_, _ = io.WriteString(p.w, p.prefix+redact(string(p.buf), p.secrets)+"\n")
		p.buf = nil
	}
}

var (
	// bootstrapToken is kubeadm's token format.
	bootstrapToken  = regexp.MustCompile(`\b[a-z0-9]{6}\.[a-z0-9]{16}\b`)
	privateKeyPEM   = regexp.MustCompile(`(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)`)
	privateKeyBegin = regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)
	privateKeyEnd   = regexp.MustCompile(`-----END [A-Z ]*PRIVATE KEY-----`)
)

// Redact hides the given secrets, bootstrap tokens and PEM private keys in text people read: the
// terminal, errors, and the per-host log files alike.
func Redact(s string, secrets []string) string { return redact(s, secrets) }

// redact hides the given secrets, bootstrap tokens and PEM private keys.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	s = bootstrapToken.ReplaceAllString(s, Redacted)
	return privateKeyPEM.ReplaceAllString(s, Redacted)
}

// tail keeps the last lines of s, at most maxBytes of them, on one line
// joined by " | " so an error stays a single line.
func tail(s string, maxLines, maxBytes int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	out := strings.Join(lines, " | ")
	if len(out) > maxBytes {
		out = "..." + strings.ToValidUTF8(out[len(out)-maxBytes:], "")
	}
	return out
}
