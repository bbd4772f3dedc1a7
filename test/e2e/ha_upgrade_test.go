//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// TestScenario10HAUpgrade: 3 control planes behind the keepalived-haproxy VIP and a worker,
// created at v1.36.5, upgraded to v1.37.2 while three loops run: requests to a 3-replica Service
// behind a PodDisruptionBudget (from a pod), and requests through the VIP to the API on one kept
// connection (as controllers and kubelets do) and on a new connection each time (as kubectl does).
// Each control plane leaves the load balancer before kubeadm or its new kubelet restarts it and
// comes back with every etcd member healthy. Goals: no failed Service request, no node that stops
// being Ready, the API answering throughout (failures counted and reported); a second run changes
// nothing.
func TestScenario10HAUpgrade(t *testing.T) {
	const from, to = "v1.36.5", "v1.37.2"
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	c := startLab(ctx, t, "-n", "4", "--control-planes", "3", "--lb", "keepalived-haproxy", "--kubernetes-version", from)
	create := c.installer("create", "cluster")
	if create.Code != 0 {
		fatalf(t, "create cluster: exit %d\n%s", create.Code, create.Stderr)
	}
	t.Logf("MEASURE create of 3 control planes + 1 worker at %s: %s", from, create.Wall.Round(time.Second))
	k := c.kube()
	checkNodeCountVersions(ctx, t, k, 4, from)
	deployWorkloadOn(ctx, t, k, true)
	holderBefore := c.vipHolder(t)

	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(c.Lab.StateDir(), "admin.conf"))
	if err != nil {
		fatal(t, err)
	}
	loopCtx, stopLoops := context.WithCancel(ctx)
	kept := startAPILoop(loopCtx, t, cfg, false)
	fresh := startAPILoop(loopCtx, t, cfg, true)
	readiness := watchNodesReady(loopCtx, k)
	loopStart := time.Now()
	time.Sleep(10 * time.Second) // a baseline before the upgrade

	spec := c.versionSpec(to)
	upgradeStart := time.Now()
	run := c.installerSpec(spec, "upgrade", "--wait-timeout", "4m", "--drain-timeout", "4m")
	upgradeEnd := time.Now()
	time.Sleep(10 * time.Second)
	stopLoops()
	if run.Code != 0 {
		fatalf(t, "upgrade: exit %d\n%s", run.Code, run.Stderr)
	}
	t.Logf("MEASURE HA upgrade %s -> %s (3 control planes + 1 worker): %s", from, to, run.Wall.Round(time.Second))
	checkNodeCountVersions(ctx, t, k, 4, to)

	// The installer's own record: each control plane out and back, etcd healthy after each.
	reportHASteps(t, run.Stderr)
	reportTimeline(t, run.Stderr, loopStart)

	// The loops.
	for _, l := range []*apiLoop{kept, fresh} {
		l.report(t, upgradeStart, upgradeEnd)
	}
	reportRequests(ctx, t, k, loopStart, []window{
		{"before the upgrade", loopStart, upgradeStart},
		{"during the upgrade", upgradeStart, upgradeEnd},
		{"after the upgrade", upgradeEnd, time.Now()},
	})
	serviceFailures(ctx, t, k, upgradeStart, upgradeEnd, readiness)
	readiness.report(t, maintenanceWindows(t, run.Stderr))

	for _, cp := range []string{"cp1", "cp2", "cp3"} {
		c.etcdHealthy(t, cp, 3)
	}
	t.Logf("the VIP was on %s before the upgrade and is on %s after it", holderBefore, c.vipHolder(t))
	again := c.installerSpec(spec, "upgrade")
	if again.Code != 0 || again.TotalChanges() != 0 {
		errorf(t, "a second upgrade: exit %d, %d changes (%v)\n%s", again.Code, again.TotalChanges(), again.Changes, again.Stderr)
	}
	for _, cp := range []string{"cp1", "cp2", "cp3"} {
		if out := c.ssh(cp, "sudo sh -c 'test -e /run/installer/keepalived/maintenance && echo left || echo none'"); strings.TrimSpace(out) != "none" {
			errorf(t, "%s: maintenance marker %s after the upgrade", cp, out)
		}
	}
	checkNoSecrets(t, c, create, run, again)
}

