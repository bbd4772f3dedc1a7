//go:build e2e

// Scenario 8 (issue 17): hostile re-runs. The installer must never destroy what it cannot prove is
// its own (DESIGN.md §3): a run that cannot prove a step safe stops with exit code 6 and the phrase
// "refusing to go on; nothing was changed", and changes nothing on any host. Against a running
// cluster (1 control plane + 2 workers; the HA variant: 3 control planes + 1 worker behind
// keepalived-haproxy, cases a, i and c only):
//
//	(a) create cluster with an empty, new state directory: refused, naming cp1, "has no PKI" and the
//	    cluster CA's fingerprint; the state directory gets no pki/ and no secrets/.
//	(b) create cluster with another cluster's state directory (a freshly generated PKI): refused,
//	    "belongs to another cluster", naming both CA fingerprints; that PKI is left as it was.
//	(c) create cluster while kube-apiserver.yaml is moved away on every control plane: refused
//	    within about 2 minutes, "does not answer"; with the manifest back a re-run changes nothing.
//	(d) the same with etcd.yaml moved away.
//	(e) join node --host w1 while w1 is a node: exit 0, "is a node of this cluster already; left
//	    untouched", no change on any host.
//	(f) upgrade while kube-apiserver.yaml is moved away: exit 1 or 6, no change on any host.
//	(g) render and kubeconfig with an empty state directory: render says it used a throw-away PKI
//	    and keeps none, kubeconfig fetches the admin kubeconfig (and no PKI); a create cluster with
//	    that state directory is refused as in (a).
//	(h) an interrupted init: after a whole reset, create cluster is killed (and kubeadm init with it)
//	    while kubeadm init runs; the marker /var/lib/installer/kubeadm-init.started is there, and a
//	    re-run resets the unfinished init ("did not finish"), builds the cluster and then converges.
//	(i) state recover into an empty state directory: the lab's pki/ byte for byte and (HA) its VRRP
//	    password, an admin kubeconfig that lists the nodes; create cluster with it then changes
//	    nothing (0 changes, the hosts' managed files and processes as they were).
//
// After each of (a) to (g) the cluster is untouched: the same API objects (UIDs, resource versions,
// no node cordoned), the same ca.crt and sa.pub on every control plane, the same etcd members, every
// node Ready; and for the refused runs the same managed files, kubeconfigs, etcd data directory and
// kubelet/containerd processes on every host.

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/lab/images"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/state"
)

const (
	// exitRefused: the installer stopped before a step it cannot prove safe; nothing was changed on
	// any host. The number itself (pkg/exitcode.Refused) is the contract scripts rely on, so the
	// test pins it rather than importing the constant.
	exitRefused = 6
	// refusalPhrase is in every refusal message.
	refusalPhrase = "refusing to go on; nothing was changed"
	// refusalWithin bounds a refusal while the API is down: the installer polls the API for up to a
	// minute, connecting and reading facts take seconds; the contract says about 2 minutes, and 30 s
	// more is slack for this 2-core machine.
	refusalWithin = 2*time.Minute + 30*time.Second
	// apiBackWithin: the kubelet sees a manifest put back within ~20 s, but an apiserver that lost
	// etcd may sit in CrashLoopBackOff for up to 5 minutes before its next start.
	apiBackWithin = 6 * time.Minute
	// initMarker is what the installer writes on the first control plane before kubeadm init.
	initMarker = "/var/lib/installer/kubeadm-init.started"
	hostileNS  = "hostile"
)

// TestScenario8HostileReruns runs cases (a) to (h) of the file comment on 1 control plane + 2 workers.
func TestScenario8HostileReruns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "3")
	h := newHostileLab(t, c)

	h.caseEmptyStateDir(t)
	h.caseForeignStateDir(t)
	h.caseAPIDown(t, "(c)", "kube-apiserver.yaml")
	h.caseAPIDown(t, "(d)", "etcd.yaml")
	h.caseJoinExisting(t, "w1")
	h.caseUpgradeAPIDown(t)
	h.caseReadOnlyCommands(t)
	h.caseStateRecover(t)
	h.caseInterruptedInit(t)
}

// TestScenario8HostileRerunsHA runs cases (a), (i) and (c) on 3 control planes + 1 worker behind the
// keepalived-haproxy VIP; (c) moves the apiserver away on all three, so the VIP answers nothing.
func TestScenario8HostileRerunsHA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "4", "--control-planes", "3", "--lb", "keepalived-haproxy")
	h := newHostileLab(t, c)

	h.caseEmptyStateDir(t)
	h.caseStateRecover(t)
	h.caseAPIDown(t, "(c)", "kube-apiserver.yaml")
}

