package simhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/scripts"
)

// registerScripts registers the handlers of pkg/scripts' scripts, by name ($0). Each does to the
// model what the script does to a Debian host and prints what it prints.
func (h *Host) registerScripts() {
	for _, s := range []struct {
		script scripts.Script
		fn     Handler
	}{
		{scripts.Facts, func([]string) Reply { return Out(h.factsOutput()) }},
		{scripts.FileState, h.fileState},
		{scripts.FileStates, h.fileStates},
		{scripts.SwapOff, h.swapOff},
		{scripts.MissingModules, func([]string) Reply { return Out("") }},
		{scripts.UnitState, h.unitStateScript},
		{scripts.Installed, h.installedScript},
		{scripts.Download, h.download},
		{scripts.Apt, h.apt},
		{scripts.DNF, h.dnf},
		{scripts.FetchKey, h.fetchKey},
		{scripts.Etcd, h.etcdScript},
		{scripts.ManifestImages, h.manifestImages},
		{scripts.KubeletPods, h.kubeletPods},
		{scripts.Processes, h.processes},
		{scripts.ResetHost, h.resetHost},
		{scripts.ResetFirewall, h.resetFirewall},
		{scripts.APILB, h.apiLBScript},
	} {
		h.HandleScript(s.script.Name, s.fn)
	}
}

func (h *Host) swapOff([]string) Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.swap = false
	return Out("")
}

// unitStateScript is unit-state.sh UNIT: "enabled active", "disabled inactive"...
func (h *Host) unitStateScript(args []string) Reply {
	enabled, active := h.unitState(args[0])
	return Out(word(enabled, "enabled", "disabled") + " " + word(active, "active", "inactive") + "\n")
}

// manifestImages is manifest-images.sh FILE...: "<file> <first image>" each.
func (h *Host) manifestImages(files []string) Reply {
	var b strings.Builder
	for _, p := range files {
		img := ""
		if f, ok := h.File(p); ok {
			img = firstImage(f.Content)
		}
		fmt.Fprintf(&b, "%s %s\n", p, img)
	}
	return Out(b.String())
}

// SetLeftoverKubeadm makes a kubeadm process ("PID COMMAND LINE") run for the next polls process
// listings (processes.sh), as one a killed installer left.
func (h *Host) SetLeftoverKubeadm(line string, polls int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leftover, h.leftoverPolls = line, polls
}

// processes is processes.sh NAME...: the leftover kubeadm while it runs.
func (h *Host) processes(args []string) Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.leftoverPolls == 0 || !slices.Contains(args, "kubeadm") {
		return Out("")
	}
	h.leftoverPolls--
	return Out(h.leftover + "\n")
}

// kubeletPods is kubelet-pods.sh: the kubelet's start and the control plane's static pod
// sandboxes, which the simulated kubelet re-creates just after it started.
func (h *Host) kubeletPods([]string) Reply {
	h.mu.Lock()
	started := h.kubeletStart
	h.mu.Unlock()
	var items []string
	for _, c := range constants.ControlPlaneComponents {
		items = append(items, fmt.Sprintf(`{"createdAt":"%d","labels":{"component":%q,"tier":"control-plane"}}`, time.Now().UnixNano(), c))
	}
	return Out(fmt.Sprintf("%d\n{\"items\":[%s]}\n", started.Unix()-1, strings.Join(items, ",")))
}

// resetHost is reset-host.sh MODE PODNETS FILE...
func (h *Host) resetHost(args []string) Reply {
	out := h.resetHostLines(args[2:])
	if args[0] == "remove" {
		h.resetHostRemove(args[2:])
	}
	return Out(lines(out))
}

// resetFirewall is reset-firewall.sh MODE.
func (h *Host) resetFirewall(args []string) Reply {
	out := h.firewallLines()
	if args[0] == "remove" {
		h.mu.Lock()
		h.firewall = false
		h.mu.Unlock()
	}
	return Out(lines(out))
}

// fileState is file-state.sh: mode, owner and group, then sha256sum's line; "missing" when absent.
func (h *Host) fileState(args []string) Reply {
	p := args[0]
	f, ok := h.File(p)
	if !ok {
		if h.dirExists(p) {
			return Exit(1, p+" is a directory")
		}
		return Out("missing\n")
	}
	owner, group, _ := strings.Cut(f.Owner, ":")
	sum := sha256.Sum256(f.Content)
	return Out(fmt.Sprintf("%o %s %s\n%s  %s\n", f.Mode, owner, group, hex.EncodeToString(sum[:]), p))
}

// fileStates is file-states.sh: one line per path, "missing" or mode, owner, group and digest.
func (h *Host) fileStates(args []string) Reply {
	var b strings.Builder
	for _, p := range args {
		f, ok := h.File(p)
		if !ok {
			if h.dirExists(p) {
				return Exit(1, p+" is a directory")
			}
			b.WriteString("missing\n")
			continue
		}
		owner, group, _ := strings.Cut(f.Owner, ":")
		sum := sha256.Sum256(f.Content)
		fmt.Fprintf(&b, "%o %s %s %s\n", f.Mode, owner, group, hex.EncodeToString(sum[:]))
	}
	return Out(b.String())
}

