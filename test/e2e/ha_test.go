//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/kubeadm"
)

// TestScenario2HA: 3 control planes behind the keepalived-haproxy VIP and a worker. The admin
// kubeconfig's server is the VIP endpoint, etcd has 3 healthy members; when the host holding the VIP
// stops (clean shutdown) and later loses power, the API answers again through the VIP (failover time
// measured), and a started host rejoins.
func TestScenario2HA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "4", "--control-planes", "3", "--lb", "keepalived-haproxy")

	// plan on the fresh hosts: read-only, and it lists every host's uploads and commands.
	plan := c.installer("plan", "-v")
	if plan.Code != 0 {
		fatalf(t, "plan: exit %d\n%s", plan.Code, plan.Stderr)
	}
	for _, want := range []string{"host cp1:", "host cp3:", "host w1:", "upload /etc/kubernetes/manifests/haproxy.yaml", "upload /etc/keepalived/keepalived.conf",
		"(secret, shown masked)", "run    kubeadm init --config /etc/kubernetes/installer/kubeadm.yaml --skip-token-print", "run    kubeadm join --config"} {
		if !strings.Contains(plan.Stdout, want) {
			errorf(t, "plan output lacks %q", want)
		}
	}
	// -v adds each file's (masked) content under its upload line; the log keeps the actions.
	var actions []string
	for _, l := range strings.Split(plan.Stdout, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "|") {
			actions = append(actions, l)
		}
	}
	t.Logf("plan output (%d lines, %d of them actions, %s):\n%s", strings.Count(plan.Stdout, "\n"), len(actions), plan.Wall.Round(time.Millisecond), strings.Join(actions, "\n"))
	c.untouched("cp1", "cp2", "cp3", "w1")

	// Power loss of cp2 in the middle of its control-plane join (kubeadm has written kubelet.conf,
	// added cp2's etcd member as a learner and written etcd's manifest): the run fails naming cp2
	// and starts no other control plane's join; once cp2 has booted, the next run resumes its join
	// and completes the cluster.
	run := c.startInstaller("create", "cluster")
	for {
		if out, err := sshRun(ctx, c.Lab, "cp2", "sudo test -e "+constants.EtcdManifest+" && echo yes || echo no"); err == nil && out == "yes" {
			break
		}
		select {
		case <-run.exited:
			fatalf(t, "the run ended (%v) before cp2's join wrote etcd's manifest:\n%s", run.err, run.Stderr())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := c.Lab.Kill(ctx, "cp2"); err != nil {
		fatal(t, err)
	}
	lostAt := time.Now()
	<-run.exited
	cut := run.Stderr()
	t.Logf("MEASURE power loss of cp2 during its control-plane join: the run ended %s later: %s", time.Since(lostAt).Round(100*time.Millisecond), lastLine(cut))
	if !strings.Contains(lastLine(cut), "phase join/control-planes: host cp2: kubeadm join") || !strings.Contains(lastLine(cut), "(not started after it: cp3)") {
		errorf(t, "power loss of cp2 mid-join: the error does not name cp2 and the join it held back:\n%s", cut)
	}
	oneLineErrors(t, installerRun{Stderr: cut})
	if out, err := sshRun(ctx, c.Lab, "cp3", "sudo test -e "+constants.KubeletConf+" && echo joined || echo untouched"); err != nil || out != "untouched" {
		errorf(t, "cp3 after cp2 failed: %s %v", out, err)
	}
	if err := c.Lab.Start(ctx, "cp2"); err != nil {
		fatal(t, err)
	}

	r := c.installer("create", "cluster")
	if r.Code != 0 {
		fatalf(t, "create cluster after cp2 booted again: exit %d\n%s", r.Code, r.Stderr)
	}
	if !strings.Contains(r.Stderr, "an earlier kubeadm join of this control plane did not finish (its marker is there): resuming it") {
		errorf(t, "the re-run did not say it resumed cp2's join:\n%s", r.Stderr)
	}
	t.Logf("MEASURE create that resumed cp2's join and joined cp3 and w1: %s", r.Wall.Round(100*time.Millisecond))
	reportTimings(t, r)
	for _, h := range []string{"cp2", "cp3"} {
		if out, err := sshRun(ctx, c.Lab, h, "sudo test -e "+constants.JoinMarker+" && echo left || echo gone"); err != nil || out != "gone" {
			errorf(t, "%s: join marker %s %v", h, out, err)
		}
	}

	endpoint := kubeadm.ControlPlaneEndpoint(&c.Spec.Spec)
	cfg, err := clientcmd.LoadFromFile(filepath.Join(c.Lab.StateDir(), "admin.conf"))
	if err != nil {
		fatal(t, err)
	}
	for _, cl := range cfg.Clusters {
		if cl.Server != "https://"+endpoint {
			errorf(t, "admin kubeconfig server %s, want the VIP endpoint https://%s", cl.Server, endpoint)
		}
	}
	if !strings.HasPrefix(endpoint, c.Spec.Spec.LoadBalancer.VIP+":") {
		errorf(t, "endpoint %s is not on the VIP %s", endpoint, c.Spec.Spec.LoadBalancer.VIP)
	}
	k := c.kube()
	checkNodes(ctx, t, c, k)
	c.etcdHealthy(t, "cp1", 3)
	c.etcdVoters(t, "cp1", 3)

	// Clean shutdown of the VIP holder, then power loss of the next one.
	for _, fault := range []string{"stop", "kill"} {
		holder := c.vipHolder(t)
		start := time.Now()
		// The fault runs beside the polls: a clean stop takes seconds, and the API must answer then too.
		faulted := make(chan error, 1)
		go func() {
			if fault == "stop" {
				faulted <- c.Lab.Stop(ctx, holder)
			} else {
				faulted <- c.Lab.Kill(ctx, holder)
			}
		}()
		f := measureFailover(ctx, t, k, start, faulted, 90*time.Second)
		t.Logf("MEASURE VIP failover after %s of %s: %d failed requests through the VIP (polled every 200 ms, 1 s timeout), longest outage %s, steady %s after the fault began",
			fault, holder, f.failed, f.longest.Round(10*time.Millisecond), f.steady.Round(10*time.Millisecond))
		if f.steady > 15*time.Second {
			errorf(t, "failover after %s: steady only after %s", fault, f.steady)
		}
		// VRRP settles over a few advertisement intervals after a power loss: wait for one holder.
		after := ""
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			if after = c.vipHolder(t); after != "" && after != holder {
				break
			}
		}
		if after == holder || after == "" {
			errorf(t, "the VIP did not move away from %s (now %q)", holder, after)
		} else {
			t.Logf("the VIP moved from %s to %s", holder, after)
		}
		t.Logf("fault %s of %s handled in %s", fault, holder, time.Since(start).Round(time.Millisecond))
		if err := c.Lab.Start(ctx, holder); err != nil {
			fatal(t, err)
		}
		// The host rejoins: node Ready, its etcd member healthy again.
		waitNodeReady(ctx, t, k, holder, 3*time.Minute)
		c.etcdHealthy(t, holder, 3)
	}
	checkNodes(ctx, t, c, k)
	checkNoSecrets(t, c, plan, r)
}