// hostileLab is a running cluster and what every hostile run must leave as it was.
type hostileLab struct {
	*labCluster
	k      kubernetes.Interface
	all    []string     // every host of the spec
	cps    []string     // the control planes, the first (the one kubeadm init ran on) first
	caFP   string       // fingerprint of the cluster CA, read on the first control plane
	before clusterPrint // taken once the workload runs
}

// newHostileLab creates the cluster, runs the test's workload and records the cluster's print.
func newHostileLab(t *testing.T, c *labCluster) *hostileLab {
	t.Helper()
	r := c.installer("create", "cluster")
	if r.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", r.Code, r.Stderr)
	}
	reportTimings(t, r)
	h := &hostileLab{labCluster: c, k: c.kube()}
	for _, host := range c.Spec.Spec.Hosts {
		h.all = append(h.all, host.Name)
	}
	for _, host := range c.Spec.Spec.ControlPlanes() {
		h.cps = append(h.cps, host.Name)
	}
	checkNodes(c.ctx, t, c, h.k)
	deployHostile(c.ctx, t, h.k)

	h.caFP = h.hostCAFingerprint(t, h.cps[0])
	// The fingerprint is computed here the way the contract defines it; the lab's own state
	// directory must hold the same CA, or every comparison below compares the wrong things.
	local, err := os.ReadFile(filepath.Join(c.Lab.StateDir(), "pki", "ca.crt"))
	if err != nil {
		fatal(t, err)
	}
	if fp := pemFingerprint(t, local); fp != h.caFP {
		fatalf(t, "the lab state directory's CA is %s, the CA on %s is %s", fp, h.cps[0], h.caFP)
	}
	h.before = h.takePrint(t, h.k)
	t.Logf("cluster CA %s; %d objects recorded; etcd members %s", h.caFP, len(h.before.Objects), h.before.Members)
	return h
}

// (a) An empty, new state directory: the installer cannot tell this cluster from a fresh one by its
// own PKI, so it must refuse instead of generating a new CA (or resetting cp1).
func (h *hostileLab) caseEmptyStateDir(t *testing.T) {
	t.Helper()
	const what = "(a) create cluster with an empty state directory"
	dir := filepath.Join(t.TempDir(), "state")
	before := h.hostStates()
	r := h.installerIn(dir, h.Lab.SpecFile(), "create", "cluster")
	expectRefused(t, what, r, h.cps[0], "has no PKI", h.caFP)
	absentIn(t, what, dir, "pki", "secrets")
	h.hostsUnchanged(t, what, before)
	h.clusterIntact(t, what)
}

// (b) Another cluster's state directory: its CA is not the one on the control planes.
func (h *hostileLab) caseForeignStateDir(t *testing.T) {
	t.Helper()
	const what = "(b) create cluster with another cluster's state directory"
	dir := t.TempDir()
	// The same files, names and modes a real state directory's pki/ has, from the project's own
	// generator and writer: only the keys differ.
	foreign, err := pki.Generate(pki.Options{})
	if err != nil {
		fatal(t, err)
	}
	if err := foreign.Save(filepath.Join(dir, "pki")); err != nil {
		fatal(t, err)
	}
	foreignFP := certFingerprint(foreign.Cluster.Cert.Raw)
	if foreignFP == h.caFP {
		fatalf(t, "the generated CA has the cluster CA's fingerprint %s", foreignFP)
	}
	pkiBefore := fileSums(t, filepath.Join(dir, "pki"))
	before := h.hostStates()
	r := h.installerIn(dir, h.Lab.SpecFile(), "create", "cluster")
	expectRefused(t, what, r, "belongs to another cluster", h.caFP, foreignFP)
	diffMaps(t, what+": foreign PKI file", pkiBefore, fileSums(t, filepath.Join(dir, "pki")))
	h.hostsUnchanged(t, what, before)
	h.clusterIntact(t, what)
}

// (c), (d) A control-plane static pod moved away on every control plane: the API does not answer,
// which proves nothing about the cluster, so the run must stop rather than re-initialise. Once the
// manifest is back, a re-run finds nothing to do.
func (h *hostileLab) caseAPIDown(t *testing.T, label, manifest string) {
	t.Helper()
	what := label + " create cluster with " + manifest + " moved away"
	h.withManifestAway(t, manifest, func() {
		before := h.hostStates()
		r := h.installer("create", "cluster")
		expectRefused(t, what, r, "does not answer")
		if r.Wall > refusalWithin {
			errorf(t, "%s: refused after %s, want within %s", what, r.Wall.Round(time.Second), refusalWithin)
		}
		// The moved manifest is missing from both snapshots: the run must not have written it back.
		h.hostsUnchanged(t, what, before)
	})
	h.clusterIntact(t, what)
	h.expectConverged(t, what+", then put back", h.installer("create", "cluster"))
}