var (
	lbOutLine     = regexp.MustCompile(`msg="upgrade: out of the API load balancer" host=(\S+) for="([^"]+)" vip=(\S+) closed=(\d+) seconds=(\S+)`)
	lbBackLine    = regexp.MustCompile(`msg="upgrade: back in the API load balancer" host=(\S+) etcdHealthy=(\d+) seconds=(\S+)`)
	componentLine = regexp.MustCompile(`msg="upgrade: kubeadm upgraded a component" host=(\S+) component=(\S+) seconds=(\S+)`)
	kubeadmLine   = regexp.MustCompile(`msg="(kubeadm upgrade (?:apply|node)) done" host=(\S+) seconds=(\S+)`)
)

// reportHASteps prints, per control plane, the installer's steps (out of the load balancer,
// kubeadm, back in) beside kubeadm's own time per component, and checks that every control plane
// left and came back twice (kubeadm, then its kubelet) with 3 healthy etcd members each time.
func reportHASteps(t *testing.T, stderr string) {
	t.Helper()
	var lines []string
	outs := map[string]int{}
	for _, m := range lbOutLine.FindAllStringSubmatch(stderr, -1) {
		outs[m[1]]++
		vip := ""
		if to := strings.Trim(m[3], `"`); to != "" {
			vip = ", VIP moved to " + to
		}
		lines = append(lines, fmt.Sprintf("%s out of the load balancer for %s: %s s (%s connections closed%s)", m[1], m[2], m[5], m[4], vip))
	}
	backs := map[string]int{}
	for _, m := range lbBackLine.FindAllStringSubmatch(stderr, -1) {
		backs[m[1]]++
		lines = append(lines, fmt.Sprintf("%s back in the load balancer: %s s, etcd %s members healthy", m[1], m[3], m[2]))
		if m[2] != "3" {
			errorf(t, "%s came back with %s healthy etcd members, want 3", m[1], m[2])
		}
	}
	for _, m := range kubeadmLine.FindAllStringSubmatch(stderr, -1) {
		lines = append(lines, fmt.Sprintf("%s %s: %s s", m[2], m[1], m[3]))
	}
	for _, m := range componentLine.FindAllStringSubmatch(stderr, -1) {
		lines = append(lines, fmt.Sprintf("%s   kubeadm's own time for %s: %s s", m[1], m[2], m[3]))
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i][:3] < lines[j][:3] })
	t.Logf("MEASURE HA upgrade steps per control plane:\n  %s", strings.Join(lines, "\n  "))
	for _, cp := range []string{"cp1", "cp2", "cp3"} {
		if outs[cp] != 2 || backs[cp] != 2 {
			errorf(t, "%s left the load balancer %d times and came back %d times, want 2 and 2 (kubeadm, kubelet)", cp, outs[cp], backs[cp])
		}
	}
}

// serviceFailures fails the test for every Service request that failed between start and end,
// printing the Service's backends at that second when w recorded them.
func serviceFailures(ctx context.Context, t *testing.T, k kubernetes.Interface, start, end time.Time, w *nodeWatch) {
	t.Helper()
	samples, _, err := loopResults(ctx, k)
	if err != nil {
		errorf(t, "request loop: %v", err)
		return
	}
	failed := 0
	for _, s := range samples {
		if !s.ok && !s.at.Before(start.Truncate(time.Second)) && s.at.Before(end) {
			failed++
			if w != nil {
				w.mu.Lock()
				t.Logf("Service request failed at %s (%s); the Service's backends then: %s", s.at.Format(time.TimeOnly), s.err, w.backends[s.at.Unix()])
				w.mu.Unlock()
			}
		}
	}
	if failed > 0 {
		errorf(t, "%d Service requests failed during the upgrade (goal 0)", failed)
	}
}

// apiLoop sends GET /api/v1/nodes?limit=1 through the VIP every 200 ms and records each result.
type apiLoop struct {
	name string
	// during names the window report measures ("the upgrade" unless set).
	during  string
	mu      sync.Mutex
	samples []apiSample
}

type apiSample struct {
	at  time.Time
	err string
}

