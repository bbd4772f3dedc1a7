package facts

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// Gather reads every fact of one host in one remote command, pkg/scripts' facts.sh (as root:
// product_uuid is root-only). It also measures the host's clock against the local one.
func Gather(ctx context.Context, r ssh.Runner) (Host, error) {
	before := time.Now()
	res, err := r.Run(ctx, ssh.Cmd{Args: scripts.Facts.Args(), Sudo: true, Idempotent: true})
	after := time.Now()
	if err != nil {
		return Host{}, fmt.Errorf("gather facts: %w", err)
	}
	h, err := Parse(string(res.Stdout))
	if err != nil {
		return Host{}, fmt.Errorf("gather facts: %w", err)
	}
	h.Name = r.Host()
	if h.RemoteTime != 0 {
		mid := before.Add(after.Sub(before) / 2)
		h.ClockSkew = time.Duration((h.RemoteTime - float64(mid.UnixNano())/1e9) * float64(time.Second))
	}
	return h, nil
}

// Parse reads the output of the facts script (facts.sh).
func Parse(out string) (Host, error) {
	sections := map[string][]string{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "==") {
			cur = strings.TrimPrefix(line, "==")
			sections[cur] = sections[cur][:0:0]
			continue
		}
		if cur != "" {
			sections[cur] = append(sections[cur], line)
		}
	}
	if _, ok := sections["end"]; !ok {
		return Host{}, fmt.Errorf("facts output is incomplete (no end marker); got %d bytes", len(out))
	}
	first := func(name string) string {
		if l := sections[name]; len(l) > 0 {
			return strings.TrimSpace(l[0])
		}
		return ""
	}

	var h Host
	h.OS = parseOSRelease(sections["os-release"])
	h.Arch = normalizeArch(first("arch"))
	h.Hostname = first("hostname")
	switch first("cgroupfs") {
	case "cgroup2fs":
		h.CgroupVersion = 2
	case "tmpfs":
		h.CgroupVersion = 1
	}
	h.InitSystem = first("init")
	h.Interfaces = parseAddrs(sections["addrs"])
	h.DefaultRouteInterface = parseDefaultRoute(sections["default-route"])
	h.ProductUUID = strings.ToLower(first("product-uuid"))
	h.SwapEnabled = len(sections["swaps"]) > 1 // the first line is the header
	h.KubeadmRunning = len(sections["kubeadm-running"]) > 0
	h.ContainerdVersion = ParseContainerdVersion(first("containerd"))
	h.RuncVersion = parseRuncVersion(first("runc"))
	h.KubeletVersion = lastField(first("kubelet"))
	h.KubeadmVersion = first("kubeadm")
	h.KubectlVersion = parseKubectlVersion(sections["kubectl"])
	h.Packages, h.HeldPackages = parsePackages(sections["packages"])
	for _, f := range sections["files"] {
		switch strings.TrimSpace(f) {
		case constants.KubeletConf:
			h.KubeletConfPresent = true
		case constants.AdminConf:
			h.AdminConfPresent = true
		}
	}
	h.Cluster = parseClusterFiles(sections)
	h.ListeningPorts = parseListening(sections["listening"])
	if t, err := strconv.ParseFloat(first("time"), 64); err == nil {
		h.RemoteTime = t
	}
	return h, nil
}

func parseOSRelease(lines []string) OS {
	var o OS
	for _, l := range lines {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			o.ID = v
		case "VERSION_ID":
			o.VersionID = v
		}
	}
	switch o.ID {
	case "debian", "ubuntu":
		o.PackageManager = Apt
	case "rhel", "rocky", "almalinux", "centos", "fedora", "ol":
		o.PackageManager = DNF
		if major, _, _ := strings.Cut(o.VersionID, "."); major == "7" {
			o.PackageManager = YUM
		}
	}
	return o
}

