package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"installer.dev/installer/pkg/exitcode"
)

// TestResetRefusesWithoutConfirmation: without a terminal and without --yes, reset exits 2 before
// any connection instead of waiting for an answer; a bad --drain-timeout is exit 2 as well.
func TestResetRefusesWithoutConfirmation(t *testing.T) {
	dir := t.TempDir()
	spec := validSpec(t, dir)
	env := map[string]string{"INSTALLER_STATE_DIR": filepath.Join(dir, "state")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reset"}, "error: reset needs confirmation: run it on a terminal, or pass --yes; nothing was changed\n"},
		{[]string{"reset", "--host", "w1"}, "error: reset needs confirmation: run it on a terminal, or pass --yes; nothing was changed\n"},
		{[]string{"reset", "--yes", "--drain-timeout", "0s"}, "error: --drain-timeout 0s: must be positive\n"},
		{[]string{"reset", "--yes", "--host", "w9"}, "error: --host w9: not in the spec (hosts: cp1, w1)\n"},
	} {
		r := runCLI(t, env, dir, append(c.args, "-f", spec)...) // runCLI fails the test on any dial
		if r.code != 2 || r.stderr != c.want {
			t.Errorf("%v: exit %d stderr %q; want 2 %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// TestConfirm: only "yes" confirms; the prompt lists what is reset.
func TestConfirm(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{{"yes\n", true}, {"  yes  \n", true}, {"yes", true}, {"y\n", false}, {"YES please\n", false}, {"\n", false}, {"", false}} {
		var out bytes.Buffer
		err := confirm(strings.NewReader(c.in), &out, "hosts w1 (worker, 10.0.0.2)")
		if (err == nil) != c.ok {
			t.Errorf("answer %q: err %v, want ok=%v", c.in, err, c.ok)
		}
		if err != nil && exitcode.Of(err) != exitcode.InvalidInput {
			t.Errorf("answer %q: exit code %d, want 2", c.in, exitcode.Of(err))
		}
		if !strings.Contains(out.String(), "hosts w1 (worker, 10.0.0.2)") || !strings.HasSuffix(out.String(), `Type "yes" to continue: `) {
			t.Errorf("prompt: %q", out.String())
		}
	}
}

// TestResetUnreachableWholeCluster: with the whole cluster, hosts that cannot be reached are
// reported (each named) and the run ends with exit code 4 after trying every host; with --host an
// unreachable host stops the run at connect, before any change.
func TestResetUnreachableWholeCluster(t *testing.T) {
	for _, c := range []struct {
		args   []string
		dialed string
		want   []string
	}{
		{[]string{"reset", "--yes"}, "10.0.0.1:22,10.0.0.2:22", []string{"host cp1 was not reset: host cp1: cannot reach 10.0.0.1:22", "host w1 was not reset: host w1: cannot reach 10.0.0.2:22", "phase unreachable"}},
		{[]string{"reset", "--yes", "--host", "w1"}, "10.0.0.1:22,10.0.0.2:22", []string{"phase connect: host w1: cannot reach 10.0.0.2:22"}},
	} {
		dir := t.TempDir()
		spec := validSpec(t, dir)
		var dialed []string
		var mu sync.Mutex
		var out, errb bytes.Buffer
		e := environment{Getenv: func(k string) string {
			if k == "INSTALLER_STATE_DIR" {
				return filepath.Join(dir, "state")
			}
			return ""
		}, Home: dir, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			mu.Lock()
			dialed = append(dialed, address)
			mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}}
		code := run(context.Background(), append(c.args, "-f", spec), streams{In: strings.NewReader(""), Out: &out, Err: &errb}, e)
		sort.Strings(dialed)
		if code != 4 || strings.Join(dialed, ",") != c.dialed {
			t.Fatalf("%v: exit %d, dialed %v\n%s", c.args, code, dialed, errb.String())
		}
		for _, w := range c.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%v: error output lacks %q:\n%s", c.args, w, errb.String())
			}
		}
	}
}