// startAPILoop: fresh opens a new TCP and TLS connection per request; otherwise one HTTP/2
// connection is kept, like client-go's.
func startAPILoop(ctx context.Context, t *testing.T, cfg *rest.Config, fresh bool) *apiLoop {
	t.Helper()
	tlsCfg, err := rest.TLSConfigFor(cfg)
	if err != nil {
		fatal(t, err)
	}
	tr := &http.Transport{TLSClientConfig: tlsCfg.Clone(), ForceAttemptHTTP2: !fresh, DisableKeepAlives: fresh}
	if fresh {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	}
	client := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	l := &apiLoop{name: "API requests through the VIP, one kept connection"}
	if fresh {
		l.name = "API requests through the VIP, a new connection each"
	}
	url := strings.TrimSuffix(cfg.Host, "/") + "/api/v1/nodes?limit=1"
	go func() {
		defer tr.CloseIdleConnections()
		for ctx.Err() == nil {
			at := time.Now()
			msg := ""
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			switch {
			case err != nil:
				msg = err.Error()
			default:
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					msg = "HTTP " + strconv.Itoa(resp.StatusCode)
				}
			}
			if ctx.Err() != nil {
				return
			}
			l.mu.Lock()
			l.samples = append(l.samples, apiSample{at: at, err: msg})
			l.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return l
}

// report logs the requests and failures during the upgrade, the distinct errors and the longest
// run of failures; the API must answer throughout (no run of failures over 3 s).
func (l *apiLoop) report(t *testing.T, start, end time.Time) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	total, failed := 0, 0
	var longest, run time.Duration
	var runStart time.Time
	errs := map[string]int{}
	var when []string
	for _, s := range l.samples {
		if s.at.Before(start) || s.at.After(end) {
			continue
		}
		total++
		if s.err == "" {
			runStart = time.Time{}
			continue
		}
		failed++
		errs[shortError(s.err)]++
		when = append(when, s.at.Sub(start).Round(time.Second).String())
		if runStart.IsZero() {
			runStart = s.at
		}
		if run = s.at.Sub(runStart); run > longest {
			longest = run
		}
	}
	var kinds []string
	for e, n := range errs {
		kinds = append(kinds, fmt.Sprintf("%d× %s", n, e))
	}
	sort.Strings(kinds)
	during := l.during
	if during == "" {
		during = "the upgrade"
	}
	t.Logf("MEASURE %s during %s: %d, failed %d, longest run of failures %s, at %v; errors: %v",
		l.name, during, total, failed, longest.Round(10*time.Millisecond), compact(when), kinds)
	if total == 0 {
		errorf(t, "%s: no requests recorded", l.name)
	}
	if longest > 3*time.Second {
		errorf(t, "%s: the API did not answer for %s", l.name, longest.Round(10*time.Millisecond))
	}
}

// shortError drops the request URL from an error, so equal causes count together.
func shortError(e string) string {
	if i := strings.LastIndex(e, "\": "); i >= 0 {
		return e[i+3:]
	}
	return e
}

// nodeWatch lists the nodes every second and records every node whose Ready condition is not True.
type nodeWatch struct {
	mu    sync.Mutex
	start time.Time
	bad   []nodeObservation
	n     int
	// backends is, per second, the web Service's backends as the EndpointSlices list them
	// ("node/podIP ready|notready|terminating"): what a failed Service request could have hit.
	backends map[int64]string
}

type nodeObservation struct {
	node, status, reason string
	at                   time.Time
}

