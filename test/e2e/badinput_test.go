//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// specVariant writes a copy of the lab spec changed by edit, beside the original.
func (c *labCluster) specVariant(name string, edit func(*v1alpha1.Cluster)) string {
	c.t.Helper()
	raw, err := v1alpha1.LoadFile(c.Lab.SpecFile())
	if err != nil {
		fatal(c.t, err)
	}
	edit(raw)
	out, err := yaml.Marshal(raw)
	if err != nil {
		fatal(c.t, err)
	}
	p := filepath.Join(c.Lab.Dir(), name)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		fatal(c.t, err)
	}
	return p
}

// untouched asserts the installer changed nothing on the hosts yet.
func (c *labCluster) untouched(hosts ...string) {
	c.t.Helper()
	for _, h := range hosts {
		out := c.ssh(h, "ls /etc/containerd/config.toml /usr/bin/kubeadm /etc/kubernetes/pki 2>/dev/null | wc -l")
		if strings.TrimSpace(out) != "0" {
			errorf(c.t, "host %s was changed by a failed run", h)
		}
	}
}

// oneLineErrors checks that a failed run explains itself per host on one line each, without a Go
// stack trace, and names the fix.
func oneLineErrors(t *testing.T, r installerRun, want ...string) {
	t.Helper()
	if strings.Contains(r.Stderr, "goroutine ") || strings.Contains(r.Stderr, "panic:") {
		errorf(t, "stack trace in the output:\n%s", r.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			errorf(t, "output lacks %q:\n%s", w, r.Stderr)
		}
	}
	for _, l := range strings.Split(r.Stderr, "\n") {
		if strings.HasPrefix(l, "error: ") || strings.HasPrefix(l, "host ") {
			t.Logf("seen: %s", l)
		}
	}
}

// TestScenario4BadInput: a wrong SSH key, an unknown host key under the strict policy, a host that
// is down and a host whose traffic is cut in the middle of a run each fail with a one-line error and
// exit code 4, and after the cause is fixed a re-run completes the cluster. Then, on fresh hosts
// again (reset), a worker loses power while kubeadm join runs on it; once it has booted, a re-run
// finishes the cluster.
func TestScenario4BadInput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "3")
	all := []string{"cp1", "w1", "w2"}

	// A key the hosts do not accept.
	wrongKey := filepath.Join(c.Lab.Dir(), "wrong_key")
	os.Remove(wrongKey)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", wrongKey).CombinedOutput(); err != nil {
		fatalf(t, "ssh-keygen: %v %s", err, out)
	}
	r := c.installerSpec(c.specVariant("wrong-key.yaml", func(s *v1alpha1.Cluster) { s.Spec.SSH.KeyFile = "wrong_key" }), "create", "cluster")
	if r.Code != 4 {
		errorf(t, "wrong key: exit %d, want 4\n%s", r.Code, r.Stderr)
	}
	oneLineErrors(t, r, "host cp1:", "host w1:", "host w2:", "wrong_key")
	c.untouched(all...)

	// No entry for the hosts in known_hosts under the strict policy.
	empty := filepath.Join(c.Lab.Dir(), "empty_known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		fatal(t, err)
	}
	r = c.installerSpec(c.specVariant("unknown-hostkey.yaml", func(s *v1alpha1.Cluster) { s.Spec.SSH.KnownHostsFile = "empty_known_hosts" }), "create", "cluster")
	if r.Code != 4 {
		errorf(t, "unknown host key: exit %d, want 4\n%s", r.Code, r.Stderr)
	}
	oneLineErrors(t, r, "host cp1:", "SHA256:", "known_hosts")
	c.untouched(all...)

	// A host that is down: the run stops at connect; nothing changes anywhere.
	if err := c.Lab.Stop(ctx, "w2"); err != nil {
		fatal(t, err)
	}
	r = c.installer("create", "cluster")
	if r.Code != 4 {
		errorf(t, "host down: exit %d, want 4\n%s", r.Code, r.Stderr)
	}
	oneLineErrors(t, r, "host w2: cannot reach 172.30.0.13:22")
	c.untouched("cp1", "w1")
	if err := c.Lab.Start(ctx, "w2"); err != nil {
		fatal(t, err)
	}

	// Traffic cut while the runtime phase runs: the run fails naming the host, the other hosts
	// finish that phase, and after healing a re-run completes the cluster.
	cmd := exec.CommandContext(ctx, c.inst, "create", "cluster", "-f", c.Lab.SpecFile(), "--state-dir", c.Lab.StateDir())
	var mu sync.Mutex
	var stderr bytes.Buffer
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return stderr.Write(p) })
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fatal(t, err)
	}
	for {
		mu.Lock()
		started := strings.Contains(stderr.String(), "\nprepare ")
		mu.Unlock()
		if started {
			break
		}
		if time.Since(start) > 5*time.Minute {
			fatal(t, "the run never reached the runtime phase")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.Lab.Cut(ctx, "w1"); err != nil {
		fatal(t, err)
	}
	cutAt := time.Now()
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	mu.Lock()
	out := stderr.String()
	mu.Unlock()
	t.Logf("MEASURE cut detected after %s", time.Since(cutAt).Round(time.Millisecond))
	if code != 4 || !strings.Contains(out, "phase runtime: host w1:") {
		errorf(t, "cut mid-run: exit %d, want 4 naming w1 in phase runtime\n%s", code, out)
	}
	oneLineErrors(t, installerRun{Stderr: out})
	if err := c.Lab.Heal(ctx, "w1"); err != nil {
		fatal(t, err)
	}
	final := c.installer("create", "cluster")
	if final.Code != 0 {
		fatalf(t, "re-run after heal: exit %d\n%s", final.Code, final.Stderr)
	}
	checkNodes(ctx, t, c, c.kube())

	// Power loss of a worker while kubeadm join runs on it: the run fails naming it; once it has
	// booted again, a re-run finishes its join.
	if r := c.installer("reset", "--yes"); r.Code != 0 {
		fatalf(t, "reset --yes: exit %d\n%s", r.Code, r.Stderr)
	}
	run := c.startInstaller("create", "cluster")
	joining := running("w2", "kubeadm join")
	for !joining(c, "") {
		select {
		case <-run.exited:
			fatalf(t, "the run ended (%v) before kubeadm join ran on w2:\n%s", run.err, run.Stderr())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := c.Lab.Kill(ctx, "w2"); err != nil {
		fatal(t, err)
	}
	lostAt := time.Now()
	<-run.exited
	out = run.Stderr()
	t.Logf("MEASURE power loss of w2 during kubeadm join: the run ended %s later: %s", time.Since(lostAt).Round(100*time.Millisecond), lastLine(out))
	if !strings.Contains(lastLine(out), "w2") {
		errorf(t, "power loss of w2 mid-join: the error does not name w2:\n%s", out)
	}
	oneLineErrors(t, installerRun{Stderr: out})
	if err := c.Lab.Start(ctx, "w2"); err != nil {
		fatal(t, err)
	}
	after := c.installer("create", "cluster")
	if after.Code != 0 {
		fatalf(t, "create after w2 booted again: exit %d\n%s", after.Code, after.Stderr)
	}
	t.Logf("MEASURE create after w2 lost power mid-join and booted again: %s", after.Wall.Round(100*time.Millisecond))
	checkNodes(ctx, t, c, c.kube())
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
