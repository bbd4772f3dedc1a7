package ssh

import "strings"

// Quote turns argv into a string for a POSIX shell, which is what an SSH
// server hands every command to. It is the only place in the project where a
// shell string is built from arguments: each argument is either made only of
// characters no shell treats specially, or wrapped in single quotes, inside
// which nothing is special except the single quote itself: it becomes
// close-quote, backslash-escaped quote, open-quote.
func Quote(argv []string) string {
	var b strings.Builder
	for i, arg := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if arg != "" && isPlain(arg) {
			b.WriteString(arg)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(arg, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}

// isPlain reports whether s needs no quoting. '=' and '~' are left out on
// purpose: a leading word with '=' is an assignment, a leading '~' expands.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == '/', c == ':', c == ',', c == '+', c == '@', c == '%':
		default:
			return false
		}
	}
	return true
}

// sudoArgv wraps argv so it runs as root without ever prompting: -n makes sudo
// fail instead of asking for a password (there is no terminal to ask on), and
// sh -c keeps redirections and the exit code of the quoted command intact.
func sudoArgv(argv []string) []string {
	return []string{"sudo", "-n", "--", "sh", "-c", Quote(argv)}
}

// CommandLine is the exact string sent to the host for argv, with the sudo
// decorator applied when sudo is true.
func CommandLine(argv []string, sudo bool) string {
	if sudo {
		return Quote(sudoArgv(argv))
	}
	return Quote(argv)
}
