package hosts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"installer.dev/installer/lab/aptcache"
)

// Down removes everything the lab created, by the names and PIDs it recorded: hosts (after a clean
// stop of their Kubernetes pods), the apt cache and mirror processes, networks and their bridges,
// leftover cgroups and bookkeeping directories, and puts ip_forward back. The host image stays in the
// lab's podman store (as does the key), so the next Up starts in seconds; the installer's state dir
// (.lab/state) goes with the cluster it described. Down without a lab is a no-op.
func (l *Lab) Down(ctx context.Context) error {
	st, err := l.LoadState()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for name := range st.Cut {
		_ = l.heal(ctx, st, name) // a cut veth goes with its container anyway; keep state honest
	}
	var names []string
	var wg sync.WaitGroup
	for _, h := range st.Hosts {
		if !l.pm.ContainerExists(ctx, h.Name) {
			continue
		}
		names = append(names, h.Name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.quiesce(ctx, h.Name) // else stopping a host with pods hangs for 30 s
		}()
	}
	wg.Wait()
	if len(names) > 0 {
		if _, err := l.pm.Run(ctx, append([]string{"rm", "-f", "-t", "5"}, names...)...); err != nil {
			errs = append(errs, fmt.Errorf("remove hosts: %w", err))
		}
	}
	if st.MirrorStarted && l.mirror != nil {
		if err := l.mirror.Stop(ctx, filepath.Join(l.dir, "mirror")); err != nil {
			errs = append(errs, fmt.Errorf("stop mirror: %w", err))
		}
	} else if st.MirrorStarted {
		errs = append(errs, fmt.Errorf("the mirror was started but this lab has no mirror hook to stop it"))
	}
	if st.AptCachePID > 0 {
		if err := aptcache.Stop(ctx, filepath.Join(l.dir, "aptcache"), st.AptCachePID); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range []Network{st.Public, st.Private} {
		if n.Name == "" {
			continue
		}
		if _, err := l.pm.Run(ctx, "network", "exists", n.Name); err == nil {
			if _, err := l.pm.Run(ctx, "network", "rm", "-f", n.Name); err != nil {
				errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			}
		}
		// netavark removes the bridge with its last container; make sure, by the lab's own name only.
		if _, err := os.Stat("/sys/class/net/" + n.Bridge); err == nil {
			if out, err := exec.CommandContext(ctx, "ip", "link", "del", n.Bridge).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("delete bridge %s: %w: %s", n.Bridge, err, strings.TrimSpace(string(out))))
			}
		}
	}
	if err := removeNetavarkRules(ctx, st); err != nil {
		errs = append(errs, err)
	}
	if err := restoreMachine(ctx, st.Baseline); err != nil {
		errs = append(errs, err)
	}
	for _, p := range []string{filepath.Join(l.dir, "volumes"), filepath.Join(l.dir, "aptcache"),
		filepath.Join(l.dir, "mirror"), l.mirrorInfoPath(), filepath.Join(l.dir, "podman", "runroot"),
		filepath.Join(l.dir, "podman", "tmp"), filepath.Join(l.dir, "podman", "net"), l.KnownHostsFile(), l.SpecFile(),
		l.StateDir()} { // the installer's state (PKI, admin.conf) belonged to the cluster that is gone
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, fmt.Errorf("cleanup %s: %w", p, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab down (state kept in %s, run down again): %w", l.statePath(), err)
	}
	if err := os.Remove(l.statePath()); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	return nil
}

// quiesce stops the kubelet and removes pods inside a running host, if there are any.
func (l *Lab) quiesce(ctx context.Context, name string) {
	if state, err := l.pm.State(ctx, name); err != nil || state != "running" {
		return
	}
	_, _ = l.pm.Exec(ctx, name, "sh", "-c",
		`systemctl stop kubelet 2>/dev/null; if command -v crictl >/dev/null && [ -S /run/containerd/containerd.sock ]; then
  crictl --timeout 5s stopp $(crictl --timeout 5s pods -q) >/dev/null 2>&1; crictl --timeout 5s rmp -a -f >/dev/null 2>&1; fi; true`)
}

// removeNetavarkRules deletes firewall rules netavark made for the lab's subnets. On Debian 12,
// --internal networks get none (measured); this stays as the guard for other netavark versions.
func removeNetavarkRules(ctx context.Context, st *State) error {
	if _, err := exec.LookPath("iptables-save"); err != nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, "iptables-save").Output()
	if err != nil {
		return nil // no tables at all
	}
	var errs []error
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "*") {
			table = line[1:]
			continue
		}
		if !strings.HasPrefix(line, "-A ") || !mentionsLab(line, st) {
			continue
		}
		args := append([]string{"-t", table, "-D"}, strings.Fields(line)[1:]...)
		if o, err := exec.CommandContext(ctx, "iptables", args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(o))))
		}
	}
	return errors.Join(errs...)
}

func mentionsLab(line string, st *State) bool {
	for _, n := range []Network{st.Public, st.Private} {
		if n.Prefix != "" && (strings.Contains(line, n.Subnet()) || strings.Contains(line, " "+n.Bridge+" ")) {
			return true
		}
	}
	return false
}
