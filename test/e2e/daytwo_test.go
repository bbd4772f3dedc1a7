//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/pkg/constants"
)

// Issue 22's day-2 operations against a real cluster: certificates renewed, etcd restored.

// TestScenario14DayTwoHA: 3 control planes behind the keepalived-haproxy VIP and a worker.
//   - Certificates: kubeadm re-issues every control-plane certificate valid for 10 days;
//     `certs check` reports them (exit 1); `certs renew` renews them one control plane at a time
//     while requests go through the VIP (two loops) and to a Service from a pod (failures counted;
//     the goal is none); then `certs check` passes and every apiserver and etcd serves a
//     certificate valid for a year (TLS handshake from outside).
//   - etcd: a namespace with ConfigMaps is snapshotted and deleted; a restore is killed once the
//     control planes stopped; a restore of another snapshot is then refused; the same snapshot's
//     restore finishes the first and the namespace is back, every node Ready, etcd healthy with 3
//     members. Then etcd's data is deleted on every control plane at once, and a restore from the
//     same snapshot brings the cluster back again.
func TestScenario14DayTwoHA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 70*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "4", "--control-planes", "3", "--lb", "keepalived-haproxy")
	create := c.installer("create", "cluster")
	if create.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", create.Code, create.Stderr)
	}
	k := c.kube()
	checkNodeCountVersions(ctx, t, k, 4, c.Spec.Spec.KubernetesVersion)
	deployWorkloadOn(ctx, t, k, true)
	cps := []string{"cp1", "cp2", "cp3"}

	renew := renewExpiringCerts(ctx, t, c, k, cps, true)
	checkNoSecrets(t, c, create, renew)

	restoreScenario(ctx, t, c, k, cps, true)
}

// shortenCerts has kubeadm re-issue every certificate and kubeconfig of each control plane valid for
// 10 days (certificateValidityPeriod): what a cluster looks like 355 days after it was made. The
// running processes keep the old ones until they restart.
func shortenCerts(t *testing.T, c *labCluster, cps []string) {
	t.Helper()
	cfg := fmt.Sprintf("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: %s\ncertificateValidityPeriod: 240h\n", c.Spec.Spec.KubernetesVersion)
	// base64 travels as one plain shell word.
	b64 := base64.StdEncoding.EncodeToString([]byte(cfg))
	for _, cp := range cps {
		script := "echo " + b64 + " | base64 -d > /tmp/short-certs.yaml && sudo kubeadm certs renew all --config /tmp/short-certs.yaml"
		if out, err := sshRun(c.ctx, c.Lab, cp, script); err != nil {
			fatalf(t, "%s: kubeadm certs renew with a 10-day validity: %v\n%s", cp, err, out)
		}
	}
}

// certLine is one line of `certs check -o json`.
type certLine struct {
	Host, Path, Subject, CA, NotAfter, Status string
	DaysLeft                                  int
}

func certsCheckJSON(t *testing.T, c *labCluster) (installerRun, []certLine) {
	t.Helper()
	r := c.installer("certs", "check", "-o", "json")
	var lines []certLine
	if err := json.Unmarshal([]byte(r.Stdout), &lines); err != nil {
		errorf(t, "certs check -o json: %v\n%s\n%s", err, r.Stdout, r.Stderr)
	}
	return r, lines
}

// renewExpiringCerts makes the control planes' certificates expire in 10 days, checks that certs
// check reports them, renews them (with request loops through the VIP when ha) and checks the
// result on the hosts and on the wire. It returns the renew run.
func renewExpiringCerts(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface, cps []string, ha bool) installerRun {
	t.Helper()
	shortenCerts(t, c, cps)
	r, lines := certsCheckJSON(t, c)
	expiring := map[string]bool{}
	for _, l := range lines {
		if strings.HasSuffix(l.Path, "/apiserver.crt") && l.Status == "expiring" && l.DaysLeft <= 10 {
			expiring[l.Host] = true
		}
	}
	if r.Code != 1 || len(expiring) != len(cps) {
		errorf(t, "certs check with 10-day certificates: exit %d, apiserver.crt expiring on %v; want exit 1 and all of %v\n%s", r.Code, expiring, cps, r.Stderr)
	}

	renew := underLoad(ctx, t, c, k, "certs renew", ha, func() installerRun { return c.installer("certs", "renew") })
	if renew.Code != 0 {
		fatalf(t, "certs renew: exit %d\n%s", renew.Code, renew.Stderr)
	}
	t.Logf("MEASURE certs renew of %d control plane(s): %s\n%s", len(cps), renew.Wall.Round(time.Second), renew.Stdout)

	r, lines = certsCheckJSON(t, c)
	if r.Code != 0 {
		errorf(t, "certs check after certs renew: exit %d\n%s", r.Code, r.Stderr)
	}
	for _, l := range lines {
		if l.Host != "" && strings.HasPrefix(l.Path, constants.KubernetesDir) && l.DaysLeft < 300 {
			errorf(t, "after certs renew %s %s has %d days left", l.Host, l.Path, l.DaysLeft)
		}
	}
	// What clients see: each apiserver's and etcd's certificate, from this machine.
	for _, cp := range cps {
		// etcd listens on the node's address (the lab's second network), not the SSH address.
		node, err := k.CoreV1().Nodes().Get(ctx, cp, metav1.GetOptions{})
		if err != nil {
			fatal(t, err)
		}
		ip := ""
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ip = a.Address
			}
		}
		for _, port := range []string{"6443", "2379"} {
			addr := net.JoinHostPort(ip, port)
			cert, err := servedCert(ctx, addr)
			switch {
			case err != nil:
				errorf(t, "%s: %v", addr, err)
			case time.Until(cert.NotAfter) < 300*24*time.Hour:
				errorf(t, "%s (%s) serves a certificate valid until %s after certs renew", addr, cp, cert.NotAfter.UTC().Format(time.RFC3339))
			default:
				t.Logf("%s (%s) serves %q valid until %s", addr, cp, cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
			}
		}
	}
	return renew
}