// vipHolder returns the control plane whose private interface holds the VIP ("" when none does).
func (c *labCluster) vipHolder(t *testing.T) string {
	t.Helper()
	vip := c.Spec.Spec.LoadBalancer.VIP
	holders := []string{}
	for _, h := range c.Spec.Spec.ControlPlanes() {
		out, err := sshRun(c.ctx, c.Lab, h.Name, "ip -4 -o addr show")
		if err == nil && strings.Contains(out, " "+vip+"/") {
			holders = append(holders, h.Name)
		}
	}
	if len(holders) > 1 {
		errorf(t, "VIP held by several hosts: %v", holders)
	}
	if len(holders) == 0 {
		return ""
	}
	return holders[0]
}

// etcdHealthy asks etcd on a control plane (etcdctl inside its static pod) for the member list and
// every member's health.
// etcdVoters checks that etcd, asked on host, has want members and none of them is a learner (a
// resumed join promotes the member an interrupted one added).
func (c *labCluster) etcdVoters(t *testing.T, host string, want int) {
	t.Helper()
	out, err := sshRun(c.ctx, c.Lab, host, etcdMembersScript)
	var list struct {
		Members []struct {
			Name      string `json:"name"`
			IsLearner bool   `json:"isLearner"`
		} `json:"members"`
	}
	if err != nil || json.Unmarshal([]byte(out), &list) != nil {
		errorf(t, "etcd member list on %s: %v\n%s", host, err, out)
		return
	}
	voters := 0
	for _, m := range list.Members {
		if m.IsLearner {
			errorf(t, "etcd member %s is still a learner", m.Name)
			continue
		}
		voters++
	}
	if voters != want {
		errorf(t, "etcd on %s: %d voting members, want %d: %s", host, voters, want, out)
	}
}