func watchNodesReady(ctx context.Context, k kubernetes.Interface) *nodeWatch {
	w := &nodeWatch{start: time.Now(), backends: map[int64]string{}}
	go func() {
		for ctx.Err() == nil {
			lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			nodes, err := k.CoreV1().Nodes().List(lctx, metav1.ListOptions{})
			slices, serr := k.DiscoveryV1().EndpointSlices(upgradeNS).List(lctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
			cancel()
			if serr == nil {
				var eps []string
				for _, sl := range slices.Items {
					for _, ep := range sl.Endpoints {
						state := "ready"
						switch {
						case ep.Conditions.Terminating != nil && *ep.Conditions.Terminating:
							state = "terminating"
						case ep.Conditions.Ready != nil && !*ep.Conditions.Ready:
							state = "notready"
						}
						node := ""
						if ep.NodeName != nil {
							node = *ep.NodeName
						}
						eps = append(eps, node+"/"+strings.Join(ep.Addresses, ",")+" "+state)
					}
				}
				sort.Strings(eps)
				w.mu.Lock()
				w.backends[time.Now().Unix()] = strings.Join(eps, ", ")
				w.mu.Unlock()
			}
			if err == nil {
				w.mu.Lock()
				w.n++
				for _, n := range nodes.Items {
					for _, cond := range n.Status.Conditions {
						if cond.Type == corev1.NodeReady && cond.Status != corev1.ConditionTrue {
							w.bad = append(w.bad, nodeObservation{node: n.Name, status: string(cond.Status), reason: cond.Reason, at: time.Now()})
						}
					}
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	return w
}

// nodeSettle is how long after a control plane is back in the load balancer its node may still
// show not Ready: the node lifecycle controller sees the renewed Lease on its next pass.
const nodeSettle = 60 * time.Second

// report logs every observation of a node not Ready. A control plane's kubelet talks to its own
// apiserver (kubeadm's ControlPlaneKubeletLocalMode, GA since 1.33), so while kubeadm restarts that
// control plane's etcd and apiserver its node can go Unknown; any other node not Ready (a worker, or
// a control plane outside its own maintenance) fails the test.
func (w *nodeWatch) report(t *testing.T, maintenance map[string][]window) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.bad) == 0 {
		t.Logf("MEASURE nodes not Ready during the upgrade: none (%d observations, every second)", w.n)
		return
	}
	var lines []string
	outside := map[string]int{}
	inside := map[string]int{}
	for _, b := range w.bad {
		own := false
		for _, win := range maintenance[b.node] {
			own = own || (!b.at.Before(win.start) && b.at.Before(win.end.Add(nodeSettle)))
		}
		where := "outside its own maintenance"
		if own {
			where = "while out of the load balancer for its upgrade"
			inside[b.node]++
		} else {
			outside[b.node]++
		}
		lines = append(lines, fmt.Sprintf("%s at %s: Ready=%s (%s), %s", b.node, b.at.Sub(w.start).Round(time.Second), b.status, b.reason, where))
	}
	t.Logf("MEASURE nodes not Ready during the upgrade (%d observations, every second): own maintenance %v, elsewhere %v\n  %s",
		w.n, inside, outside, strings.Join(compact(lines), "\n  "))
	for node, n := range outside {
		errorf(t, "node %s was not Ready in %d observations outside its own upgrade (goal: none)", node, n)
	}
}

// maintenanceWindows reads when each control plane was out of the load balancer from the
// installer's log (time= of "out of" to "back in").
func maintenanceWindows(t *testing.T, stderr string) map[string][]window {
	t.Helper()
	out := map[string][]window{}
	open := map[string]time.Time{}
	for _, l := range logLines(stderr) {
		host := ""
		if f := hostField.FindStringSubmatch(l.rest); f != nil {
			host = f[1]
		}
		switch l.msg {
		case "upgrade: out of the API load balancer":
			open[host] = l.at
		case "upgrade: back in the API load balancer":
			out[host] = append(out[host], window{name: host, start: open[host], end: l.at})
		}
	}
	return out
}

// logLine is one record of the installer's text log.
type logLine struct {
	at               time.Time
	level, msg, rest string
}

// logLines reads the installer's text log records (time=... level=... msg="..." rest).
func logLines(stderr string) []logLine {
	var out []logLine
	for _, l := range strings.Split(stderr, "\n") {
		m := logTime.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		out = append(out, logLine{at: at, level: m[2], msg: m[3], rest: m[4]})
	}
	return out
}

var hostField = regexp.MustCompile(`host=(\S+)`)

var logTime = regexp.MustCompile(`^time=(\S+) level=(\S+) msg="([^"]*)"(.*)$`)

// reportTimeline logs the installer's messages with their time since the loops started, to set
// failed requests against what the upgrade was doing.
func reportTimeline(t *testing.T, stderr string, since time.Time) {
	t.Helper()
	var lines []string
	for _, l := range logLines(stderr) {
		lines = append(lines, fmt.Sprintf("%7s %s %s%s", l.at.Sub(since).Round(time.Second), l.level, l.msg, l.rest))
	}
	t.Logf("installer timeline (since the loops started):\n  %s", strings.Join(lines, "\n  "))
}
