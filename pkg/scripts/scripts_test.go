package scripts

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// embedded lists the script files in the embedded file system: every *.sh file of this directory.
func embedded(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(files, "*.sh")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded scripts: %v", err)
	}
	return names
}

// TestEveryScriptIsUsed: each embedded file is loaded into a variable of this package (a file
// nobody runs is dead code), under its own name, and starts with the header the package doc asks for.
func TestEveryScriptIsUsed(t *testing.T) {
	for _, name := range embedded(t) {
		s, ok := loaded[name]
		if !ok {
			t.Errorf("%s is embedded but no variable of package scripts loads it", name)
			continue
		}
		data, _ := files.ReadFile(name)
		lines := strings.SplitN(string(data), "\n", 3)
		if len(lines) < 3 || lines[0] != "#!/bin/sh" || !strings.HasPrefix(lines[1], "# "+name) {
			t.Errorf("%s does not start with \"#!/bin/sh\" and a comment naming it (\"# %s ...: what it does\")", name, name)
		}
		if s.Body == "" || strings.HasPrefix(s.Body, "#") || !strings.HasSuffix(string(data), s.Body) {
			t.Errorf("%s: body %q is not the file after its header", name, s.Body)
		}
	}
	var names []string
	for _, s := range All() {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, embedded(t)) {
		t.Errorf("All() = %q, want every embedded file %q", names, embedded(t))
	}
}

// TestSyntax runs `sh -n` (Debian's dash here, as on the hosts) over every embedded script, both the
// file and the body that is sent.
func TestSyntax(t *testing.T) {
	for _, name := range embedded(t) {
		data, _ := files.ReadFile(name)
		for what, text := range map[string]string{"file": string(data), "body": loaded[name].Body} {
			out, err := exec.Command("sh", "-n", "-c", text, name).CombinedOutput()
			if err != nil {
				t.Errorf("sh -n %s (%s): %v\n%s", name, what, err, out)
			}
		}
	}
}

// TestShellcheck runs shellcheck over every embedded script. Without the binary the test is skipped,
// except in CI (CI set), where a missing shellcheck is a failure: CI installs it.
func TestShellcheck(t *testing.T) {
	bin, err := exec.LookPath("shellcheck")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("shellcheck is not installed (CI is set, so the scripts must be checked): %v", err)
		}
		t.Skipf("shellcheck is not installed: %v", err)
	}
	// The embedded files are this directory's files: check them in place, so findings name them.
	names := embedded(t)
	for _, n := range names {
		onDisk, err := os.ReadFile(n)
		data, _ := files.ReadFile(n)
		if err != nil || string(onDisk) != string(data) {
			t.Fatalf("%s on disk differs from the embedded file: %v", n, err)
		}
	}
	out, err := exec.Command(bin, append([]string{"--format=gcc"}, names...)...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Errorf("shellcheck found problems (fix them, or disable one check on its line with a comment saying why):\n%s", out)
	} else if err != nil {
		t.Fatalf("shellcheck: %v\n%s", err, out)
	}
}

func TestArgsAndParse(t *testing.T) {
	argv := Facts.Args("a b", "")
	if !slices.Equal(argv, []string{"sh", "-c", Facts.Body, "facts.sh", "a b", ""}) {
		t.Fatalf("Args = %q", argv)
	}
	s, args, ok := Parse(argv)
	if !ok || s.Name != "facts.sh" || !slices.Equal(args, []string{"a b", ""}) {
		t.Errorf("Parse(Args) = %v %q %v", s.Name, args, ok)
	}
	for _, other := range [][]string{
		{"sh", "-c", "echo hi", "facts.sh"}, // the name, not the body
		{"sh", "-c", Facts.Body},            // no $0
		{"sh", "-c", Facts.Body, "other.sh"},
		{"kubeadm", "reset", "-f", "x"},
	} {
		if _, _, ok := Parse(other); ok {
			t.Errorf("Parse(%q) recognised a script", other)
		}
	}
	// $0 is the script's name: the shell's own messages name it.
	out, err := exec.Command("sh", "-c", "set -u; echo \"$0\"; : \"$undefined\"", "facts.sh").CombinedOutput()
	if err == nil || !strings.HasPrefix(string(out), "facts.sh\nfacts.sh: ") {
		t.Errorf("sh -c ... facts.sh printed %q (%v)", out, err)
	}
}

func TestBody(t *testing.T) {
	for in, want := range map[string]string{
		"#!/bin/sh\n# what\n#\n# shellcheck disable=SC2086\n\nset -eu\n# inside\necho\n": "set -eu\n# inside\necho\n",
		"echo\n":    "echo\n",
		"#!/bin/sh": "",
	} {
		if got := body(in); got != want {
			t.Errorf("body(%q) = %q, want %q", in, got, want)
		}
	}
}
