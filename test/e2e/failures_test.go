//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// The lab scenarios report failures through errorf, fatalf, fatal and errorln instead of the
// testing.T methods, so that a failed scenario can repeat its failures as the last lines of its
// output (repeatFailures), after the diagnostics: a CI runner that keeps only parts of a long log
// then still shows why the scenario failed.
var failures = struct {
	sync.Mutex
	byTest map[string][]string
}{byTest: map[string][]string{}}

func remember(t testing.TB, msg string) {
	failures.Lock()
	defer failures.Unlock()
	failures.byTest[t.Name()] = append(failures.byTest[t.Name()], msg)
}

func errorf(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	remember(t, msg)
	t.Error(msg)
}

func errorln(t testing.TB, args ...any) {
	t.Helper()
	msg := strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	remember(t, msg)
	t.Error(msg)
}

func fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	remember(t, msg)
	t.Fatal(msg)
}

func fatal(t testing.TB, args ...any) {
	t.Helper()
	msg := strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	remember(t, msg)
	t.Fatal(msg)
}

// repeatFailures logs, once the test failed, every failure it and its subtests reported, each
// shortened to its first lines and its end (a failed command's whole output was logged with it).
func repeatFailures(t *testing.T) {
	if !t.Failed() {
		return
	}
	failures.Lock()
	var out []string
	for name, msgs := range failures.byTest {
		if name != t.Name() && !strings.HasPrefix(name, t.Name()+"/") {
			continue
		}
		for _, m := range msgs {
			out = append(out, name+": "+shorten(m))
		}
	}
	failures.Unlock()
	if len(out) == 0 {
		return
	}
	t.Logf("FAILURES of %s (repeated after the diagnostics):\n%s", t.Name(), strings.Join(out, "\n"))
}

// shorten keeps a message's first 3 and last 6 lines.
func shorten(msg string) string {
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	if len(lines) <= 9 {
		return strings.Join(lines, "\n    ")
	}
	kept := append(append(lines[:3:3], fmt.Sprintf("[%d lines]", len(lines)-9)), lines[len(lines)-6:]...)
	return strings.Join(kept, "\n    ")
}
