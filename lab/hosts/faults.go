package hosts

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Stop shuts a host down cleanly: kubelet stopped and pods removed first (otherwise systemd waits out
// their stop timeouts), then the container stops, normally in under 3 s.
func (l *Lab) Stop(ctx context.Context, name string) error {
	st, err := l.LoadState()
	if err != nil {
		return err
	}
	if _, err := st.Host(name); err != nil {
		return err
	}
	l.quiesce(ctx, name)
	if _, err := l.pm.Run(ctx, "stop", "-t", "10", name); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// Kill is a power loss: the host's processes get SIGKILL, nothing shuts down.
func (l *Lab) Kill(ctx context.Context, name string) error {
	st, err := l.LoadState()
	if err != nil {
		return err
	}
	if _, err := st.Host(name); err != nil {
		return err
	}
	if _, err := l.pm.Run(ctx, "kill", "--signal", "KILL", name); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	// podman marks it exited once conmon reaps it; wait so a Start right after works.
	if _, err := l.pm.Run(ctx, "wait", name); err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	return nil
}

// Start boots a stopped or killed host and waits until it answers SSH; its keys, addresses and MACs
// are unchanged, so known_hosts stays valid.
func (l *Lab) Start(ctx context.Context, name string) error {
	st, err := l.LoadState()
	if err != nil {
		return err
	}
	h, err := st.Host(name)
	if err != nil {
		return err
	}
	if _, err := l.pm.Run(ctx, "start", name); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	delete(st.Cut, name) // new veths come up connected
	if err := l.saveState(st); err != nil {
		return err
	}
	return l.waitReady(ctx, st, []Host{h})
}

// Cut drops all of a host's traffic on both networks by taking its host-side veths down, as if its
// cables were pulled; the host itself keeps running. Only the lab's own veths are touched.
func (l *Lab) Cut(ctx context.Context, name string) error {
	st, err := l.LoadState()
	if err != nil {
		return err
	}
	if _, err := st.Host(name); err != nil {
		return err
	}
	veths, err := l.hostVeths(ctx, st, name)
	if err != nil {
		return err
	}
	for _, v := range veths {
		if err := ipLink(ctx, "set", "dev", v, "down"); err != nil {
			return fmt.Errorf("cut %s: %w", name, err)
		}
	}
	if st.Cut == nil {
		st.Cut = map[string][]string{}
	}
	st.Cut[name] = veths
	return l.saveState(st)
}

// Heal restores the traffic Cut dropped.
func (l *Lab) Heal(ctx context.Context, name string) error {
	st, err := l.LoadState()
	if err != nil {
		return err
	}
	if _, err := st.Host(name); err != nil {
		return err
	}
	if err := l.heal(ctx, st, name); err != nil {
		return err
	}
	return l.saveState(st)
}

func (l *Lab) heal(ctx context.Context, st *State, name string) error {
	veths, err := l.hostVeths(ctx, st, name)
	if err != nil {
		return err
	}
	for _, v := range veths {
		if err := ipLink(ctx, "set", "dev", v, "up"); err != nil {
			return fmt.Errorf("heal %s: %w", name, err)
		}
	}
	delete(st.Cut, name)
	return nil
}

// hostVeths finds the machine-side ends of a running host's interfaces: each container interface's
// iflink is the ifindex of its peer, and that peer must sit on one of the lab's bridges.
func (l *Lab) hostVeths(ctx context.Context, st *State, name string) ([]string, error) {
	out, err := l.pm.Exec(ctx, name, "cat", "/sys/class/net/"+PublicInterface+"/iflink",
		"/sys/class/net/"+PrivateInterface+"/iflink")
	if err != nil {
		return nil, fmt.Errorf("host %s interfaces: %w", name, err)
	}
	bridges := map[string]bool{st.Public.Bridge: true, st.Private.Bridge: true}
	var veths []string
	for _, f := range strings.Fields(out) {
		idx, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("host %s: iflink %q: %w", name, f, err)
		}
		v, err := ifaceByIndex(idx)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", name, err)
		}
		master, err := os.Readlink(filepath.Join("/sys/class/net", v, "master"))
		if err != nil || !bridges[filepath.Base(master)] {
			return nil, fmt.Errorf("host %s: %s is not on a lab bridge", name, v)
		}
		veths = append(veths, v)
	}
	if len(veths) != 2 {
		return nil, fmt.Errorf("host %s: found %d veths, want 2", name, len(veths))
	}
	return veths, nil
}

func ifaceByIndex(idx int) (string, error) {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/sys/class/net", e.Name(), "ifindex"))
		if err == nil && strings.TrimSpace(string(data)) == strconv.Itoa(idx) {
			return e.Name(), nil
		}
	}
	return "", fmt.Errorf("no interface with index %d", idx)
}

func ipLink(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"link"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip link %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