// servedCert is the certificate a TLS server presents (it is compared, not trusted; a server that
// then asks for a client certificate, like etcd, has presented its own already).
func servedCert(ctx context.Context, addr string) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error { //nolint:gosec
		var err error
		if len(raw) > 0 {
			leaf, err = x509.ParseCertificate(raw[0])
		}
		return err
	}}}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", addr)
	if conn != nil {
		conn.Close()
	}
	if leaf == nil {
		return nil, fmt.Errorf("TLS handshake: %v", err)
	}
	return leaf, nil
}

const restoreNS = "restoreme"

// restoreScenario snapshots a namespace, deletes it and restores it: on an HA cluster first through
// a run killed half-way (and a refused restore of another snapshot), then after etcd's data was
// deleted on every control plane; on one control plane once, plainly.
func restoreScenario(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface, cps []string, ha bool) {
	t.Helper()
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: restoreNS}}, metav1.CreateOptions{}); err != nil {
		fatal(t, err)
	}
	for i := range 3 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm%d", i), Namespace: restoreNS}, Data: map[string]string{"n": fmt.Sprint(i)}}
		if _, err := k.CoreV1().ConfigMaps(restoreNS).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			fatal(t, err)
		}
	}
	snap := c.installer("etcd", "snapshot")
	if snap.Code != 0 {
		fatalf(t, "etcd snapshot: exit %d\n%s", snap.Code, snap.Stderr)
	}
	file := strings.TrimSpace(snap.Stdout)
	if err := k.CoreV1().Namespaces().Delete(ctx, restoreNS, metav1.DeleteOptions{}); err != nil {
		fatal(t, err)
	}
	waitFor(ctx, t, 3*time.Minute, "namespace "+restoreNS+" gone", func() bool {
		_, err := k.CoreV1().Namespaces().Get(ctx, restoreNS, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})

	// A dry run plans the whole restore and changes nothing.
	before := c.managedState(cps...)
	dry := c.installer("etcd", "restore", "--from", file, "--dry-run")
	if dry.Code != 0 || !strings.Contains(dry.Stdout, "move /var/lib/etcd/member to") {
		errorf(t, "etcd restore --dry-run: exit %d, want 0 and a plan with the swap\n%s\n%s", dry.Code, dry.Stdout, dry.Stderr)
	}
	if after := c.managedState(cps...); fmt.Sprint(after) != fmt.Sprint(before) {
		errorf(t, "etcd restore --dry-run changed a control plane")
	}
	// Without --yes and without a terminal: refused, nothing changed.
	if r := c.installer("etcd", "restore", "--from", file); r.Code != 2 || !strings.Contains(r.Stderr, "needs confirmation") {
		errorf(t, "etcd restore without --yes: exit %d\n%s", r.Code, r.Stderr)
	}

	if ha {
		// Killed once every control plane is stopped: the API is down until the restore is finished.
		run := c.startInstaller("etcd", "restore", "--from", file, "--yes")
		for {
			out, err := sshRun(ctx, c.Lab, cps[len(cps)-1], "sudo test -e "+constants.KubeAPIServerManifest+" && echo running || echo stopped")
			if err == nil && out == "stopped" {
				break
			}
			select {
			case <-run.exited:
				fatalf(t, "the restore ended (%v) before the control planes stopped:\n%s", run.err, run.Stderr())
			case <-time.After(200 * time.Millisecond):
			}
		}
		if err := run.cmd.Process.Kill(); err != nil {
			fatal(t, err)
		}
		<-run.exited
		t.Logf("restore killed (SIGKILL) once %s's control plane was stopped", cps[len(cps)-1])

		other := filepath.Join(t.TempDir(), "other.db")
		data, err := os.ReadFile(file)
		if err != nil {
			fatal(t, err)
		}
		if err := os.WriteFile(other, append(data, 0), 0o600); err != nil {
			fatal(t, err)
		}
		if r := c.installer("etcd", "restore", "--from", other, "--yes"); r.Code != exitRefused || !strings.Contains(r.Stderr, "an unfinished restore of another snapshot") {
			errorf(t, "a restore of another snapshot during an unfinished one: exit %d, want %d\n%s", r.Code, exitRefused, r.Stderr)
		}
	}
	r := c.installer("etcd", "restore", "--from", file, "--yes")
	if r.Code != 0 {
		fatalf(t, "etcd restore: exit %d\n%s", r.Code, r.Stderr)
	}
	if ha && !strings.Contains(r.Stdout, "finished the interrupted restore") {
		errorf(t, "the restore after the kill did not say it finished the interrupted one:\n%s", r.Stdout)
	}
	t.Logf("MEASURE etcd restore of %d control plane(s): %s\n%s", len(cps), r.Wall.Round(time.Second), r.Stdout)
	checkRestored(ctx, t, c, k, cps)

	if !ha {
		return
	}
	// Every control plane loses etcd's data at once: etcd starts empty (or not at all).
	for _, cp := range cps {
		const wipe = `sudo sh -c 'systemctl stop kubelet && for c in $(crictl ps -q --name "^(etcd|kube-apiserver)$"); do crictl stop "$c" >/dev/null; done && rm -rf /var/lib/etcd/member && systemctl start kubelet'`
		if out, err := sshRun(ctx, c.Lab, cp, wipe); err != nil {
			fatalf(t, "%s: delete etcd's data: %v\n%s", cp, err, out)
		}
	}
	t.Logf("etcd's data deleted on %v", cps)
	r = c.installer("etcd", "restore", "--from", file, "--yes")
	if r.Code != 0 {
		fatalf(t, "etcd restore after etcd's data was lost everywhere: exit %d\n%s", r.Code, r.Stderr)
	}
	t.Logf("MEASURE etcd restore after etcd's data was lost on every control plane: %s", r.Wall.Round(time.Second))
	checkRestored(ctx, t, c, k, cps)
}