// (e) join node for a host that is a node already: nothing to do, and nothing re-touched.
func (h *hostileLab) caseJoinExisting(t *testing.T, host string) {
	t.Helper()
	what := "(e) join node --host " + host + " (a node already)"
	before := h.hostStates()
	r := h.installer("join", "node", "--host", host)
	h.expectConverged(t, what, r)
	for _, want := range []string{host, "is a node of this cluster already; left untouched"} {
		if !strings.Contains(r.Stderr, want) {
			errorf(t, "%s: output lacks %q:\n%s", what, want, r.Stderr)
		}
	}
	h.hostsUnchanged(t, what, before)
	h.clusterIntact(t, what)
}

// (f) upgrade while the API is down: the missing apiserver manifest reads like a control plane not
// at the target, so an upgrade that does not first prove the cluster healthy would run kubeadm.
func (h *hostileLab) caseUpgradeAPIDown(t *testing.T) {
	t.Helper()
	const what = "(f) upgrade with kube-apiserver.yaml moved away"
	h.withManifestAway(t, "kube-apiserver.yaml", func() {
		before := h.hostStates()
		// --wait-timeout bounds each of upgrade's waits for cluster health (default 5 minutes).
		r := h.installer("upgrade", "--wait-timeout", "1m")
		switch r.Code {
		case exitRefused:
			oneLineErrors(t, r, refusalPhrase)
		case 1:
			oneLineErrors(t, r, "error: ")
		default:
			errorf(t, "%s: exit %d, want 1 or %d\n%s", what, r.Code, exitRefused, r.Stderr)
		}
		t.Logf("MEASURE %s: exit %d after %s: %s", what, r.Code, r.Wall.Round(time.Millisecond), lastLine(r.Stderr))
		h.hostsUnchanged(t, what, before)
	})
	h.clusterIntact(t, what)
}

// (g) The read-only commands with an empty state directory leave no PKI behind (a PKI made there
// would later pass for the cluster's own), and the create that follows is still refused.
func (h *hostileLab) caseReadOnlyCommands(t *testing.T) {
	t.Helper()
	const what = "(g) render and kubeconfig with an empty state directory"
	dir := filepath.Join(t.TempDir(), "state")
	out := filepath.Join(t.TempDir(), "out")

	r := h.installerIn(dir, h.Lab.SpecFile(), "render", "-o", out)
	if r.Code != 0 || !strings.Contains(r.Stderr, "throw-away PKI") {
		errorf(t, "%s: render: exit %d, want 0 and a note about the throw-away PKI\n%s", what, r.Code, r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "hosts", h.cps[0], "kubeadm.yaml")); err != nil {
		errorf(t, "%s: render wrote no kubeadm.yaml for %s: %v", what, h.cps[0], err)
	}
	absentIn(t, what+": after render", dir, "pki", "secrets")

	r = h.installerIn(dir, h.Lab.SpecFile(), "kubeconfig")
	if r.Code != 0 {
		errorf(t, "%s: kubeconfig: exit %d\n%s", what, r.Code, r.Stderr)
	}
	h.checkAdminKubeconfig(t, what, []byte(r.Stdout))
	if _, err := os.Stat(state.Dir(dir).AdminConf()); err != nil {
		errorf(t, "%s: kubeconfig left no admin.conf in the state directory: %v", what, err)
	}
	absentIn(t, what+": after kubeconfig", dir, "pki")

	before := h.hostStates()
	r = h.installerIn(dir, h.Lab.SpecFile(), "create", "cluster")
	expectRefused(t, what+", then create cluster", r, h.cps[0], "has no PKI", h.caFP)
	absentIn(t, what+", then create cluster", dir, "pki", "secrets")
	h.hostsUnchanged(t, what, before)
	h.clusterIntact(t, what)
}

