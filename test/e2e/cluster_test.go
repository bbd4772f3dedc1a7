//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/lab/hosts"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// binaries are the real lab and installer binaries the scenarios drive, built once per test run.
var binaries struct {
	once           sync.Once
	lab, installer string
	err            error
}

func buildBinaries(t *testing.T) (lab, installer string) {
	t.Helper()
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "installer-e2e-bin-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.lab, binaries.installer = filepath.Join(dir, "lab"), filepath.Join(dir, "installer")
		for pkg, out := range map[string]string{"../../lab/cmd/lab": binaries.lab, "../../cmd/installer": binaries.installer} {
			if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("build %s: %v\n%s", pkg, err, b)
				return
			}
		}
	})
	if binaries.err != nil {
		fatal(t, binaries.err)
	}
	return binaries.lab, binaries.installer
}

// labCluster is a running lab plus the installer pointed at it.
type labCluster struct {
	t         *testing.T
	ctx       context.Context
	Lab       *hosts.Lab
	lab, inst string
	Spec      *v1alpha1.Cluster
	// lastKilledOutput is what the last run killChain killed had written to its standard error.
	lastKilledOutput string
}

// startLab brings up lab hosts with the real `lab up` (mirror included) and registers diagnostics
// on failure and `lab down` at the end.
func startLab(ctx context.Context, t *testing.T, upArgs ...string) *labCluster {
	t.Helper()
	lab, inst := buildBinaries(t)
	l := openTestLab(t)
	c := &labCluster{t: t, ctx: ctx, Lab: l, lab: lab, inst: inst}
	start := time.Now()
	if out, err := c.labCmd(append([]string{"up"}, upArgs...)...); err != nil {
		c.labCmd("down")
		fatalf(t, "lab up: %v\n%s", err, out)
	}
	t.Logf("MEASURE lab up %s: %s", strings.Join(upArgs, " "), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if out, err := c.labCmd("down"); err != nil {
			errorf(t, "lab down: %v\n%s", err, out)
		}
	})
	t.Cleanup(c.diagnoseOnFailure)
	spec, err := v1alpha1.LoadFile(l.SpecFile())
	if err != nil {
		fatal(t, err)
	}
	spec.Default()
	c.Spec = spec
	return c
}

