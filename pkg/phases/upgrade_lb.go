package phases

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// apiLB takes a control plane out of the API endpoint's load balancer before kubeadm or a new
// kubelet restarts its apiserver and etcd, and puts it back once both are healthy: every haproxy
// stops sending it new connections, lets the short ones finish and closes the long-lived ones
// (watches), whose clients reconnect to another apiserver. Before a new kubelet, which re-creates
// the haproxy and keepalived pods too, keepalived on it first gives up the VIP (its maintenance
// marker fails its check); kubeadm leaves them alone, so a VIP holder keeps the VIP through kubeadm
// and its haproxy goes on serving from the other apiservers: every VIP move resets the connections
// through the old holder. Only loadBalancer keepalived-haproxy with several control planes has
// anything to do (newAPILB returns nil otherwise).
type apiLB struct {
	// command names the workflow in logs and errors ("upgrade", "certs renew").
	command string
	r       *Run
	cps     []*Host
	// timeout bounds each wait: the VIP moving, the control plane healthy again.
	timeout time.Duration
	// interval between polls (tests shorten it).
	interval time.Duration
	// warned: hosts whose HA files predate the runtime API or the marker, said once per run.
	warned map[string]bool
}

// warnOnce logs msg for host the first time only: the upgrade takes each control plane out twice.
func (l *apiLB) warnOnce(key, msg, host string) {
	if l.warned[key+host] {
		return
	}
	l.warned[key+host] = true
	l.r.Log.Warn(msg, "host", host)
}

// sessionDrain is how long a control plane taken out keeps its open connections so that requests
// in flight finish; what is left after it is closed (watches never end by themselves).
const sessionDrain = 5 * time.Second

func newAPILB(r *Run, command string, timeout time.Duration) *apiLB {
	var cps []*Host
	for _, cp := range r.Cluster.Spec.ControlPlanes() {
		if h, ok := r.Hosts[cp.Name]; ok && h.Connected() {
			cps = append(cps, h)
		}
	}
	return apiLBOver(r, command, cps, timeout)
}

// apiLBOver is newAPILB over the given control planes (apply's removal reaches those that stay
// through its own run).
func apiLBOver(r *Run, command string, cps []*Host, timeout time.Duration) *apiLB {
	if r.Cluster.Spec.LoadBalancer.Type != v1alpha1.LoadBalancerKeepalivedHAProxy || len(cps) < 2 {
		return nil
	}
	return &apiLB{command: command, r: r, cps: cps, timeout: timeout, interval: 500 * time.Millisecond, warned: map[string]bool{}}
}

// lbView is what one control plane's api-lb.sh state printed.
type lbView struct {
	host *Host
	// maintenance: the installer's marker is there (this host is, or was left, out of service).
	maintenance bool
	// keepalived: its check script honours the marker (files of an older installer do not).
	keepalived bool
	vip        bool
	// haproxy: its runtime API answers; servers by name.
	haproxy bool
	servers map[string]haproxyServer
}

type haproxyServer struct {
	// Status is haproxy's: UP, DOWN, MAINT, DRAIN, NOLB, or a transition such as "UP 1/2".
	Status   string
	Sessions int
}

func (v lbView) up(name string) bool { return v.servers[name].Status == "UP" }

// balances: this host's haproxy sends connections to name.
func (v lbView) balances(name string) bool {
	_, ok := v.servers[name]
	return v.haproxy && ok
}

// parseLBView reads api-lb.sh state: four "key value" lines, then haproxy's `show stat` CSV.
func parseLBView(h *Host, out []byte) (lbView, error) {
	v := lbView{host: h}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	seen := 0
	var csvText strings.Builder
	for sc.Scan() {
		line := sc.Text()
		if seen == 4 {
			csvText.WriteString(line + "\n")
			continue
		}
		k, val, _ := strings.Cut(line, " ")
		switch k {
		case "marker":
			v.maintenance = val == "yes"
		case "keepalived":
			v.keepalived = val == "yes"
		case "vip":
			v.vip = val == "yes"
		case "haproxy":
			v.haproxy = val != "none"
		default:
			return v, fmt.Errorf("unexpected line %q", line)
		}
		seen++
	}
	if seen < 4 {
		return v, fmt.Errorf("incomplete state (%d lines)", seen)
	}
	if !v.haproxy {
		return v, nil
	}
	servers, err := parseHAProxyStat(csvText.String(), manifests.HAProxyBackend)
	if err != nil {
		return v, err
	}
	v.servers = servers
	return v, nil
}