// installedScript is installed.sh MARKER [PACKAGE:CHECK...].
func (h *Host) installedScript(args []string) Reply {
	cni := ""
	if f, ok := h.File(args[0]); ok {
		cni = strings.TrimRight(string(f.Content), "\n")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	missing := ""
	for _, p := range args[1:] {
		pkg, _, _ := strings.Cut(p, ":")
		if h.missing[pkg] {
			missing += " " + pkg
		}
	}
	return Out(fmt.Sprintf("crictl=%s\ncni=%s\nmissing=%s\n", h.bins[install.CrictlPath], cni, missing))
}

// releaseVersion finds the version in a Kubernetes release URL (".../release/v1.34.10/bin/...") or a
// GitHub release URL (".../releases/download/v1.5.3/runc.amd64").
var releaseVersion = regexp.MustCompile(`/(?:release|releases/download)/(v[0-9][^/]*)/`)

// download is download.sh: a binary, or an archive (crictl's, the CNI plugins') with its marker.
func (h *Host) download(args []string) Reply {
	kind, url, sums := args[0], args[1], args[2]
	if !strings.HasPrefix(sums, "sha256:") && sums != install.ChecksumURL(url) {
		return Exit(1, "no valid checksum for "+path.Base(url)+" at "+sums)
	}
	switch kind {
	case "binary": // URL SUMS DEST MODE [PROXY]
		m := releaseVersion.FindStringSubmatch(url)
		if m == nil {
			return Exit(1, "no valid checksum at "+url+".sha256")
		}
		h.mu.Lock()
		h.bins[args[3]] = m[1]
		h.mu.Unlock()
	case "archive": // URL SUMS DIR VERSION MARKER [PROXY]
		dir, version, marker := args[3], args[4], args[5]
		switch base := path.Base(url); {
		case strings.HasPrefix(base, "crictl-"):
			h.mu.Lock()
			h.bins[dir+"/crictl"] = version
			h.mu.Unlock()
		case strings.HasPrefix(base, "cni-plugins-"):
			h.mkdir(dir)
		case strings.HasPrefix(base, "containerd-"):
			h.mu.Lock()
			h.bins[dir+"/bin/containerd"] = strings.TrimPrefix(version, "v")
			h.mu.Unlock()
		default:
			return Exit(1, "simhost: no archive "+base)
		}
		if marker != "" {
			h.SetFile(marker, []byte(version+"\n"), 0o644, "root:root")
		}
	default:
		return Exit(2, "unknown kind "+kind)
	}
	return Out("")
}

// apt is apt.sh PROXY ARG...: update, and install of NAME or NAME=VERSION.
func (h *Host) apt(args []string) Reply {
	switch sub := args[1]; sub {
	case "update":
	case "install":
		for _, a := range args[2:] {
			if strings.HasPrefix(a, "-") {
				continue
			}
			name, version, _ := strings.Cut(a, "=")
			h.installPackage(name, version)
		}
	default:
		return Exit(100, "simhost: apt-get "+sub+" is not simulated")
	}
	return Out("")
}

// rpmName splits "kubeadm-1.35.8" into name and version (names may hold dashes: cri-tools-1.36.0).
var rpmName = regexp.MustCompile(`^(.+?)-([0-9][^-]*)$`)

// dnf is dnf.sh PM PROXY ARG...: makecache, and install of NAME or NAME-VERSION.
func (h *Host) dnf(args []string) Reply {
	var words []string
	for _, a := range args[2:] {
		if !strings.HasPrefix(a, "-") {
			words = append(words, a)
		}
	}
	switch words[0] {
	case "makecache":
	case "install":
		for _, a := range words[1:] {
			name, version := a, ""
			if m := rpmName.FindStringSubmatch(a); m != nil {
				name, version = m[1], m[2]
			}
			h.installPackage(name, version)
		}
	default:
		return Exit(1, "simhost: "+args[0]+" "+words[0]+" is not simulated")
	}
	return Out("")
}

// InstallPackage installs a package on the host before the run starts (a host that is not
// fresh), as apt would.
func (h *Host) InstallPackage(name, version string) { h.installPackage(name, version) }

// installPackage installs a distribution or Kubernetes package: containerd (enabled and started,
// as Debian's package does), the Kubernetes tools (their binaries in /usr/bin), a prerequisite.
func (h *Host) installPackage(name, version string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if version == "" {
		version = "1"
	}
	h.packages[name] = version
	delete(h.missing, name)
	switch name {
	case "containerd", "containerd.io":
		if version == "1" {
			version = defaultContainerd
		}
		h.bins[containerdPath] = version
		h.units["containerd"] = &unit{enabled: true, active: true}
	case "runc":
		if version == "1" {
			version = "1.1.5+ds1"
		}
		h.bins[debianRuncPath] = version
	case "kubeadm", "kubelet", "kubectl":
		v := version
		if i := strings.LastIndexByte(v, '-'); i > 0 {
			v = v[:i] // the package's revision
		}
		h.bins["/usr/bin/"+name] = "v" + v
	}
}

// etcdScript is etcd.sh ACTION [ARG] in the local etcd pod.
func (h *Host) etcdScript(args []string) Reply {
	if !h.etcdRunning() {
		return Exit(1, "no running etcd container on this host")
	}
	c := h.cluster
	members := c.EtcdMembers()
	switch args[0] {
	case "member-list":
		var b strings.Builder
		for _, n := range sortedKeys(members) {
			ip := ""
			if m := c.Host(n); m != nil {
				ip = m.ip
			}
			fmt.Fprintf(&b, "%s, started, %s, https://%s:2380, https://%s:2379, false\n", members[n], n, ip, ip)
		}
		return Out(b.String())
	case "member-remove":
		if c.removeMember(args[1]) {
			return Out("Member " + args[1] + " removed from cluster\n")
		}
		return Exit(1, "Error: etcdserver: member not found")
	case "health":
		var entries []string
		for _, n := range sortedKeys(members) {
			m := c.Host(n)
			if m == nil {
				continue
			}
			if m.etcdRunning() {
				entries = append(entries, `{"endpoint":"https://`+m.ip+`:2379","health":true,"took":"1ms"}`)
			} else {
				entries = append(entries, `{"endpoint":"https://`+m.ip+`:2379","health":false,"error":"context deadline exceeded"}`)
			}
		}
		return Out("[" + strings.Join(entries, ",") + "]")
	case "snapshot":
		data := []byte("bbolt snapshot of " + h.name)
		h.SetFile(constants.EtcdDataDir+"/"+args[1], data, 0o600, "root:root")
		sum := sha256.Sum256(data)
		return Out(fmt.Sprintf("{\"hash\":1234,\"revision\":1188,\"totalKey\":482,\"totalSize\":%d,\"version\":\"3.6.0\"}\n\n%s\n", len(data), hex.EncodeToString(sum[:])))
	}
	return Exit(2, "unknown action "+args[0])
}

// resetPaths are the paths reset-host.sh looks at, before its FILE arguments.
var resetPaths = []string{constants.KubernetesDir, constants.KubeletDir, constants.EtcdDataDir, "/var/lib/cni", "/run/flannel", constants.InstallerDataDir}

// resetHostLines is what reset-host.sh prints: "have kubeadm", then what a cluster left.
func (h *Host) resetHostLines(extra []string) []string {
	var out []string
	h.mu.Lock()
	if h.bins["/usr/bin/kubeadm"] != "" {
		out = append(out, "have kubeadm")
	}
	pods := h.pods
	if h.bins[install.CrictlPath] == "" {
		pods = 0
	}
	links := append([]string(nil), h.links...)
	h.mu.Unlock()
	if enabled, active := h.unitState("kubelet"); enabled || active {
		out = append(out, fmt.Sprintf("unit kubelet (%s, %s)", word(enabled, "enabled", "disabled"), word(active, "active", "inactive")))
	}
	if pods > 0 {
		out = append(out, fmt.Sprintf("pods %d pod sandboxes", pods))
	}
	for _, p := range append(append([]string(nil), resetPaths...), extra...) {
		if h.exists(p) {
			out = append(out, "path "+p)
		}
	}
	for _, f := range h.Files(cniConfDir + "/") {
		out = append(out, "path "+f)
	}
	for _, l := range links {
		out = append(out, "link "+l)
	}
	return out
}

// resetHostRemove is what reset-host.sh remove does: the kubelet disabled and stopped, pods,
// paths, the CNI's configuration and links removed.
func (h *Host) resetHostRemove(extra []string) {
	h.setUnit("kubelet", no, no)
	h.mu.Lock()
	h.kubeletRunning, h.pods, h.links = "", 0, nil
	h.mu.Unlock()
	for _, p := range append(append([]string(nil), resetPaths...), extra...) {
		h.removeAll(p)
	}
	h.emptyDir(cniConfDir)
}

func (h *Host) firewallLines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.firewall {
		return nil
	}
	return []string{"jump iptables-nft nat PREROUTING#1 -> KUBE-SERVICES", "chain iptables-nft nat KUBE-SERVICES", "chain iptables-nft nat FLANNEL-POSTRTG"}
}

// firstImage is the first "image:" of a static pod manifest, as manifest-images.sh reads it.
func firstImage(manifest []byte) string {
	for _, l := range strings.Split(string(manifest), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimLeft(l, " "), "image:"); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

func word(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

// lines joins lines, each ended by a newline.
func lines(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return strings.Join(ls, "\n") + "\n"
}