// checkRestored: the namespace and its ConfigMaps are back, every node Ready, etcd healthy with a
// member per control plane, and etcd's data from before the restore kept on each control plane.
func checkRestored(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface, cps []string) {
	t.Helper()
	// The first request through the VIP is the one a user makes next: if it fails, that is said;
	// a VIP still moving gets 30 s before the check fails.
	n, attempts := 0, 0
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for {
		attempts++
		var cms *corev1.ConfigMapList
		if cms, err = k.CoreV1().ConfigMaps(restoreNS).List(ctx, metav1.ListOptions{}); err == nil {
			n = 0
			for _, cm := range cms.Items {
				if strings.HasPrefix(cm.Name, "cm") {
					n++
				}
			}
			break
		}
		if attempts == 1 {
			t.Logf("MEASURE the first API request through the endpoint after the restore failed: %v", err)
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil || n != 3 {
		errorf(t, "after the restore: %d of 3 ConfigMaps in %s after %d attempts (%v)", n, restoreNS, attempts, err)
	}
	checkNodeCountVersions(ctx, t, k, len(c.Spec.Spec.Hosts), c.Spec.Spec.KubernetesVersion)
	waitFor(ctx, t, 3*time.Minute, "every node Ready after the restore", func() bool {
		nodes, err := k.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil || len(nodes.Items) != len(c.Spec.Spec.Hosts) {
			return false
		}
		for _, n := range nodes.Items {
			ready := false
			for _, cond := range n.Status.Conditions {
				ready = ready || (cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue)
			}
			if !ready {
				return false
			}
		}
		return true
	})
	for _, cp := range cps {
		c.etcdHealthy(t, cp, len(cps))
		if out, err := sshRun(ctx, c.Lab, cp, "sudo sh -c 'ls -d /var/lib/installer/etcd-restore/*/before 2>/dev/null | wc -l'"); err != nil || strings.TrimSpace(out) == "0" {
			errorf(t, "%s: no etcd data kept from before the restore (%s %v)", cp, out, err)
		}
	}
}

// underLoad runs a command; when ha, with two request loops through the VIP (a kept connection and
// a new one per request) and the loop from a pod to the Service running from 5 s before to 5 s
// after it, and reports the requests and failures of each before, during and after it.
func underLoad(ctx context.Context, t *testing.T, c *labCluster, k kubernetes.Interface, what string, ha bool, run func() installerRun) installerRun {
	t.Helper()
	if !ha {
		return run()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(c.Lab.StateDir(), "admin.conf"))
	if err != nil {
		fatal(t, err)
	}
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	loops := []*apiLoop{startAPILoop(loopCtx, t, cfg, false), startAPILoop(loopCtx, t, cfg, true)}
	readiness := watchNodesReady(loopCtx, k)
	loopStart := time.Now()
	time.Sleep(5 * time.Second) // a baseline
	start := time.Now()
	r := run()
	end := time.Now()
	time.Sleep(5 * time.Second)
	stopLoops()
	for _, l := range loops {
		l.during = what
		l.report(t, start, end)
	}
	reportRequests(ctx, t, k, loopStart, []window{
		{"before " + what, loopStart, start},
		{"during " + what, start, end},
		{"after " + what, end, time.Now()},
	})
	serviceFailures(ctx, t, k, start, end, readiness)
	return r
}