// (i) A lost state directory rebuilt from the cluster: the PKI the lab's state directory holds, byte
// for byte, and keepalived's VRRP password; a create cluster with it finds nothing to do.
func (h *hostileLab) caseStateRecover(t *testing.T) {
	t.Helper()
	const what = "(i) state recover into an empty state directory"
	dir := filepath.Join(t.TempDir(), "state")
	before := h.hostStates()
	r := h.installerIn(dir, h.Lab.SpecFile(), "state", "recover")
	if r.Code != 0 {
		errorf(t, "%s: exit %d\n%s\n%s", what, r.Code, r.Stdout, r.Stderr)
		return
	}
	t.Logf("%s: %.1f s\n%s", what, r.Wall.Seconds(), r.Stdout)
	lab := state.Dir(h.Lab.StateDir())
	diffMaps(t, what+": pki/ file", fileSums(t, lab.PKI()), fileSums(t, state.Dir(dir).PKI()))
	if h.Spec.Spec.LoadBalancer.Type == "keepalived-haproxy" {
		want, err := os.ReadFile(lab.Secret("vrrp-password"))
		if err != nil {
			fatal(t, err)
		}
		if got, err := os.ReadFile(state.Dir(dir).Secret("vrrp-password")); err != nil || !bytes.Equal(got, want) {
			errorf(t, "%s: the recovered VRRP password is not the lab's (%v)", what, err)
		}
	}
	h.hostsUnchanged(t, what, before)

	conf, err := os.ReadFile(state.Dir(dir).AdminConf())
	if err != nil {
		fatal(t, err)
	}
	h.checkAdminKubeconfig(t, what, conf)
	cfg, err := clientcmd.RESTConfigFromKubeConfig(conf)
	if err != nil {
		fatal(t, err)
	}
	cfg.Timeout = 30 * time.Second
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fatal(t, err)
	}
	nodes, err := k.CoreV1().Nodes().List(h.ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) != len(h.all) {
		errorf(t, "%s: the recovered admin kubeconfig lists nodes: %v (%d nodes, want %d)", what, err, len(nodes.Items), len(h.all))
	}

	recovered := r
	r = h.installerIn(dir, h.Lab.SpecFile(), "create", "cluster")
	t.Logf("%s, then create cluster: exit %d in %.1f s, %d changes", what, r.Code, r.Wall.Seconds(), r.TotalChanges())
	if r.Code != 0 || r.TotalChanges() != 0 {
		errorf(t, "%s, then create cluster: exit %d, %d changes (%v), want 0 and none\n%s", what, r.Code, r.TotalChanges(), r.Changes, r.Stderr)
	}
	// It read every key of the cluster: none may show in what it printed.
	checkNoSecrets(t, h.labCluster, recovered, r)
	h.hostsUnchanged(t, what+", then create cluster", before)
	h.clusterIntact(t, what)
}

// checkAdminKubeconfig: a kubeconfig whose every cluster trusts exactly the cluster CA.
func (h *hostileLab) checkAdminKubeconfig(t *testing.T, what string, data []byte) {
	t.Helper()
	cfg, err := clientcmd.Load(data)
	if err != nil || len(cfg.Clusters) == 0 {
		errorf(t, "%s: kubeconfig printed no cluster (%v):\n%s", what, err, data)
		return
	}
	for name, cl := range cfg.Clusters {
		if len(cl.CertificateAuthorityData) == 0 {
			errorf(t, "%s: kubeconfig cluster %s carries no CA data", what, name)
			continue
		}
		if fp := pemFingerprint(t, cl.CertificateAuthorityData); fp != h.caFP {
			errorf(t, "%s: kubeconfig cluster %s trusts %s, want the cluster CA %s", what, name, fp, h.caFP)
		}
	}
}