// parseHAProxyStat reads the servers of one backend from `show stat` (CSV whose header line starts
// with "# ").
func parseHAProxyStat(text, backend string) (map[string]haproxyServer, error) {
	text = strings.TrimPrefix(strings.TrimLeft(text, "\n"), "# ")
	rd := csv.NewReader(strings.NewReader(text))
	rd.FieldsPerRecord = -1
	rows, err := rd.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("haproxy show stat: %w", err)
	}
	if len(rows) == 0 {
		return nil, errors.New("haproxy show stat: no output")
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"pxname", "svname", "scur", "status"} {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("haproxy show stat: no %s column", name)
		}
	}
	servers := map[string]haproxyServer{}
	for _, row := range rows[1:] {
		if len(row) < len(rows[0]) || row[col["pxname"]] != backend {
			continue
		}
		name := row[col["svname"]]
		if name == "BACKEND" || name == "FRONTEND" {
			continue
		}
		n, _ := strconv.Atoi(row[col["scur"]])
		servers[name] = haproxyServer{Status: row[col["status"]], Sessions: n}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("haproxy show stat: no servers in backend %s", backend)
	}
	return servers, nil
}

func (l *apiLB) view(ctx context.Context, h *Host) (lbView, error) {
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.APILB.Args("state", manifests.HAProxyAdminSocket,
		manifests.KeepalivedMaintenanceFile, manifests.KeepalivedCheckPath, l.r.Cluster.Spec.LoadBalancer.VIP)})
	if err != nil {
		return lbView{}, hostErr(h.Name(), fmt.Errorf("read the API load balancer: %w", err))
	}
	v, err := parseLBView(h, res.Stdout)
	if err != nil {
		return v, hostErr(h.Name(), fmt.Errorf("read the API load balancer: %w", err))
	}
	return v, nil
}

func (l *apiLB) views(ctx context.Context) ([]lbView, error) {
	var out []lbView
	for _, h := range l.cps {
		v, err := l.view(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// haproxyName: a server name that goes into a haproxy command line must be a plain host name.
var haproxyName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// haproxy sends one runtime API command to the haproxy on h; haproxy answers a bad command with
// text, a good one with an empty line.
func (l *apiLB) haproxy(ctx context.Context, h *Host, command, describe string) error {
	res, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.APILB.Args("haproxy", manifests.HAProxyAdminSocket, command)}, []string{describe})
	if err != nil {
		return hostErr(h.Name(), fmt.Errorf("haproxy %q: %w", command, err))
	}
	if answer := strings.TrimSpace(string(res.Stdout)); answer != "" {
		return hostErr(h.Name(), fmt.Errorf("haproxy %q: %s", command, answer))
	}
	return nil
}

// takeOut takes h out of every haproxy, moving the VIP away from it first when moveVIP. It refuses,
// before changing anything, when some haproxy has no other apiserver up: taking h out would stop
// the API.
func (l *apiLB) takeOut(ctx context.Context, h *Host, why string, moveVIP bool) error {
	name := h.Name()
	if !haproxyName.MatchString(name) {
		return fmt.Errorf("host name %q cannot be named to haproxy", name)
	}
	start := time.Now()
	views, err := l.views(ctx)
	if err != nil {
		return err
	}
	var self lbView
	var balancers []lbView
	for _, v := range views {
		if v.host == h {
			self = v
		}
		if !v.haproxy {
			l.warnOnce("haproxy", l.command+": haproxy has no runtime API (its files predate this installer; `installer create cluster` renews them): it keeps sending connections to each control plane while it restarts",
				v.host.Name())
			continue
		}
		if !v.balances(name) {
			// A control plane joined after this haproxy's config was written is not among its
			// servers: nothing to take it out of here.
			continue
		}
		var others []string
		for s := range v.servers {
			if s != name && v.up(s) {
				others = append(others, s)
			}
		}
		if len(others) == 0 {
			return hostErr(v.host.Name(), fmt.Errorf("haproxy has no apiserver up besides %s's; taking %s out for %s would stop the API: bring the other control planes back and run the upgrade again", name, name, why))
		}
		balancers = append(balancers, v)
	}

	// keepalived first: the VIP leaves before haproxy stops sending connections to h's apiserver.
	movedTo := ""
	switch {
	case !moveVIP:
	case self.keepalived:
		if movedTo, err = l.moveVIPAway(ctx, h, self.vip); err != nil {
			return err
		}
	default:
		l.warnOnce("keepalived", l.command+": keepalived's check has no maintenance marker (its files predate this installer; `installer create cluster` renews them): the VIP moves only once its haproxy stops",
			name)
	}

	// haproxy: no new connections to h, a few seconds for requests in flight, then the rest closed.
	// The marker first: a run killed in the middle leaves proof that it took h out.
	if len(balancers) > 0 {
		if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.APILB.Args("hold", manifests.HAProxyOutMarker)},
			[]string{"mark " + name + " as out of the API load balancer (" + manifests.HAProxyOutMarker + ")"}); err != nil {
			return hostErr(name, fmt.Errorf("mark out of the load balancer: %w", err))
		}
	}
	server := manifests.HAProxyBackend + "/" + name
	for _, v := range balancers {
		if err := l.haproxy(ctx, v.host, "set server "+server+" state drain", "haproxy on "+v.host.Name()+": no new connections to "+name); err != nil {
			return err
		}
	}
	left := 0
	err = l.r.fx.Observe(ctx, "connections to "+name+" finished", func(ctx context.Context) error {
		deadline := time.Now().Add(sessionDrain)
		for {
			left = 0
			for _, v := range balancers {
				nv, err := l.view(ctx, v.host)
				if err != nil {
					return err
				}
				left += nv.servers[name].Sessions
			}
			if left == 0 || time.Now().After(deadline) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(l.interval):
			}
		}
	})
	if err != nil {
		return err
	}
	for _, v := range balancers {
		if err := l.haproxy(ctx, v.host, "set server "+server+" state maint; shutdown sessions server "+server,
			"haproxy on "+v.host.Name()+": "+name+" out of service, its connections closed"); err != nil {
			return err
		}
	}
	l.r.Log.Info(l.command+": out of the API load balancer", "host", name, "for", why, "vip", movedTo,
		"closed", left, "seconds", time.Since(start).Seconds())
	return nil
}

