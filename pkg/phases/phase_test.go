package phases

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/phases/internal/simhost"
	"installer.dev/installer/pkg/ssh"
)

func testCluster(n int) *v1alpha1.Cluster {
	c := &v1alpha1.Cluster{Metadata: v1alpha1.ObjectMeta{Name: "t"}}
	for i := 0; i < n; i++ {
		role := v1alpha1.RoleWorker
		if i == 0 {
			role = v1alpha1.RoleControlPlane
		}
		c.Spec.Hosts = append(c.Spec.Hosts, v1alpha1.Host{Name: fmt.Sprintf("h%d", i), Address: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Role: role})
	}
	c.Default()
	return c
}

func TestForEachHostBoundsConcurrencyAndJoinsErrors(t *testing.T) {
	r, err := NewRun(testCluster(20), nil)
	if err != nil {
		t.Fatal(err)
	}
	var running, peak atomic.Int32
	err = ForEachHost(context.Background(), r.All(), 4, func(ctx context.Context, h *Host) error {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		running.Add(-1)
		if h.Name() == "h3" || h.Name() == "h17" {
			return errors.New("boom")
		}
		return nil
	})
	if peak.Load() != 4 {
		t.Errorf("peak concurrency %d, want exactly the bound 4", peak.Load())
	}
	if err == nil || err.Error() != "host h3: boom\nhost h17: boom" {
		t.Errorf("joined error = %q", err)
	}
}

func TestForEachHostStopsStartingOnCancel(t *testing.T) {
	r, _ := NewRun(testCluster(10), nil)
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int32
	err := ForEachHost(ctx, r.All(), 1, func(ctx context.Context, h *Host) error {
		if started.Add(1) == 2 {
			cancel()
		}
		return nil
	})
	if started.Load() != 2 {
		t.Errorf("started %d hosts after cancelling at the 2nd, want 2", started.Load())
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "host h2: not started") {
		t.Errorf("err = %v", err)
	}
}

type fakePhase struct {
	name   string
	skip   string
	err    error
	ran    *[]string
	action func(ctx context.Context, r *Run) error
}

func (p fakePhase) Name() string { return p.name }
func (p fakePhase) Run(ctx context.Context, r *Run) error {
	*p.ran = append(*p.ran, p.name)
	if p.action != nil {
		return p.action(ctx, r)
	}
	return p.err
}

type skipPhase struct{ fakePhase }

func (p skipPhase) ShouldRun(*Run) (bool, string) { return p.skip == "", p.skip }

func TestExecute(t *testing.T) {
	r, _ := NewRun(testCluster(1), nil)
	var ran []string
	var out bytes.Buffer
	r.Progress = NewLineProgress(&out, false)
	list := []Phase{
		fakePhase{name: "a", ran: &ran},
		skipPhase{fakePhase{name: "b", skip: "already initialised", ran: &ran}},
		fakePhase{name: "c", err: errors.New("kubeadm failed"), ran: &ran},
		fakePhase{name: "d", ran: &ran},
	}
	timings, err := Execute(context.Background(), r, list)
	if strings.Join(ran, ",") != "a,c" {
		t.Errorf("ran %v, want a,c", ran)
	}
	if err == nil || err.Error() != "phase c: kubeadm failed" || exitcode.Of(err) != exitcode.Failure {
		t.Errorf("err = %v", err)
	}
	if len(timings) != 3 || timings[1].Skipped != "already initialised" {
		t.Errorf("timings = %+v", timings)
	}
	if !strings.Contains(out.String(), "b                            skipped: already initialised\n") || !strings.Contains(out.String(), "c                            FAILED after") {
		t.Errorf("progress:\n%s", out.String())
	}
}

func TestExecuteInterrupted(t *testing.T) {
	r, _ := NewRun(testCluster(1), nil)
	ctx, cancel := context.WithCancel(context.Background())
	var ran []string
	_, err := Execute(ctx, r, []Phase{
		fakePhase{name: "a", ran: &ran, action: func(context.Context, *Run) error { cancel(); return nil }},
		fakePhase{name: "b", ran: &ran},
	})
	if len(ran) != 1 || exitcode.Of(err) != exitcode.Interrupted || !strings.Contains(err.Error(), "interrupted before phase b") {
		t.Errorf("ran %v, err %v (code %d)", ran, err, exitcode.Of(err))
	}
}