// (h) An init killed half-way: the marker the installer wrote before kubeadm init is its proof that
// the leftovers on the first control plane are its own unfinished work, so the re-run may reset them.
func (h *hostileLab) caseInterruptedInit(t *testing.T) {
	t.Helper()
	cp := h.cps[0]
	r := h.installer("reset", "--yes")
	if r.Code != 0 {
		fatalf(t, "(h) reset --yes (whole cluster): exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("MEASURE (h) reset --yes (whole cluster): %s", r.Wall.Round(time.Millisecond))

	since := h.ssh(cp, "date +%s") // the host's clock: the marker must be newer than this
	run := h.startInstaller("create", "cluster")
	began := time.Now()
	h.waitKubeadmInit(t, run, cp)
	if err := run.cmd.Process.Kill(); err != nil {
		fatal(t, err)
	}
	<-run.exited
	// A killed installer leaves kubeadm running (nothing hangs up its SSH session) or dead; kill it
	// so the init really is unfinished. The bracket keeps pkill from matching sudo's own command line.
	h.ssh(cp, `sudo pkill -9 -f "[k]ubeadm init"; true`)
	waitFor(h.ctx, t, 30*time.Second, "kubeadm init gone from "+cp, func() bool {
		out, err := sshRun(h.ctx, h.Lab, cp, `pgrep -f "[k]ubeadm init" || echo none`)
		return err == nil && out == "none"
	})
	left, _ := sshRun(h.ctx, h.Lab, cp, "sudo ls /etc/kubernetes /etc/kubernetes/manifests /var/lib/etcd 2>&1")
	t.Logf("MEASURE (h) installer and kubeadm init killed %s after create began; %s holds:\n%s\nthe killed run's output (tail):\n%s",
		time.Since(began).Round(time.Millisecond), cp, left, tailString(run.Stderr(), 2000))
	h.checkInitMarker(t, cp, since)

	final := h.installer("create", "cluster")
	if final.Code != 0 {
		fatalf(t, "(h) create cluster after the interrupted init: exit %d\n%s", final.Code, final.Stderr)
	}
	t.Logf("MEASURE (h) create cluster after the interrupted init: %s", final.Wall.Round(time.Millisecond))
	if !strings.Contains(final.Stderr, "did not finish") && !strings.Contains(hostLogOfLastRun(t, h.Lab.StateDir(), cp), "did not finish") {
		errorf(t, "(h) neither the output nor %s's log says the interrupted init did not finish:\n%s", cp, final.Stderr)
	}
	k := h.kube() // the reset removed the old admin kubeconfig; create wrote a new one
	h.waitNodesReady(t, k, "(h)")
	checkNodes(h.ctx, t, h.labCluster, k)
	h.etcdHealthy(t, cp, len(h.cps))
	if fp := h.hostCAFingerprint(t, cp); fp != h.caFP {
		errorf(t, "(h) the rebuilt cluster's CA is %s, want the state directory's %s", fp, h.caFP)
	}
	// A marker left behind by the successful init must not make the next run reset it again.
	again := h.installer("create", "cluster")
	h.expectConverged(t, "(h) create cluster after the recovered init", again)
	if strings.Contains(again.Stderr, "did not finish") {
		errorf(t, "(h) the converged run reports an unfinished init again:\n%s", again.Stderr)
	}
}

// waitKubeadmInit polls a host until kubeadm init runs there and has written admin.conf and the etcd
// manifest; it fails when the run ends first. The bracket keeps pgrep from matching its own shell.
func (h *hostileLab) waitKubeadmInit(t *testing.T, run *backgroundRun, host string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Minute)
	for {
		select {
		case <-run.exited:
			fatalf(t, "(h) the installer ended (%v) before kubeadm init ran on %s:\n%s", run.err, host, run.Stderr())
		default:
		}
		// Deep enough into init that a plain re-run could not just start over: admin.conf and the
		// etcd manifest are written (kubeadm's kubeconfig and etcd phases), the cluster not yet up.
		if out, err := sshRun(h.ctx, h.Lab, host, `pgrep -f "[k]ubeadm init" >/dev/null && sudo test -f /etc/kubernetes/admin.conf && sudo test -f /etc/kubernetes/manifests/etcd.yaml && echo running`); err == nil && out == "running" {
			return
		}
		if time.Now().After(deadline) {
			_ = run.cmd.Process.Kill()
			fatalf(t, "(h) kubeadm init did not start on %s within 15m:\n%s", host, run.Stderr())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkInitMarker: the marker exists and was written by this run (not left by an earlier init).
func (h *hostileLab) checkInitMarker(t *testing.T, host, since string) {
	t.Helper()
	out := h.ssh(host, "sudo stat -c %Y "+initMarker+" 2>/dev/null || echo missing")
	if out == "missing" {
		errorf(t, "(h) %s has no %s after the interrupted init", host, initMarker)
		return
	}
	mtime, err1 := strconv.ParseInt(out, 10, 64)
	start, err2 := strconv.ParseInt(since, 10, 64)
	if err1 != nil || err2 != nil {
		fatalf(t, "(h) marker mtime %q, run start %q: %v %v", out, since, err1, err2)
	}
	if mtime < start {
		errorf(t, "(h) %s on %s is from before the interrupted run (%d < %d)", initMarker, host, mtime, start)
	}
}

// withManifestAway moves a static pod manifest out of /etc/kubernetes/manifests on every control
// plane (the kubelet then stops the pod), waits until the API no longer answers, calls run, puts the
// manifest back and waits until the API answers again.
func (h *hostileLab) withManifestAway(t *testing.T, manifest string, run func()) {
	t.Helper()
	for _, cp := range h.cps {
		h.ssh(cp, fmt.Sprintf("sudo mv /etc/kubernetes/manifests/%s /root/%s", manifest, manifest))
	}
	took := waitAPIDown(h.ctx, t, h.k, 3*time.Minute)
	t.Logf("MEASURE the API stopped answering %s after %s was moved away on %v", took.Round(time.Millisecond), manifest, h.cps)
	run()
	for _, cp := range h.cps {
		h.ssh(cp, fmt.Sprintf("sudo mv /root/%s /etc/kubernetes/manifests/%s", manifest, manifest))
	}
	failed, back := waitAPI(h.ctx, t, h.k, apiBackWithin)
	t.Logf("MEASURE the API answered %s after %s was put back (%d failed requests)", back.Round(time.Millisecond), manifest, failed)
}

// waitAPIDown polls /readyz until three requests in a row fail: the kubelet notices a removed
// manifest within about 20 s, and a single failure could be a blip. It returns how long it took.
func waitAPIDown(ctx context.Context, t *testing.T, k kubernetes.Interface, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	failed := 0
	for time.Since(start) < timeout {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := k.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		cancel()
		failed++
		if err == nil {
			failed = 0
		}
		if failed == 3 {
			return time.Since(start)
		}
		time.Sleep(time.Second)
	}
	fatalf(t, "the API still answered %s after the manifest was moved away", timeout)
	return timeout
}

// expectRefused asserts a refusal: exit code 6, the refusal phrase and every wanted substring, on
// one-line errors without a stack trace.
func expectRefused(t *testing.T, what string, r installerRun, want ...string) {
	t.Helper()
	if r.Code != exitRefused {
		errorf(t, "%s: exit %d, want %d (refused)\n%s", what, r.Code, exitRefused, r.Stderr)
	}
	oneLineErrors(t, r, append([]string{refusalPhrase}, want...)...)
	t.Logf("MEASURE %s: exit %d after %s: %s", what, r.Code, r.Wall.Round(time.Millisecond), lastLine(r.Stderr))
}

// expectConverged asserts a run that succeeded and changed nothing. It requires the per-phase
// summary: without it, zero changes would be no reading at all.
func (h *hostileLab) expectConverged(t *testing.T, what string, r installerRun) {
	t.Helper()
	if r.Code != 0 || r.TotalChanges() != 0 || len(r.Order) == 0 {
		errorf(t, "%s: exit %d, %d change(s) over %d phases (%v); want exit 0 and no change\n%s",
			what, r.Code, r.TotalChanges(), len(r.Order), r.Changes, r.Stderr)
	}
	t.Logf("MEASURE %s: exit %d, %d change(s) in %s", what, r.Code, r.TotalChanges(), r.Wall.Round(time.Millisecond))
}

// resetTargets prints what kubeadm reset removes and managedState does not cover: the kubeconfigs,
// the kubelet's configuration and etcd's data directory (its inode: a reset and a new init make a
// new one, while etcd's own writes inside it would make any listing flaky).
const resetTargets = `sudo sh -c '
for f in /etc/kubernetes/*.conf /var/lib/kubelet/config.yaml /var/lib/kubelet/kubeadm-flags.env; do
  [ -f "$f" ] && sha256sum "$f"
done
[ -d /var/lib/etcd/member ] && stat -c "%n inode %i" /var/lib/etcd/member
true'`

// hostStates records every host's managed files and kubelet/containerd processes (managedState) and
// what a reset would remove.
func (h *hostileLab) hostStates() map[string]string {
	h.t.Helper()
	states := h.managedState(h.all...)
	for _, host := range h.all {
		states[host] += "\n" + h.ssh(host, resetTargets)
	}
	return states
}

// hostsUnchanged compares every host with an earlier hostStates.
func (h *hostileLab) hostsUnchanged(t *testing.T, what string, before map[string]string) {
	t.Helper()
	after := h.hostStates()
	for _, host := range h.all {
		if before[host] != after[host] {
			errorf(t, "%s changed host %s:\nbefore:\n%s\nafter:\n%s", what, host, before[host], after[host])
		}
	}
}

// clusterPrint identifies a cluster: the UIDs of the nodes and namespaces and of the test's objects
// with their resource versions (a wiped etcd or a re-registered node makes new ones), the CA and the
// service-account key on every control plane, and etcd's member IDs.
type clusterPrint struct {
	Objects map[string]string
	PKI     map[string]string
	Members string
}

func (h *hostileLab) takePrint(t *testing.T, k kubernetes.Interface) clusterPrint {
	t.Helper()
	ctx := h.ctx
	p := clusterPrint{Objects: map[string]string{}, PKI: map[string]string{}}
	for _, name := range []string{"kube-system", hostileNS} {
		ns, err := k.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			fatalf(t, "namespace %s: %v", name, err)
		}
		p.Objects["namespace/"+name] = string(ns.UID)
	}
	nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(t, err)
	}
	for _, n := range nodes.Items {
		p.Objects["node/"+n.Name] = fmt.Sprintf("%s unschedulable=%v", n.UID, n.Spec.Unschedulable)
	}
	cms, err := k.CoreV1().ConfigMaps(hostileNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(t, err)
	}
	for _, cm := range cms.Items {
		p.Objects["configmap/"+hostileNS+"/"+cm.Name] = fmt.Sprintf("%s rv %s", cm.UID, cm.ResourceVersion)
	}
	// A Deployment's resource version moves with its status; its generation only with its spec.
	d, err := k.AppsV1().Deployments(hostileNS).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		fatal(t, err)
	}
	p.Objects["deployment/"+hostileNS+"/web"] = fmt.Sprintf("%s generation %d", d.UID, d.Generation)
	for _, cp := range h.cps {
		p.PKI[cp] = h.ssh(cp, "sudo sha256sum "+constants.PKIDir+"/ca.crt "+constants.PKIDir+"/"+pki.SAPubName)
	}
	p.Members = h.etcdMembers(t, h.cps[0])
	return p
}

// clusterIntact waits for the nodes and the workload and compares the cluster's print with the one
// taken before the cases.
func (h *hostileLab) clusterIntact(t *testing.T, what string) {
	t.Helper()
	h.waitNodesReady(t, h.k, what)
	waitFor(h.ctx, t, 3*time.Minute, what+": deployment "+hostileNS+"/web available", func() bool { return hostileWebAvailable(h.ctx, h.k) })
	now := h.takePrint(t, h.k)
	diffMaps(t, what+": object", h.before.Objects, now.Objects)
	diffMaps(t, what+": sha256 of ca.crt and sa.pub on", h.before.PKI, now.PKI)
	if now.Members != h.before.Members {
		errorf(t, "%s: etcd members %s, were %s", what, now.Members, h.before.Members)
	}
	checkNodes(h.ctx, t, h.labCluster, h.k)
	h.etcdHealthy(t, h.cps[0], len(h.cps))
	t.Logf("%s: cluster untouched (%d objects, ca.crt and sa.pub on %d control planes, etcd members %s, %d nodes Ready)",
		what, len(now.Objects), len(h.cps), now.Members, len(h.all))
}

// etcdMembersScript lists etcd's members with etcdctl inside the etcd static pod.
const etcdMembersScript = `sudo sh -c 'c=$(crictl ps -q --name "^etcd$" | head -1); [ -n "$c" ] || exit 3
crictl exec "$c" etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt \
  --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key member list -w json'`

// etcdMembers returns "name=id" of every etcd member, sorted; it retries for 2 minutes because etcd
// may just be coming back.
func (h *hostileLab) etcdMembers(t *testing.T, host string) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := sshRun(h.ctx, h.Lab, host, etcdMembersScript)
		var list struct {
			Members []struct {
				ID   uint64 `json:"ID"`
				Name string `json:"name"`
			} `json:"members"`
		}
		if err == nil {
			if err = json.Unmarshal([]byte(out), &list); err == nil && len(list.Members) == 0 {
				err = fmt.Errorf("no members in %s", out)
			}
		}
		if err == nil {
			ids := make([]string, 0, len(list.Members))
			for _, m := range list.Members {
				ids = append(ids, fmt.Sprintf("%s=%x", m.Name, m.ID))
			}
			sort.Strings(ids)
			return strings.Join(ids, ",")
		}
		if time.Now().After(deadline) {
			fatalf(t, "etcd member list on %s: %v", host, err)
		}
		time.Sleep(3 * time.Second)
	}
}

