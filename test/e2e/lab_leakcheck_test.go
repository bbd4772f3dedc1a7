//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/lab/hosts"
)

// machineSnapshot is what `lab down` must leave exactly as `lab up` found it.
type machineSnapshot struct {
	Sysctls     map[string]string // `sysctl -a` without counters (sysctlCounters)
	Links       []string          // network interfaces (bridges, veths)
	Nft         string            // `nft list ruleset`
	Iptables    string            // `iptables-save`, without comments and packet counters
	Mounts      []string          // mount points of this mount namespace
	Cgroups     []string          // cgroups down to depth 2 in every hierarchy (libpod_parent, k8s.io, …)
	Hierarchies []string          // /proc/cgroups: controller and hierarchy id (extra v1 hierarchies)
	Paths       map[string]bool   // podman/netavark/runc bookkeeping outside the lab directory
	Processes   []string          // conmon, apt-cacher-ng, netavark, aardvark-dns, podman, the mirror, or anything naming the lab dir
	labDir      string
}

// sysctlCounters change on their own (statistics, random values), so the diff ignores them.
func sysctlCounters() map[string]bool {
	return map[string]bool{
		"fs.dentry-state": true, "fs.file-nr": true, "fs.inode-nr": true, "fs.inode-state": true,
		"fs.aio-nr": true, "kernel.ns_last_pid": true, "kernel.random.uuid": true,
		"kernel.random.entropy_avail": true, "kernel.pty.nr": true, "net.netfilter.nf_conntrack_count": true,
	}
}

func takeMachineSnapshot(t *testing.T, l *hosts.Lab) machineSnapshot {
	t.Helper()
	s := machineSnapshot{Sysctls: map[string]string{}, Paths: map[string]bool{}, labDir: l.Dir()}
	out := runOut(t, "sysctl", "-a")
	counters := sysctlCounters()
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, " = ")
		if !ok || counters[k] || strings.HasPrefix(k, "fs.quota.") {
			continue
		}
		s.Sysctls[k] = v
	}
	entries, _ := os.ReadDir("/sys/class/net")
	for _, e := range entries {
		s.Links = append(s.Links, e.Name())
	}
	s.Nft = runOut(t, "nft", "list", "ruleset")
	counter := regexp.MustCompile(`\[\d+:\d+\]`)
	for _, line := range strings.Split(runOut(t, "iptables-save"), "\n") {
		if !strings.HasPrefix(line, "#") {
			s.Iptables += counter.ReplaceAllString(line, "") + "\n"
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		fatal(t, err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			s.Mounts = append(s.Mounts, f[4])
		}
	}
	sort.Strings(s.Mounts)
	s.Cgroups = cgroupDirs(t)
	pc, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		fatal(t, err)
	}
	for _, line := range strings.Split(string(pc), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			s.Hierarchies = append(s.Hierarchies, f[0]+" "+f[1])
		}
	}
	for _, p := range []string{"/run/netns", "/run/containers", "/run/libpod", "/run/runc", "/var/lib/containers"} {
		_, err := os.Lstat(p)
		s.Paths[p] = err == nil
	}
	s.Processes = labProcesses(l.Dir())
	return s
}

// checkLabStoreEmpty reads the lab's podman store for containers and networks. It reads podman's
// files rather than running podman, which would itself create /run/containers on the machine.
func checkLabStoreEmpty(t *testing.T, l *hosts.Lab) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(l.Podman().Dir, "root", "overlay-containers", "containers.json"))
	if err != nil && !os.IsNotExist(err) {
		errorf(t, "lab store: %v", err)
	}
	if c := strings.TrimSpace(string(data)); c != "" && c != "[]" {
		errorf(t, "containers left in the lab store: %s", c)
	}
	nets, _ := filepath.Glob(filepath.Join(l.Podman().NetworkConfigDir(), "*.json"))
	if len(nets) > 0 {
		errorf(t, "networks left in the lab store: %v", nets)
	}
}