// TestDryRunChangesNothing: Exec and Upload in a dry run record what they would do and touch nothing;
// the same calls in a real run change the fake host and count changes; a second real run changes
// nothing.
func TestDryRunChangesNothing(t *testing.T) {
	files := []manifests.File{
		{Path: "/etc/a.conf", Mode: 0o644, Content: []byte("a\n")},
		{Path: "/etc/secret", Mode: 0o644, Content: []byte("token=s3cret\n"), Sensitive: true, Masked: []byte("token=<redacted>\n")},
	}
	fake := simhost.New("h0", "10.0.0.1")
	fake.SetFile("/etc/a.conf", []byte("a\n"), 0o644, "root:root")

	step := func(ctx context.Context, r *Run) error {
		return ForEachHost(ctx, r.All(), 2, func(ctx context.Context, h *Host) error {
			n, err := h.UploadAll(ctx, files)
			if err != nil {
				return err
			}
			if n > 0 {
				_, err = h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "restart", "thing"}})
			}
			return err
		})
	}
	run := func(dry bool) *Run {
		r, _ := NewRun(testCluster(1), nil)
		r.DryRun = dry
		r.Hosts["h0"].SetConnection(fake)
		var ran []string
		if _, err := Execute(context.Background(), r, []Phase{fakePhase{name: "config", ran: &ran, action: step}}); err != nil {
			t.Fatal(err)
		}
		return r
	}

	dry := run(true)
	for _, c := range fake.Calls() {
		if c.Op == "write" || (c.Op == "run" && c.Cmd.Args[0] != "sh") {
			t.Fatalf("dry run changed the host: %+v", c)
		}
	}
	planned := dry.Planned()
	if len(planned) != 2 || planned[0].File == nil || planned[0].File.Path != "/etc/secret" || planned[0].File.Mode != 0o600 ||
		string(planned[0].File.Display) != "token=<redacted>\n" || planned[1].Command != "systemctl restart thing" || planned[1].Phase != "config" {
		t.Fatalf("planned = %+v", planned)
	}
	if dry.Changes()["config"] != 2 {
		t.Errorf("dry-run changes = %v", dry.Changes())
	}

	real := run(false)
	if real.Changes()["config"] != 2 {
		t.Errorf("first real run changes = %v, want 2 (the secret and the restart)", real.Changes())
	}
	if f, _ := fake.File("/etc/secret"); f.Mode != 0o600 || string(f.Content) != "token=s3cret\n" {
		t.Errorf("secret written as %+v", f)
	}
	again := run(false)
	if again.Changes()["config"] != 0 {
		t.Errorf("converged re-run changed %v", again.Changes())
	}
}

var update = flag.Bool("update", false, "rewrite golden files")

func TestExecuteClassifiesLostHosts(t *testing.T) {
	r, _ := NewRun(testCluster(1), nil)
	var ran []string
	lost := &ssh.ConnectionLostError{Host: "h0", Err: errors.New("EOF")}
	step := func(ctx context.Context, r *Run) error {
		return ForEachHost(ctx, r.All(), 1, func(context.Context, *Host) error { return fmt.Errorf("install containerd: %w", lost) })
	}
	_, err := Execute(context.Background(), r, []Phase{fakePhase{name: "runtime", ran: &ran, action: step}})
	if exitcode.Of(err) != exitcode.Unreachable || err.Error() != "phase runtime: host h0: install containerd: connection lost: EOF" {
		t.Errorf("err = %v (code %d)", err, exitcode.Of(err))
	}
}

// TestHostErrNamesTheHostOnce: a step's error that wraps an SSH error naming the same host says the
// host once, and still unwraps to the SSH error (Execute's exit code 4 depends on it).
func TestHostErrNamesTheHostOnce(t *testing.T) {
	lost := &ssh.ConnectionLostError{Host: "cp2", Err: errors.New("EOF")}
	err := hostErr("cp2", fmt.Errorf("kubeadm upgrade node: %w", lost))
	if got := err.Error(); got != "host cp2: kubeadm upgrade node: connection lost: EOF" {
		t.Errorf("message %q", got)
	}
	var target *ssh.ConnectionLostError
	if !errors.As(err, &target) || !ssh.IsHostAccess(err) {
		t.Errorf("does not unwrap to the SSH error")
	}
	if got := hostErr("cp1", fmt.Errorf("wait for %w", hostErr("cp2", errors.New("boom")))).Error(); got != "host cp1: wait for host cp2: boom" {
		t.Errorf("another host's name was dropped: %q", got)
	}
}