// moveVIPAway makes keepalived on h give up the VIP (its maintenance marker fails its check) and,
// when h holds it, waits until another control plane does; it returns that one.
func (l *apiLB) moveVIPAway(ctx context.Context, h *Host, holds bool) (string, error) {
	name := h.Name()
	if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.APILB.Args("hold", manifests.KeepalivedMaintenanceFile)},
		[]string{"keepalived on " + name + " gives up the VIP (maintenance marker " + manifests.KeepalivedMaintenanceFile + ")"}); err != nil {
		return "", hostErr(name, fmt.Errorf("keepalived maintenance: %w", err))
	}
	if !holds {
		return "", nil
	}
	movedTo := ""
	err := l.r.fx.Observe(ctx, "the VIP away from "+name, func(ctx context.Context) error {
		return kubeapi.Poll(ctx, l.interval, l.timeout, "the VIP to leave "+name, func(ctx context.Context) (bool, string, error) {
			vs, err := l.views(ctx)
			if err != nil {
				return false, err.Error(), nil
			}
			for _, v := range vs {
				if v.vip && v.host != h {
					movedTo = v.host.Name()
				}
				if v.vip && v.host == h {
					return false, name + " still holds it", nil
				}
			}
			return movedTo != "", "no control plane holds it", nil
		})
	})
	return movedTo, err
}

// putBack waits until h's apiserver answers /readyz and every etcd member is healthy, puts h back
// into every haproxy, waits until each has seen it healthy, and, with release, removes keepalived's
// maintenance marker so h may hold the VIP again.
func (l *apiLB) putBack(ctx context.Context, h *Host, release bool) error {
	name := h.Name()
	start := time.Now()
	members := 0
	err := l.r.fx.Observe(ctx, name+"'s apiserver and etcd healthy", func(ctx context.Context) error {
		if err := h.waitReadyz(ctx, l.interval, l.timeout); err != nil {
			return err
		}
		var err error
		members, err = h.etcdMembersHealthy(ctx, l.timeout)
		return err
	})
	if err != nil {
		return err
	}
	views, err := l.views(ctx)
	if err != nil {
		return err
	}
	server := manifests.HAProxyBackend + "/" + name
	for _, v := range views {
		if v.balances(name) {
			if err := l.haproxy(ctx, v.host, "set server "+server+" state ready", "haproxy on "+v.host.Name()+": "+name+" back in service"); err != nil {
				return err
			}
		}
	}
	err = l.r.fx.Observe(ctx, "every haproxy sees "+name+" up", func(ctx context.Context) error {
		return kubeapi.Poll(ctx, l.interval, l.timeout, "every haproxy to see "+name+" up", func(ctx context.Context) (bool, string, error) {
			vs, err := l.views(ctx)
			if err != nil {
				return false, err.Error(), nil
			}
			for _, v := range vs {
				if v.balances(name) && !v.up(name) {
					return false, fmt.Sprintf("haproxy on %s: %s is %s", v.host.Name(), name, v.servers[name].Status), nil
				}
			}
			return true, "", nil
		})
	})
	if err != nil {
		return err
	}
	if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.APILB.Args("release", manifests.HAProxyOutMarker)},
		[]string{"unmark " + name + " (back in the API load balancer)"}); err != nil {
		return hostErr(name, fmt.Errorf("unmark: %w", err))
	}
	if release {
		if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.APILB.Args("release", manifests.KeepalivedMaintenanceFile)},
			[]string{"keepalived on " + name + " may hold the VIP again (maintenance marker removed)"}); err != nil {
			return hostErr(name, fmt.Errorf("end keepalived maintenance: %w", err))
		}
	}
	l.r.Log.Info(l.command+": back in the API load balancer", "host", name, "etcdHealthy", members, "seconds", time.Since(start).Seconds())
	return nil
}

