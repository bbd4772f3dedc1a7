package hosts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// outsidePaths are created on the machine by podman, netavark and runc even though podman's own state
// lives in .lab; Down removes the ones that were not there before Up (and only when empty or ours).
func outsidePaths() []string {
	return []string{"/run/netns", "/run/containers", "/run/libpod", "/run/runc", "/var/lib/containers"}
}

// cgroupLeftovers are the cgroups podman (cgroupfs manager) makes at the root of every hierarchy.
func cgroupLeftovers() []string { return []string{"libpod_parent"} }

func recordBaseline() (Baseline, error) {
	fwd, err := os.ReadFile(ipForwardPath)
	if err != nil {
		return Baseline{}, fmt.Errorf("read ip_forward: %w", err)
	}
	b := Baseline{IPForward: strings.TrimSpace(string(fwd)), Existed: map[string]bool{}}
	for _, p := range outsidePaths() {
		b.Existed[p] = exists(p)
	}
	for _, h := range cgroupHierarchies() {
		for _, c := range cgroupLeftovers() {
			p := filepath.Join(h, c)
			b.Existed[p] = exists(p)
		}
	}
	return b, nil
}

// restoreMachine undoes what podman/netavark changed on the machine outside .lab.
func restoreMachine(ctx context.Context, b Baseline) error {
	var errs []error
	if b.IPForward != "" {
		// netavark sets ip_forward=1 even for internal networks.
		if err := os.WriteFile(ipForwardPath, []byte(b.IPForward+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore ip_forward: %w", err))
		}
	}
	for _, h := range cgroupHierarchies() {
		for _, c := range cgroupLeftovers() {
			p := filepath.Join(h, c)
			if b.Existed[p] || !exists(p) {
				continue
			}
			if err := removeCgroupTree(ctx, p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, p := range outsidePaths() {
		if known, ok := b.Existed[p]; !ok || known || !exists(p) {
			continue
		}
		if err := removeOutsidePath(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeOutsidePath(p string) error {
	if p == "/run/netns" {
		// ip-netns style: a bind mount of itself, shared; network namespaces of removed containers are gone.
		entries, err := os.ReadDir(p)
		if err != nil {
			return fmt.Errorf("cleanup %s: %w", p, err)
		}
		if len(entries) > 0 {
			return fmt.Errorf("cleanup %s: still holds %d network namespaces", p, len(entries))
		}
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("cleanup %s: unmount: %w", p, err)
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("cleanup %s: %w", p, err)
		}
		return nil
	}
	// The others hold only podman's/runc's bookkeeping (locks, blob cache, state of removed containers).
	if mounted, err := hasMountUnder(p); err != nil || mounted {
		return fmt.Errorf("cleanup %s: something is still mounted below it (%v)", p, err)
	}
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("cleanup %s: %w", p, err)
	}
	return nil
}

func cgroupHierarchies() []string {
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() { // skip cpu -> cpu,cpuacct links
			out = append(out, p)
		}
	}
	return out
}

// removeCgroupTree removes a cgroup and its children, deepest first. A just-emptied cgroup can be busy
// for a moment (dying tasks), so it retries briefly.
func removeCgroupTree(ctx context.Context, root string) error {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	for _, d := range dirs {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

func hasMountUnder(p string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == p || strings.HasPrefix(f[4], p+"/")) {
			return true, nil
		}
	}
	return false, nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