func (c *labCluster) labCmd(args ...string) (string, error) {
	ctx := c.ctx
	if len(args) > 0 && args[0] == "down" {
		// Cleanup runs after the test's context is cancelled; the lab must still come down.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.lab, append(args, "--lab-dir", c.Lab.Dir())...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// installerRun is one run of the installer binary.
type installerRun struct {
	Code     int
	Stdout   string
	Stderr   string
	Wall     time.Duration
	Phases   map[string]time.Duration
	Changes  map[string]int
	Order    []string
	Complete bool
}

var summaryLine = regexp.MustCompile(`^  (\S+)\s+(\S+)\s+(\d+) change\(s\)$`)

// installer runs the installer binary against the lab's spec and state directory.
func (c *labCluster) installer(args ...string) installerRun {
	c.t.Helper()
	return c.installerSpec(c.Lab.SpecFile(), args...)
}

// installerSpec runs the installer binary with a given spec file and the lab's state directory.
func (c *labCluster) installerSpec(spec string, args ...string) installerRun {
	c.t.Helper()
	return c.installerIn(c.Lab.StateDir(), spec, args...)
}

// installerIn runs the installer binary with a given state directory and spec file, and parses the
// per-phase summary it prints.
func (c *labCluster) installerIn(stateDir, spec string, args ...string) installerRun {
	c.t.Helper()
	full := append(args, "-f", spec, "--state-dir", stateDir)
	cmd := exec.CommandContext(c.ctx, c.inst, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := installerRun{Wall: time.Since(start), Stdout: stdout.String(), Stderr: stderr.String(),
		Phases: map[string]time.Duration{}, Changes: map[string]int{}}
	if ee, ok := err.(*exec.ExitError); ok {
		r.Code = ee.ExitCode()
	} else if err != nil {
		fatalf(c.t, "run installer: %v", err)
	}
	for _, l := range strings.Split(r.Stderr, "\n") {
		if m := summaryLine.FindStringSubmatch(l); m != nil {
			d, _ := time.ParseDuration(m[2])
			n, _ := strconv.Atoi(m[3])
			r.Phases[m[1]], r.Changes[m[1]] = d, n
			r.Order = append(r.Order, m[1])
		}
	}
	where := ""
	if stateDir != c.Lab.StateDir() {
		where = " --state-dir " + stateDir
	}
	c.t.Logf("installer %s%s: exit %d in %s", strings.Join(args, " "), where, r.Code, r.Wall.Round(time.Millisecond))
	return r
}

// TotalChanges sums the changes of every phase.
func (r installerRun) TotalChanges() int {
	n := 0
	for _, c := range r.Changes {
		n += c
	}
	return n
}

// kube returns a client for the cluster through the admin kubeconfig the installer wrote.
func (c *labCluster) kube() kubernetes.Interface {
	c.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(c.Lab.StateDir(), "admin.conf"))
	if err != nil {
		fatalf(c.t, "admin kubeconfig: %v", err)
	}
	cfg.Timeout = 30 * time.Second
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fatal(c.t, err)
	}
	return k
}

// ssh runs a script on a host as the lab user (sudo inside as needed).
func (c *labCluster) ssh(host, script string) string {
	c.t.Helper()
	return mustSSH(c.ctx, c.t, c.Lab, host, script)
}

// managedState records, per host, the checksum of every file the installer manages and the main PID
// and restart count of kubelet and containerd: a converged re-run must change none of it.
func (c *labCluster) managedState(names ...string) map[string]string {
	c.t.Helper()
	const script = `sudo sh -c '
for f in /etc/containerd/config.toml /etc/containerd/certs.d/*/hosts.toml /etc/sysctl.d/99-kubernetes.conf \
  /etc/modules-load.d/kubernetes.conf /etc/crictl.yaml /etc/default/kubelet /etc/systemd/system/kubelet.service \
  /etc/systemd/system/kubelet.service.d/10-kubeadm.conf /etc/kubernetes/installer/kubeadm.yaml \
  /etc/kubernetes/pki/*.crt /etc/kubernetes/pki/*.key /etc/kubernetes/pki/sa.* /etc/kubernetes/pki/etcd/ca.* \
  /etc/kubernetes/manifests/*.yaml /etc/keepalived/* /etc/haproxy/* \
  /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl /opt/cni/bin/*; do
  [ -f "$f" ] && sha256sum "$f"
done
for u in kubelet containerd; do echo "$u $(systemctl show -p MainPID -p NRestarts --value $u | tr "\n" " ")"; done'`
	out := map[string]string{}
	for _, h := range names {
		out[h] = c.ssh(h, script)
	}
	return out
}

// diagnoseOnFailure prints short journal tails of kubelet and containerd on every host and the
// installer's host logs of the last run; short, so the failure above them stays in view of a
// runner that keeps only the end of the output.
func (c *labCluster) diagnoseOnFailure() {
	if !c.t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, h := range c.Spec.Spec.Hosts {
		out, _ := sshRun(ctx, c.Lab, h.Name, "sudo journalctl -u kubelet -u containerd -n 12 --no-pager")
		c.t.Logf("journal of %s:\n%s", h.Name, out)
	}
	runs, _ := filepath.Glob(filepath.Join(c.Lab.StateDir(), "logs", "*"))
	sort.Strings(runs)
	if len(runs) == 0 {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(runs[len(runs)-1], "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 1200 {
			b = b[len(b)-1200:]
		}
		c.t.Logf("installer log %s (tail):\n%s", l, b)
	}
}
