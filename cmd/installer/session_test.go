package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"installer.dev/installer/pkg/phases"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// fiveHostSpec is validSpec with three control planes and two workers; the addresses map back to
// the names.
func fiveHostSpec(t *testing.T, dir string) (string, map[string]string) {
	t.Helper()
	p := validSpec(t, dir)
	b, err := os.ReadFile(p)
	must(t, err)
	s := strings.Replace(string(b), "    - {name: w1, address: 10.0.0.2, role: worker}\n",
		"    - {name: cp2, address: 10.0.0.2, role: control-plane}\n"+
			"    - {name: cp3, address: 10.0.0.3, role: control-plane}\n"+
			"    - {name: w1, address: 10.0.0.4, role: worker}\n"+
			"    - {name: w2, address: 10.0.0.5, role: worker}\n", 1)
	must(t, os.WriteFile(p, []byte(s), 0o644))
	return p, map[string]string{"10.0.0.1:22": "cp1", "10.0.0.2:22": "cp2", "10.0.0.3:22": "cp3", "10.0.0.4:22": "w1", "10.0.0.5:22": "w2"}
}

// runLogs lists the hosts with a log file in the state directory's one run log directory.
func runLogs(t *testing.T, stateDir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(stateDir, "logs", "*", "*.log"))
	must(t, err)
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".log"))
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// TestLogsForEveryHostOfTheRun: every host a command dials, the hosts it changes and those it only
// reads from, has its log file in the run's log directory, and no other host of the spec has one.
// (join node's control plane and reset --host's other control planes were added after the logs were
// opened, so they had no log, while every host of the spec got an empty one.)
func TestLogsForEveryHostOfTheRun(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"join", "node", "--host", "w2"}, "cp1 w2"},
		{[]string{"reset", "--yes", "--host", "w2"}, "cp1 cp2 cp3 w2"},
		{[]string{"reset", "--yes", "--host", "cp2"}, "cp1 cp2 cp3"},
		{[]string{"plan"}, "cp1 cp2 cp3 w1 w2"},
	} {
		dir := t.TempDir()
		spec, names := fiveHostSpec(t, dir)
		stateDir := filepath.Join(dir, "state")
		var mu sync.Mutex
		dialed := map[string]bool{}
		var out, errb bytes.Buffer
		e := environment{Getenv: func(k string) string {
			if k == "INSTALLER_STATE_DIR" {
				return stateDir
			}
			return ""
		}, Home: dir, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			mu.Lock()
			dialed[names[address]] = true
			mu.Unlock()
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}}
		code := run(context.Background(), append(c.args, "-f", spec), streams{In: strings.NewReader(""), Out: &out, Err: &errb}, e)
		if code != 4 {
			t.Fatalf("%v: exit %d, want 4 (every host refuses)\n%s", c.args, code, errb.String())
		}
		var got []string
		for n := range dialed {
			got = append(got, n)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != c.want {
			t.Errorf("%v: dialed %v, want %s", c.args, got, c.want)
		}
		if logs := runLogs(t, stateDir); logs != c.want {
			t.Errorf("%v: host logs for %q, want %q (the hosts the run dials)", c.args, logs, c.want)
		}
	}
}