// waitNodesReady waits until every node is Ready and its kubelet renewed its Lease in the last 40 s.
// The Ready condition alone can be minutes old (an unchanged status is reported every 5 minutes),
// so waitNodeReady's heartbeat test does not fit a steady cluster.
func (h *hostileLab) waitNodesReady(t *testing.T, k kubernetes.Interface, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		why := nodesNotReady(h.ctx, k, h.all)
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			fatalf(t, "%s: nodes not Ready within 3m: %s", what, why)
		}
		time.Sleep(2 * time.Second)
	}
}

// nodesNotReady says why a node is not Ready ("" when all are).
func nodesNotReady(ctx context.Context, k kubernetes.Interface, names []string) string {
	for _, name := range names {
		n, err := k.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		ready := false
		for _, c := range n.Status.Conditions {
			ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
		}
		lease, err := k.CoordinationV1().Leases("kube-node-lease").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		if !ready || lease.Spec.RenewTime == nil || time.Since(lease.Spec.RenewTime.Time) > 40*time.Second {
			return fmt.Sprintf("node %s: Ready=%v, lease renewed at %v", name, ready, lease.Spec.RenewTime)
		}
	}
	return ""
}

// deployHostile creates the objects every case must leave alone: the namespace, two ConfigMaps and
// a Deployment of the lab's labnet image (served by the lab registry, so it works offline).
func deployHostile(ctx context.Context, t *testing.T, k kubernetes.Interface) {
	t.Helper()
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: hostileNS}}, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	for name, data := range map[string]map[string]string{"one": {"owner": "e2e"}, "two": {"note": "hostile re-runs must not lose me"}} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: hostileNS}, Data: data}
		if _, err := k.CoreV1().ConfigMaps(hostileNS).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			fatal(t, err)
		}
	}
	labels := map[string]string{"app": "hostile-web"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: hostileNS}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "web", Image: images.LabnetImage, Args: []string{"serve", ":8080"}}},
		}}}}
	if _, err := k.AppsV1().Deployments(hostileNS).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	waitFor(ctx, t, 3*time.Minute, "deployment "+hostileNS+"/web available", func() bool { return hostileWebAvailable(ctx, k) })
}