// lastHolder moves the control plane that holds the VIP to the end of hosts: each host that holds
// it when its turn comes moves it, so the holder's turn comes when the others are done.
func (l *apiLB) lastHolder(ctx context.Context, hosts []*Host) ([]*Host, error) {
	if l == nil {
		return hosts, nil
	}
	views, err := l.views(ctx)
	if err != nil {
		return nil, err
	}
	var holder *Host
	for _, v := range views {
		if v.vip {
			holder = v.host
		}
	}
	out := make([]*Host, 0, len(hosts))
	for _, h := range hosts {
		if h != holder {
			out = append(out, h)
		}
	}
	if len(out) < len(hosts) {
		out = append(out, holder)
	}
	return out, nil
}

// finishLeftovers puts back every control plane an interrupted run left out of service (its marker
// is the proof: a user's own haproxy changes have none), before anything else is taken out.
func (l *apiLB) finishLeftovers(ctx context.Context) error {
	views, err := l.views(ctx)
	if err != nil {
		return err
	}
	for _, v := range views {
		out, err := l.leftOut(ctx, v)
		if err != nil {
			return err
		}
		if !out {
			continue
		}
		l.r.Log.Info(l.command+": an earlier run left this control plane out of the API load balancer; putting it back", "host", v.host.Name())
		if err := l.putBack(ctx, v.host, v.maintenance); err != nil {
			return err
		}
	}
	return nil
}

// leftOut reports whether an interrupted run left v's control plane out of the load balancer: its
// keepalived maintenance marker or its haproxy marker is there.
func (l *apiLB) leftOut(ctx context.Context, v lbView) (bool, error) {
	if v.maintenance {
		return true, nil
	}
	st, err := v.host.fileState(ctx, manifests.HAProxyOutMarker)
	if err != nil {
		return false, hostErr(v.host.Name(), err)
	}
	return st.Exists, nil
}

// vipSettle is how long the VIP must stay on one holder, with every apiserver up in every haproxy,
// before the load balancer counts as settled: keepalived may move the VIP again while control
// planes come back one after the other.
const vipSettle = 5 * time.Second

// settled waits until one control plane holds the VIP, every haproxy sees every apiserver it
// balances up, and both have stayed so for settle (vipSettle when 0): after every apiserver was
// down at once (a restore), clients reach the API through the VIP only then.
func (l *apiLB) settled(ctx context.Context, settle time.Duration) error {
	if settle == 0 {
		settle = vipSettle
	}
	var since time.Time
	holder := ""
	return l.r.fx.Observe(ctx, "the API's load balancer settled (one VIP holder, every apiserver up)", func(ctx context.Context) error {
		return kubeapi.Poll(ctx, l.interval, l.timeout, "the API's load balancer to settle", func(ctx context.Context) (bool, string, error) {
			views, err := l.views(ctx)
			if err != nil {
				return false, err.Error(), nil
			}
			var holders, down []string
			for _, v := range views {
				if v.vip {
					holders = append(holders, v.host.Name())
				}
				for name := range v.servers {
					if v.balances(name) && !v.up(name) {
						down = append(down, v.host.Name()+" sees "+name+" "+v.servers[name].Status)
					}
				}
			}
			if len(holders) != 1 || len(down) > 0 {
				since = time.Time{}
				return false, fmt.Sprintf("VIP on %v; %s", holders, strings.Join(down, ", ")), nil
			}
			if holders[0] != holder || since.IsZero() {
				holder, since = holders[0], time.Now()
			}
			if time.Since(since) < settle {
				return false, "the VIP has been on " + holder + " for " + time.Since(since).Round(time.Second).String(), nil
			}
			return true, "", nil
		})
	})
}

// outOfService runs fn with h out of the load balancer, and without the VIP when moveVIP (l may be
// nil: fn alone).
func (l *apiLB) outOfService(ctx context.Context, h *Host, why string, moveVIP bool, fn func(ctx context.Context) error) error {
	if l == nil {
		return fn(ctx)
	}
	if err := l.takeOut(ctx, h, why, moveVIP); err != nil {
		return err
	}
	if err := fn(ctx); err != nil {
		return fmt.Errorf("%w (%s stays out of the API load balancer until the next run of upgrade, certs renew or apply puts it back)", err, h.Name())
	}
	return l.putBack(ctx, h, moveVIP)
}