// TestSessionLogsReadOnlyHosts: in a session, a host the run only reads from logs its commands to
// its own file exactly as a target does.
func TestSessionLogsReadOnlyHosts(t *testing.T) {
	dir := t.TempDir()
	spec, _ := fiveHostSpec(t, dir)
	stateDir := filepath.Join(dir, "state")
	a := &app{
		streams: streams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard},
		env: environment{Getenv: func(string) string { return "" }, Home: dir,
			Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
				t.Fatalf("dialed %s", address)
				return nil, nil
			}},
		global: globalOptions{File: spec, StateDir: stateDir, Concurrency: 4, LogFormat: "text"},
		log:    slog.New(slog.DiscardHandler),
	}
	ls, err := a.loadSpecForHosts()
	must(t, err)
	ctx := context.Background()
	s, err := a.startSession(ctx, ls, "join node", []string{"w2"}, []string{"cp1"}, false, false)
	must(t, err)
	for _, h := range s.Run.All() {
		f := sshtest.NewFake(h.Name())
		f.On(sshtest.Any()).Reply("ok\n")
		h.SetConnection(f)
		if _, err := h.Query(ctx, ssh.Cmd{Args: []string{"echo", h.Name()}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if logs := runLogs(t, stateDir); logs != "cp1 w2" {
		t.Errorf("host logs for %q, want cp1 and w2", logs)
	}
	for _, n := range []string{"cp1", "w2"} {
		b, err := os.ReadFile(filepath.Join(s.LogDir, n+".log"))
		must(t, err)
		if !strings.Contains(string(b), "query echo "+n+"\n") {
			t.Errorf("%s.log does not log the host's command:\n%s", n, b)
		}
	}
}

// TestFailedDryRunClaimsNothing: a dry run that fails never says "every host is converged" (it
// printed that before the error when preflight, or here the connection, stopped it). It prints
// nothing, or what it recorded before the failure under the incomplete-plan line.
func TestFailedDryRunClaimsNothing(t *testing.T) {
	for _, args := range [][]string{{"plan"}, {"create", "cluster", "--dry-run"}, {"upgrade", "--dry-run"}, {"reset", "--dry-run"}} {
		dir := t.TempDir()
		spec := validSpec(t, dir)
		var out, errb bytes.Buffer
		e := environment{Getenv: func(k string) string {
			if k == "INSTALLER_STATE_DIR" {
				return filepath.Join(dir, "state")
			}
			return ""
		}, Home: dir, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}}
		code := run(context.Background(), append(args, "-f", spec), streams{In: strings.NewReader(""), Out: &out, Err: &errb}, e)
		if code != 4 {
			t.Errorf("%v: exit %d, want 4\n%s", args, code, errb.String())
		}
		if o := out.String(); strings.Contains(o, "converged") || o != "" && !strings.HasPrefix(o, incompletePlan+"\n") {
			t.Errorf("%v: stdout after a failed dry run:\n%s\nwant nothing, or the plan under %q", args, o, incompletePlan)
		}
	}
}

// TestPrintPlan: a plan that stopped at an error is printed as incomplete; an empty one is
// "converged" only when the dry run succeeded.
func TestPrintPlan(t *testing.T) {
	planned := []phases.PlannedAction{{Phase: "prepare", Host: "w1", Command: "swapoff -a"}}
	failed := errors.New("phase runtime: host w1: connection lost")
	for _, c := range []struct {
		planned []phases.PlannedAction
		err     error
		want    string
	}{
		{nil, nil, "nothing to do: every host is converged\n"},
		{nil, failed, ""},
		{planned, nil, "host w1:\n  phase prepare:\n    run    swapoff -a\n"},
		{planned, failed, incompletePlan + "\nhost w1:\n  phase prepare:\n    run    swapoff -a\n"},
	} {
		var b bytes.Buffer
		printPlan(&b, c.planned, false, c.err)
		if b.String() != c.want {
			t.Errorf("printPlan(%d actions, %v):\n%s\nwant:\n%s", len(c.planned), c.err, b.String(), c.want)
		}
	}

	// A secret file shows no hash of its content (security review, low: a short VRRP password in a
	// known template could be recovered from it); others show theirs.
	sum := strings.Repeat("ab", 32)
	files := []phases.PlannedAction{
		{Phase: "ha-endpoint", Host: "cp1", File: &phases.PlannedFile{Path: "/etc/keepalived/keepalived.conf", Mode: 0o600, SHA256: sum, Sensitive: true}},
		{Phase: "ha-endpoint", Host: "cp1", File: &phases.PlannedFile{Path: "/etc/haproxy/haproxy.cfg", Mode: 0o644, SHA256: sum}},
	}
	var b bytes.Buffer
	printPlan(&b, files, false, nil)
	want := "host cp1:\n  phase ha-endpoint:\n    upload /etc/keepalived/keepalived.conf mode 0600 (secret, shown masked)\n" +
		"    upload /etc/haproxy/haproxy.cfg mode 0644 sha256 abababababababab\n"
	if b.String() != want {
		t.Errorf("plan of files:\n%s\nwant:\n%s", b.String(), want)
	}

	// -v shows the masked content; the placeholder token is <redacted> there too.
	kubeadmFile := []phases.PlannedAction{{Phase: "init", Host: "cp1", File: &phases.PlannedFile{Path: "/etc/kubernetes/installer/kubeadm.yaml", Mode: 0o600,
		SHA256: sum, Sensitive: true, Display: []byte("bootstrapTokens:\n- token: abcdef.0123456789abcdef\n")}}}
	b.Reset()
	printPlan(&b, kubeadmFile, true, nil)
	if strings.Contains(b.String(), "abcdef.0123456789abcdef") || !strings.Contains(b.String(), "| - token: <redacted>") {
		t.Errorf("verbose plan of kubeadm.yaml:\n%s", b.String())
	}
}