func hostileWebAvailable(ctx context.Context, k kubernetes.Interface) bool {
	d, err := k.AppsV1().Deployments(hostileNS).Get(ctx, "web", metav1.GetOptions{})
	return err == nil && d.Status.ObservedGeneration == d.Generation && d.Spec.Replicas != nil &&
		d.Status.AvailableReplicas == *d.Spec.Replicas
}

// backgroundRun is an installer run the test does not wait for, so that it can kill it mid-step.
type backgroundRun struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, set before exited is closed
	mu     sync.Mutex
	stderr bytes.Buffer
}

// startInstaller starts the installer against the lab's spec and state directory.
func (c *labCluster) startInstaller(args ...string) *backgroundRun {
	c.t.Helper()
	return c.startInstallerSpec(c.Lab.SpecFile(), args...)
}

// startInstallerSpec starts the installer against a spec file and the lab's state directory.
func (c *labCluster) startInstallerSpec(spec string, args ...string) *backgroundRun {
	c.t.Helper()
	b := &backgroundRun{exited: make(chan struct{})}
	b.cmd = exec.CommandContext(c.ctx, c.inst, append(args, "-f", spec, "--state-dir", c.Lab.StateDir())...)
	b.cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.stderr.Write(p)
	})
	if err := b.cmd.Start(); err != nil {
		fatal(c.t, err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.exited)
	}()
	return b
}

