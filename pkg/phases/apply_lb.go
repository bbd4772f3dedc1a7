package phases

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/drift"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// lbMembers compares each control plane's keepalived-haproxy files with the spec's: when the
// control-plane set changed, haproxy's backends and keepalived's priorities follow it. Control
// planes this apply joins get theirs from the join.
func (o ApplyObserve) lbMembers(ctx context.Context, r *Run) error {
	if r.Cluster.Spec.LoadBalancer.Type != v1alpha1.LoadBalancerKeepalivedHAProxy {
		return nil
	}
	d := o.Diff
	return ForEachHost(ctx, o.nodes(r), r.Concurrency, func(ctx context.Context, h *Host) error {
		if h.Spec.Role != v1alpha1.RoleControlPlane {
			return nil
		}
		files, err := hostFiles(h, &r.Cluster.Spec, r.Inputs, h.Facts.AdminConfPresent)
		if err != nil {
			return err
		}
		var differ []manifests.File
		var lines []string
		for _, f := range files.HAEndpoint {
			changed, err := h.fileDiffers(ctx, f)
			if err != nil {
				return err
			}
			if !changed {
				continue
			}
			differ = append(differ, f)
			if f.Path != manifests.HAProxyConfigPath {
				// keepalived.conf holds the VRRP password: its path only.
				lines = append(lines, "~ "+f.Path)
				continue
			}
			have, err := h.ReadFile(ctx, f.Path)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("read %s: %w", f.Path, err)
			}
			added, removed := backendChanges(haproxyServers(have), haproxyServers(f.Content))
			for _, s := range added {
				lines = append(lines, "+ haproxy backend "+s)
			}
			for _, s := range removed {
				lines = append(lines, "- haproxy backend "+s)
			}
			if len(added)+len(removed) == 0 {
				lines = append(lines, "~ "+f.Path)
			}
		}
		if len(differ) == 0 {
			return nil
		}
		d.mu.Lock()
		d.lb[h.Name()] = differ
		d.mu.Unlock()
		d.add(drift.Change{Host: h.Name(), Component: "API load balancer", Lines: lines,
			Cost: "files written once hosts are joined and removed; the kubelet restarts haproxy and keepalived on their new configuration hash (a VIP holder goes last and gives up the VIP first)"})
		return nil
	})
}

// haproxyServers are the server names of haproxy.cfg's API backend, by name with their address.
func haproxyServers(cfg []byte) map[string]string {
	out := map[string]string{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case f[0] == "backend":
			in = len(f) > 1 && f[1] == manifests.HAProxyBackend
		case f[0] == "frontend" || f[0] == "defaults" || f[0] == "global" || f[0] == "listen":
			in = false
		case in && f[0] == "server" && len(f) >= 3:
			out[f[1]] = f[2]
		}
	}
	return out
}

// backendChanges: servers added (new, or at a new address) and removed, sorted.
func backendChanges(have, want map[string]string) (added, removed []string) {
	for _, n := range slices.Sorted(maps.Keys(want)) {
		if have[n] != want[n] {
			added = append(added, n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(have)) {
		if _, ok := want[n]; !ok {
			removed = append(removed, n)
		}
	}
	return added, removed
}

// ApplyLBMembers makes every control plane's haproxy balance exactly the spec's control planes (and
// keepalived's priorities follow their order), last, once hosts are joined and removed: one
// control plane at a time, the VIP holder last after giving up the VIP (keepalived's nopreempt keeps
// it where it went). Each is done once its haproxy runs the new configuration with every control
// plane of the spec up.
type ApplyLBMembers struct {
	Diff    *ApplyDiff
	Options ApplyOptions
}

func (ApplyLBMembers) Name() string { return "apply/load-balancer" }

func (a ApplyLBMembers) ShouldRun(*Run) (bool, string) {
	if a.Diff.observed && len(a.Diff.lb) == 0 {
		return false, "every haproxy balances the spec's control planes"
	}
	return true, ""
}

func (a ApplyLBMembers) Run(ctx context.Context, r *Run) error {
	d, o := a.Diff, a.Options.withDefaults()
	if !d.observed {
		return errNotObserved
	}
	var hosts []*Host
	for _, h := range r.TargetsWithRole(v1alpha1.RoleControlPlane) {
		if len(d.lb[h.Name()]) > 0 {
			hosts = append(hosts, h)
		}
	}
	lb := newAPILB(r, "apply", o.Timeout)
	hosts, err := lb.lastHolder(ctx, hosts)
	if err != nil {
		return err
	}
	var want []string
	for _, cp := range r.Cluster.Spec.ControlPlanes() {
		want = append(want, cp.Name)
	}
	for _, h := range hosts {
		start := time.Now()
		held := false
		if lb != nil {
			v, err := lb.view(ctx, h)
			if err != nil {
				return err
			}
			if v.vip && v.keepalived {
				if _, err := lb.moveVIPAway(ctx, h, true); err != nil {
					return err
				}
				held = true
			}
		}
		if _, err := h.UploadAll(ctx, d.lb[h.Name()]); err != nil {
			return hostErr(h.Name(), err)
		}
		err := r.fx.Observe(ctx, "haproxy on "+h.Name()+" balances "+strings.Join(want, ", "), func(ctx context.Context) error {
			return waitHAProxyBalances(ctx, h, want, o.pollInterval, o.Timeout)
		})
		if err != nil {
			return err
		}
		if held {
			if _, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.APILB.Args("release", manifests.KeepalivedMaintenanceFile)},
				[]string{"keepalived on " + h.Name() + " may hold the VIP again (maintenance marker removed)"}); err != nil {
				return hostErr(h.Name(), fmt.Errorf("end keepalived maintenance: %w", err))
			}
		}
		r.fx.Done("load balancer follows the control planes", start, "host", h.Name())
	}
	return nil
}

// waitHAProxyBalances polls h's haproxy until it balances exactly want (its restart on the new
// configuration done), each up.
func waitHAProxyBalances(ctx context.Context, h *Host, want []string, interval, timeout time.Duration) error {
	return kubeapi.Poll(ctx, interval, timeout, "haproxy on "+h.Name()+" to balance "+strings.Join(want, ", "), func(ctx context.Context) (bool, string, error) {
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.APILB.Args("haproxy", manifests.HAProxyAdminSocket, "show stat")})
		if err != nil {
			return false, err.Error(), nil
		}
		servers, err := parseHAProxyStat(string(res.Stdout), manifests.HAProxyBackend)
		if err != nil {
			return false, err.Error(), nil
		}
		var have, notUp []string
		for _, n := range slices.Sorted(maps.Keys(servers)) {
			have = append(have, n)
			if servers[n].Status != "UP" {
				notUp = append(notUp, n+" "+servers[n].Status)
			}
		}
		if !slices.Equal(have, slices.Sorted(slices.Values(want))) {
			return false, "it balances " + strings.Join(have, ", "), nil
		}
		return len(notUp) == 0, strings.Join(notUp, ", "), nil
	})
}