func (c *labCluster) etcdHealthy(t *testing.T, host string, want int) {
	t.Helper()
	const script = `sudo sh -c 'c=$(crictl ps -q --name "^etcd$" | head -1); [ -n "$c" ] || exit 3
crictl exec "$c" etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt \
  --cert /etc/kubernetes/pki/etcd/server.crt --key /etc/kubernetes/pki/etcd/server.key endpoint health --cluster -w json'`
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := sshRun(c.ctx, c.Lab, host, script)
		var health []struct {
			Endpoint string `json:"endpoint"`
			Health   bool   `json:"health"`
		}
		if err == nil && json.Unmarshal([]byte(out), &health) == nil {
			ok := 0
			for _, h := range health {
				if h.Health {
					ok++
				}
			}
			if len(health) == want && ok == want {
				t.Logf("etcd (asked on %s): %d healthy members", host, ok)
				return
			}
			err = fmt.Errorf("%d members, %d healthy: %s", len(health), ok, out)
		}
		if time.Now().After(deadline) {
			errorf(t, "etcd on %s: %v", host, err)
			return
		}
		time.Sleep(3 * time.Second)
	}
}

// waitAPI polls the apiserver's /readyz through the VIP until it answers; it returns how many
// requests failed and how long it took.
func waitAPI(ctx context.Context, t *testing.T, k kubernetes.Interface, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	failed := 0
	for time.Since(start) < timeout {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := k.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		cancel()
		if err == nil {
			return failed, time.Since(start)
		}
		failed++
		time.Sleep(200 * time.Millisecond)
	}
	fatalf(t, "the API did not answer through the VIP within %s", timeout)
	return failed, timeout
}

// failover is how the API answered through the VIP from a fault on: how many requests failed, the
// longest run of failures, and when it became steady (the end of the last failure).
type failover struct {
	failed          int
	longest, steady time.Duration
}

const failoverQuiet = 15 * time.Second

// measureFailover polls /readyz through the VIP every 200 ms (1 s timeout each) from the fault's
// start until the fault has happened (faulted) and no request has failed for failoverQuiet.
func measureFailover(ctx context.Context, t *testing.T, k kubernetes.Interface, start time.Time, faulted <-chan error, timeout time.Duration) failover {
	t.Helper()
	var f failover
	var runStart, quietSince time.Time
	faultDone := false
	for time.Since(start) < timeout {
		at := time.Now()
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := k.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		cancel()
		if err != nil {
			f.failed++
			if runStart.IsZero() {
				runStart = at
			}
			f.longest = max(f.longest, time.Since(runStart))
			quietSince = time.Time{}
		} else {
			if !runStart.IsZero() {
				f.steady = at.Sub(start)
			}
			runStart = time.Time{}
			if quietSince.IsZero() {
				quietSince = at
			}
		}
		select {
		case err := <-faulted:
			if err != nil {
				fatal(t, err)
			}
			faultDone, quietSince = true, time.Now()
		default:
		}
		if faultDone && !quietSince.IsZero() && time.Since(quietSince) >= failoverQuiet {
			return f
		}
		time.Sleep(200 * time.Millisecond)
	}
	fatalf(t, "the API through the VIP was not steady within %s of the fault (%d failed requests)", timeout, f.failed)
	return f
}

func waitNodeReady(ctx context.Context, t *testing.T, k kubernetes.Interface, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := k.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == "Ready" && c.Status == "True" && time.Since(c.LastHeartbeatTime.Time) < 30*time.Second {
					return
				}
			}
		}
		time.Sleep(2 * time.Second)
	}
	fatalf(t, "node %s not Ready within %s", name, timeout)
}
