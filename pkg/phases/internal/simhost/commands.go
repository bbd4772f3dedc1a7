package simhost

import (
	"path"
	"strings"

	"installer.dev/installer/pkg/constants"
)

const (
	etcdMemberDir  = constants.EtcdDataDir + "/member"
	cniConfDir     = "/etc/cni/net.d"
	containerdPath = "/usr/bin/containerd"
	// defaultContainerd is the version Debian 12's containerd package reports.
	defaultContainerd = "1.6.20~ds1"
	// The release binaries (containerd.source: binary) come first on PATH.
	releaseContainerdPath = "/usr/local/bin/containerd"
	releaseRuncPath       = "/usr/local/sbin/runc"
	debianRuncPath        = "/usr/sbin/runc"
)

// registerCommands registers the handlers of commands that are not scripts, by their leading words.
func (h *Host) registerCommands() {
	for _, c := range []struct {
		words string
		fn    Handler
	}{
		{"containerd --version", h.containerdVersion},
		{"runc --version", h.runcVersion},
		{"sysctl -n", h.sysctlValues},
		{"sysctl -q -p", h.sysctlApply},
		{"modprobe -a", func([]string) Reply { return Out("") }},
		{"systemctl daemon-reload", func([]string) Reply { return Out("") }},
		{"systemctl is-enabled", h.isEnabled},
		{"systemctl enable", func(args []string) Reply { h.setUnit(args[0], yes, nil); return Out("") }},
		{"systemctl start", h.start},
		{"systemctl restart", h.start},
		{"test -d", func(args []string) Reply { return status(h.dirExists(args[0])) }},
		{"test -s", func(args []string) Reply { f, ok := h.File(args[0]); return status(ok && len(f.Content) > 0) }},
		{"mkdir -p", h.mkdirs},
		{"rm -f", func(paths []string) Reply { h.remove(paths); return Out("") }},
		{"apt-mark hold", func(pkgs []string) Reply { return h.hold(pkgs, true) }},
		{"apt-mark unhold", func(pkgs []string) Reply { return h.hold(pkgs, false) }},
		{"curl", h.curl},
		{"kubectl", h.kubectl},
	} {
		h.HandleCommand(c.words, c.fn)
	}
	for _, c := range []struct {
		words string
		fn    Handler
	}{
		{"kubeadm init", h.kubeadmInit},
		{"kubeadm join", h.kubeadmJoin},
		{"kubeadm reset", func([]string) Reply { h.kubeadmReset(); return Out("") }},
		{"kubeadm token create", h.kubeadmToken},
		{"kubeadm upgrade plan", h.kubeadmUpgradePlan},
		{"kubeadm upgrade apply", func([]string) Reply { return h.kubeadmUpgrade(true) }},
		{"kubeadm upgrade node", func([]string) Reply { return h.kubeadmUpgrade(false) }},
	} {
		h.HandleCommand(c.words, h.needs("/usr/bin/kubeadm", c.fn))
	}
}

// needs fails a command whose executable is not installed, as the shell does.
func (h *Host) needs(bin string, fn Handler) Handler {
	return func(args []string) Reply {
		if h.binary(bin) == "" {
			return Exit(127, "sh: 1: "+path.Base(bin)+": not found")
		}
		return fn(args)
	}
}

// status is a test(1)-like answer: exit 0 when ok, else 1.
func status(ok bool) Reply {
	if ok {
		return Out("")
	}
	return Exit(1, "")
}

func (h *Host) containerdVersion([]string) Reply {
	if v := h.binary(releaseContainerdPath); v != "" {
		return Out("containerd github.com/containerd/containerd/v2 " + v + " 0123abcd\n")
	}
	v := h.binary(containerdPath)
	if v == "" {
		return Exit(127, "sh: 1: containerd: not found")
	}
	return Out("containerd github.com/containerd/containerd " + v + " " + v + "-1+deb12u3\n")
}

func (h *Host) runcVersion([]string) Reply {
	for _, p := range []string{releaseRuncPath, debianRuncPath} {
		if v := h.binary(p); v != "" {
			return Out("runc version " + strings.TrimPrefix(v, "v") + "\ncommit: x\n")
		}
	}
	return Exit(127, "sh: 1: runc: not found")
}

// sysctlValues is sysctl -n KEY...: Debian's default has forwarding off; the bridge sysctls appear
// (on) with br_netfilter.
func (h *Host) sysctlValues(keys []string) Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, k := range keys {
		out = append(out, word(h.sysctlApplied || k != "net.ipv4.ip_forward", "1", "0"))
	}
	return Out(lines(out))
}

// sysctlApply is sysctl -q -p FILE: the installer's file turns the node's sysctls on.
func (h *Host) sysctlApply(args []string) Reply {
	if _, ok := h.File(args[0]); !ok {
		return Exit(255, "sysctl: cannot open \""+args[0]+"\": No such file or directory")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sysctlApplied = true
	return Out("")
}

// isEnabled is systemctl is-enabled: it exits 1 for a disabled unit.
func (h *Host) isEnabled(args []string) Reply {
	if enabled, _ := h.unitState(args[0]); enabled {
		return Out("enabled\n")
	}
	return Reply{Stdout: "disabled\n", ExitCode: 1}
}

// start is systemctl start and restart.
func (h *Host) start(args []string) Reply {
	if args[0] == "kubelet" {
		h.startKubelet()
		if h.controlPlane {
			// A new kubelet re-creates the static pods.
			h.cluster.restarted(h.name, "kubelet restart")
		}
		return Out("")
	}
	h.setUnit(args[0], nil, yes)
	return Out("")
}

// mkdirs is mkdir -p [-m MODE] DIR...
func (h *Host) mkdirs(args []string) Reply {
	for i := 0; i < len(args); i++ {
		if args[i] == "-m" {
			i++
			continue
		}
		h.mkdir(args[i])
	}
	return Out("")
}

func (h *Host) remove(paths []string) {
	for _, p := range paths {
		h.RemoveFile(p)
	}
}

// curl answers the local API server's /readyz.
func (h *Host) curl(args []string) Reply {
	if strings.HasSuffix(args[len(args)-1], constants.LocalAPIServer+"/readyz") && h.apiServerUp() {
		return Out("ok")
	}
	return Exit(7, "curl: (7) Failed to connect")
}

func (h *Host) binary(p string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bins[p]
}

// hold is apt-mark hold and unhold (apt marks any package its index knows, installed or not).
func (h *Host) hold(pkgs []string, hold bool) Reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range pkgs {
		h.held[p] = hold
	}
	return Out("")
}