func normalizeArch(uname string) string {
	switch uname {
	case "x86_64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	}
	return uname
}

// parseAddrs reads `ip -o addr show`: "2: eth0    inet 10.0.0.1/24 brd ... scope global eth0".
func parseAddrs(lines []string) []Interface {
	var out []Interface
	index := map[string]int{}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 || (f[2] != "inet" && f[2] != "inet6") {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if at := strings.IndexByte(name, '@'); at >= 0 {
			name = name[:at] // veth peers: "eth0@if12"
		}
		i, ok := index[name]
		if !ok {
			i = len(out)
			index[name] = i
			out = append(out, Interface{Name: name})
		}
		out[i].Addrs = append(out[i].Addrs, f[3])
	}
	return out
}

// parseDefaultRoute reads `ip -4 route show default`: "default via 10.0.0.1 dev eth0 ...".
func parseDefaultRoute(lines []string) string {
	for _, l := range lines {
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dev" {
				return f[i+1]
			}
		}
	}
	return ""
}

// ParseContainerdVersion reads "containerd github.com/containerd/containerd 1.6.20~ds1 <rev>" or
// "containerd containerd.io v1.7.25 <rev>" and returns "1.6.20" / "1.7.25".
func ParseContainerdVersion(s string) string {
	f := strings.Fields(s)
	if len(f) < 3 {
		return ""
	}
	return upstreamVersion(f[2])
}

// upstreamVersion drops a leading "v" and a distribution's suffix ("1.6.20~ds1" -> "1.6.20").
func upstreamVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "~+-"); i >= 0 {
		v = v[:i]
	}
	return v
}

// parseRuncVersion reads "runc version 1.5.3" or Debian's "runc version 1.1.5+ds1" and returns
// "1.5.3" / "1.1.5".
func parseRuncVersion(s string) string {
	f := strings.Fields(s)
	if len(f) < 3 || f[0] != "runc" || f[1] != "version" {
		return ""
	}
	return upstreamVersion(f[2])
}

// parseKubectlVersion reads "Client Version: v1.34.10" (other lines such as Kustomize are ignored).
func parseKubectlVersion(lines []string) string {
	for _, l := range lines {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Client Version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// parsePackages reads dpkg-query's "<status> <name> <version>" lines ("ii kubeadm 1.34.10-1.1", "hi"
// when held; rpm's lines are written the same way with "ii"). Only installed packages count: the
// second status letter is "i"; removed ones ("rc") are absent.
func parsePackages(lines []string) (map[string]string, []string) {
	var pkgs map[string]string
	var held []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 || len(f[0]) < 2 || f[0][1] != 'i' {
			continue
		}
		if pkgs == nil {
			pkgs = map[string]string{}
		}
		pkgs[f[1]] = f[2]
		if f[0][0] == 'h' {
			held = append(held, f[1])
		}
	}
	return pkgs, held
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// parseListening reads local addresses ("0.0.0.0:22", "[::]:6443", "127.0.0.1:10248") into ports.
func parseListening(lines []string) []int {
	seen := map[int]bool{}
	var ports []int
	for _, l := range lines {
		l = strings.TrimSpace(l)
		i := strings.LastIndexByte(l, ':')
		if i < 0 {
			continue
		}
		p, err := strconv.Atoi(l[i+1:])
		if err != nil || seen[p] {
			continue
		}
		seen[p] = true
		ports = append(ports, p)
	}
	return ports
}

// parseClusterFiles reads the cluster-paths, pki-sums ("<sha256>  <name>"), cluster-ca and
// init-marker sections.
func parseClusterFiles(sections map[string][]string) ClusterFiles {
	var c ClusterFiles
	for _, l := range sections["cluster-paths"] {
		if l = strings.TrimSpace(l); l != "" {
			c.Present = append(c.Present, l)
		}
	}
	for _, l := range sections["pki-sums"] {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		if c.PKISums == nil {
			c.PKISums = map[string]string{}
		}
		c.PKISums[f[1]] = f[0]
	}
	if ca := sections["cluster-ca"]; len(ca) > 0 {
		c.CACert = []byte(strings.Join(ca, "\n") + "\n")
	}
	if m := sections["init-marker"]; len(m) > 0 {
		c.InitMarker = ParseMarker(m)
	}
	if m := sections["join-marker"]; len(m) > 0 {
		c.JoinMarker = ParseMarker(m)
	}
	return c
}
