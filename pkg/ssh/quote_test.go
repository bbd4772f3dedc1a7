package ssh

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

var quoteGolden = []struct {
	name string
	argv []string
	want string
}{
	{"plain words", []string{"kubeadm", "init", "--config", "/etc/kubernetes/kubeadm.yaml"}, `kubeadm init --config /etc/kubernetes/kubeadm.yaml`},
	{"safe punctuation", []string{"a-b_c.d/e:f,g+h@i%j"}, `a-b_c.d/e:f,g+h@i%j`},
	{"empty", []string{"echo", ""}, `echo ''`},
	{"only empty", []string{""}, `''`},
	{"single quote", []string{"it's"}, `'it'\''s'`},
	{"only quotes", []string{"''"}, `''\'''\'''`},
	{"double quote", []string{`say "hi"`}, `'say "hi"'`},
	{"dollar", []string{"$HOME", "${PATH}"}, `'$HOME' '${PATH}'`},
	{"backticks", []string{"`id`", "$(id)"}, "'`id`' '$(id)'"},
	{"backslashes", []string{`a\b`, `\`, `\\n`}, `'a\b' '\' '\\n'`},
	{"spaces and tabs", []string{"a b", "\tc"}, "'a b' '\tc'"},
	{"newline", []string{"line1\nline2"}, "'line1\nline2'"},
	{"globs", []string{"*", "/etc/*.conf", "?", "[ab]"}, `'*' '/etc/*.conf' '?' '[ab]'`},
	{"leading dash", []string{"rm", "-rf", "--", "-file"}, `rm -rf -- -file`},
	{"assignment-looking first word", []string{"FOO=bar", "x"}, `'FOO=bar' x`},
	{"tilde", []string{"~", "~/x", "a~b"}, `'~' '~/x' 'a~b'`},
	{"operators", []string{";", "&&", "|", ">", "<", "&", "#", "!"}, `';' '&&' '|' '>' '<' '&' '#' '!'`},
	{"braces and parens", []string{"{a,b}", "(x)"}, `'{a,b}' '(x)'`},
	{"non-ASCII", []string{"héllo", "日本", "emoji🙂"}, `'héllo' '日本' 'emoji🙂'`},
	{"nul-free control chars", []string{"a\rb", "\x1b[0m"}, "'a\rb' '\x1b[0m'"},
}

func TestQuoteGolden(t *testing.T) {
	for _, tc := range quoteGolden {
		t.Run(tc.name, func(t *testing.T) {
			if got := Quote(tc.argv); got != tc.want {
				t.Errorf("Quote(%q)\n got %s\nwant %s", tc.argv, got, tc.want)
			}
		})
	}
}

// TestQuoteRoundTrip hands every golden case to a real /bin/sh and checks
// that the shell sees exactly the original arguments.
func TestQuoteRoundTrip(t *testing.T) {
	for _, tc := range quoteGolden {
		t.Run(tc.name, func(t *testing.T) {
			got := shellArgs(t, Quote(tc.argv))
			if !slices.Equal(got, tc.argv) {
				t.Errorf("sh saw %q, want %q", got, tc.argv)
			}
		})
	}
}

func TestSudoDecoratorRoundTrip(t *testing.T) {
	golden := `sudo -n -- sh -c 'echo '\''it'\''\'\'''\''s'\'''`
	if got := CommandLine([]string{"echo", "it's"}, true); got != golden {
		t.Fatalf("CommandLine(sudo)\n got %s\nwant %s", got, golden)
	}
	argv := []string{"sh", "-c", `printf '%s\n' "$1" >&2; exit 7`, "sh", "it's $HOME `x`"}
	line := CommandLine(argv, true)
	// What sudo would run: its argv after "--" must be sh -c <Quote(argv)>,
	// and that inner string must give back argv.
	outer := shellArgs(t, line)
	if len(outer) != 6 || !slices.Equal(outer[:5], []string{"sudo", "-n", "--", "sh", "-c"}) {
		t.Fatalf("outer argv = %q", outer)
	}
	if inner := shellArgs(t, outer[5]); !slices.Equal(inner, argv) {
		t.Fatalf("inner argv = %q, want %q", inner, argv)
	}
	if got := CommandLine(argv, false); got != Quote(argv) {
		t.Fatalf("CommandLine without sudo = %s, want Quote(argv)", got)
	}
}

// shellArgs lets /bin/sh parse line as the arguments of printf and returns
// the words it produced.
func shellArgs(t *testing.T, line string) []string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", `printf '%s\0' `+line).Output()
	if err != nil {
		t.Fatalf("sh -c %s: %v", line, err)
	}
	words := strings.Split(string(out), "\x00")
	return words[:len(words)-1]
}