// Stderr is what the run wrote to its standard error so far.
func (b *backgroundRun) Stderr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stderr.String()
}

// hostCAFingerprint reads the cluster CA on a host and returns its fingerprint.
func (h *hostileLab) hostCAFingerprint(t *testing.T, host string) string {
	t.Helper()
	return pemFingerprint(t, []byte(h.ssh(host, "sudo cat "+constants.PKIDir+"/ca.crt")))
}

// certFingerprint is how refusals name a CA: "sha256:" and the lowercase hex SHA-256 of its DER.
// Computed here independently of the product, so a wrong fingerprint in a message is caught.
func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func pemFingerprint(t *testing.T, data []byte) string {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		fatalf(t, "no PEM certificate in %q", data)
	}
	return certFingerprint(block.Bytes)
}

// absentIn fails for each named entry that exists in dir.
func absentIn(t *testing.T, what, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); !errors.Is(err, fs.ErrNotExist) {
			errorf(t, "%s: the state directory has %s (stat: %v); nothing may be generated there", what, n, err)
		}
	}
}

// fileSums maps every file under dir to its SHA-256 and mode.
func fileSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		sums[rel] = fmt.Sprintf("%x %v", sha256.Sum256(data), info.Mode())
		return nil
	})
	if err != nil {
		fatal(t, err)
	}
	return sums
}

// diffMaps fails for every key whose value differs, is missing or is new.
func diffMaps(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		b, inBefore := before[k]
		a, inAfter := after[k]
		switch {
		case !inAfter:
			errorf(t, "%s %s is gone (was %q)", what, k, b)
		case !inBefore:
			errorf(t, "%s %s is new (%q)", what, k, a)
		case a != b:
			errorf(t, "%s %s: was %q, now %q", what, k, b, a)
		}
	}
}