// cgroupDirs lists cgroups two levels deep in every hierarchy, plus the whole subtree of this test's
// own cgroups (where a runtime might nest what it starts). The machine's init keeps a memory cgroup per
// command it runs (process_api/<id>); other sessions' commands make those come and go, so they are
// left out, except this process's own.
func cgroupDirs(t *testing.T) []string {
	t.Helper()
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		fatal(t, err)
	}
	var own []string
	for _, line := range strings.Split(string(self), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[2] == "/" {
			continue
		}
		for _, c := range strings.Split(strings.TrimPrefix(parts[1], "name="), ",") {
			if c != "" {
				own = append(own, filepath.Join("/sys/fs/cgroup", c, parts[2]))
			}
		}
	}
	var out []string
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hier {
		for _, pattern := range []string{"/*", "/*/*"} {
			dirs, _ := filepath.Glob(h + pattern)
			for _, d := range dirs {
				if fi, err := os.Lstat(d); err == nil && fi.IsDir() && !strings.Contains(d, "/process_api/") {
					out = append(out, d)
				}
			}
		}
	}
	for _, o := range own {
		_ = filepath.WalkDir(o, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// labProcesses lists processes of the kinds the lab starts, as "comm args".
func labProcesses(labDir string) []string {
	kinds := map[string]bool{"conmon": true, "apt-cacher-ng": true, "netavark": true, "aardvark-dns": true, "podman": true}
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil {
			continue
		}
		// A zombie has exited already; only its exit status waits for this machine's PID 1, which
		// reaps late (earlier labs in the same test run leave some behind). It holds nothing.
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
				continue
			}
		}
		args, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		c := strings.TrimSpace(string(comm))
		a := strings.ReplaceAll(string(args), "\x00", " ")
		if kinds[c] || strings.Contains(a, labDir) || strings.Contains(a, "mirror serve") {
			out = append(out, c+" "+a)
		}
	}
	sort.Strings(out)
	return out
}

// compareMachineSnapshots fails the test for every difference. Background processes are reaped by the
// machine's init a little after they exit, so their check waits up to 20 s.
func compareMachineSnapshots(t *testing.T, before, after machineSnapshot) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !equalStrings(before.Processes, after.Processes) && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		after.Processes = labProcesses(after.labDir)
	}
	diffList(t, "processes", before.Processes, after.Processes)
	for k, v := range before.Sysctls {
		if av, ok := after.Sysctls[k]; !ok {
			errorf(t, "sysctl %s vanished (was %q)", k, v)
		} else if av != v {
			errorf(t, "sysctl %s = %q, was %q", k, av, v)
		}
	}
	for k, v := range after.Sysctls {
		if _, ok := before.Sysctls[k]; !ok {
			errorf(t, "sysctl %s = %q appeared", k, v)
		}
	}
	diffList(t, "network interfaces", before.Links, after.Links)
	if before.Nft != after.Nft {
		errorf(t, "nft ruleset changed:\nbefore:\n%s\nafter:\n%s", before.Nft, after.Nft)
	}
	if before.Iptables != after.Iptables {
		errorf(t, "iptables rules changed:\nbefore:\n%s\nafter:\n%s", before.Iptables, after.Iptables)
	}
	diffList(t, "mounts", before.Mounts, after.Mounts)
	diffList(t, "cgroups", before.Cgroups, after.Cgroups)
	diffList(t, "cgroup hierarchies", before.Hierarchies, after.Hierarchies)
	for p, was := range before.Paths {
		if after.Paths[p] != was {
			errorf(t, "%s: existed %v before, %v after", p, was, after.Paths[p])
		}
	}
}

func diffList(t *testing.T, what string, before, after []string) {
	t.Helper()
	b, a := map[string]bool{}, map[string]bool{}
	for _, x := range before {
		b[x] = true
	}
	for _, x := range after {
		a[x] = true
	}
	for _, x := range after {
		if !b[x] {
			errorf(t, "%s: %q left behind", what, x)
		}
	}
	for _, x := range before {
		if !a[x] {
			errorf(t, "%s: %q was there before and is gone", what, x)
		}
	}
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

func runOut(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		fatalf(t, "%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}
