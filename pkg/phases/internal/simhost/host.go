package simhost

import (
	"context"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// Reply is a handler's answer: what the command printed and its exit status.
type Reply struct {
	Stdout, Stderr string
	ExitCode       int
}

// Out is a successful reply printing stdout.
func Out(stdout string) Reply { return Reply{Stdout: stdout} }

// Exit is a failed reply.
func Exit(code int, stderr string) Reply { return Reply{ExitCode: code, Stderr: stderr} }

// Handler answers one command. args are a script's positional parameters ($1...), or a command's
// words after the ones it was registered with ("systemctl restart" gets ["kubelet"]).
type Handler func(args []string) Reply

// unit is a systemd unit's state.
type unit struct{ enabled, active bool }

// Host is one simulated host. Its methods are safe for concurrent use.
type Host struct {
	*sshtest.Fake
	name, ip     string
	controlPlane bool
	cluster      *Cluster

	hmu      sync.Mutex
	scripts  map[string]Handler
	commands map[string]Handler
	failures []*Failure

	mu sync.Mutex
	// The operating system (its kernel has every module a node needs).
	swap, sysctlApplied bool
	// missing are node prerequisites (conntrack, socat...) that are not installed.
	missing map[string]bool
	// bins are executables by path, with the version they report ("/usr/bin/kubelet": "v1.34.10").
	bins map[string]string
	// packages are dpkg's (or rpm's) installed packages with their versions; held are apt-mark's holds.
	packages map[string]string
	held     map[string]bool
	units    map[string]*unit
	// dirs are directories created on their own (a directory holding a file exists anyway).
	dirs map[string]bool
	// kubeadm's state. kubeletRunning is the version of the kubelet that runs ("" when stopped),
	// kubeletFlags the kubeadm version that last wrote its flags; a kubelet of a newer minor than
	// its flags crash-loops (like the real 1.35 kubelet on 1.34's flags).
	kubeletRunning, kubeletFlags string
	kubeletStart                 time.Time
	crashLoop                    bool
	apiServerDown, etcdDown      bool
	keepEtcdMember               bool
	// What a node leaves besides files: pod sandboxes, network links, firewall rules.
	pods     int
	links    []string
	firewall bool

	// leftover is a kubeadm an earlier run left running ("PID COMMAND LINE"); it is listed by the
	// next leftoverPolls process listings, then gone.
	leftover      string
	leftoverPolls int
	// servedKey is the package repository's key when it is not RepositoryKey.
	servedKey []byte

	latency time.Duration
	onWrite func()
}

// New is a fresh host on its own (no cluster around it).
func New(name, ip string) *Host { return NewCluster().Add(name, ip, false) }

func newHost(c *Cluster, name, ip string, controlPlane bool) *Host {
	h := &Host{Fake: sshtest.NewFake(name), name: name, ip: ip, controlPlane: controlPlane, cluster: c,
		scripts: map[string]Handler{}, commands: map[string]Handler{},
		swap: true, missing: map[string]bool{}, bins: map[string]string{}, packages: map[string]string{},
		held: map[string]bool{}, units: map[string]*unit{}, dirs: map[string]bool{}}
	h.registerScripts()
	h.registerCommands()
	return h
}

// Name is the host's name.
func (h *Host) Name() string { return h.name }

// HandleScript registers (or replaces) the handler of one of pkg/scripts' scripts, by its name.
func (h *Host) HandleScript(name string, fn Handler) {
	known := false
	for _, s := range scripts.All() {
		known = known || s.Name == name
	}
	if !known {
		panic("simhost: no script " + name + " in pkg/scripts")
	}
	h.hmu.Lock()
	_, replace := h.scripts[name]
	h.scripts[name] = fn
	h.hmu.Unlock()
	if replace {
		return
	}
	h.On(func(argv []string) bool {
		s, _, ok := scripts.Parse(argv)
		return ok && s.Name == name
	}).Do(func(cmd ssh.Cmd) (ssh.Result, error) {
		_, args, _ := scripts.Parse(cmd.Args)
		h.hmu.Lock()
		fn := h.scripts[name]
		h.hmu.Unlock()
		return h.answer(cmd, fn, args)
	})
}

// HandleCommand registers (or replaces) the handler of a command that is not a script, by its
// leading words ("systemctl restart", "kubeadm upgrade plan"). One registered command may not be a
// leading part of another.
func (h *Host) HandleCommand(words string, fn Handler) {
	prefix := strings.Fields(words)
	h.hmu.Lock()
	if _, replace := h.commands[words]; replace {
		h.commands[words] = fn
		h.hmu.Unlock()
		return
	}
	for other := range h.commands {
		if strings.HasPrefix(other+" ", words+" ") || strings.HasPrefix(words+" ", other+" ") {
			h.hmu.Unlock()
			panic("simhost: commands " + other + " and " + words + " overlap")
		}
	}
	h.commands[words] = fn
	h.hmu.Unlock()
	h.On(sshtest.Prefix(prefix...)).Do(func(cmd ssh.Cmd) (ssh.Result, error) {
		h.hmu.Lock()
		fn := h.commands[words]
		h.hmu.Unlock()
		return h.answer(cmd, fn, cmd.Args[len(prefix):])
	})
}

// answer runs a handler unless an injected failure is due, and turns its reply into what the real
// client returns.
func (h *Host) answer(cmd ssh.Cmd, fn Handler, args []string) (ssh.Result, error) {
	if f := h.dueFailure(Line(cmd)); f != nil {
		if f.lost {
			return ssh.Result{}, &ssh.ConnectionLostError{Host: h.name, Err: io.EOF}
		}
		return h.result(cmd, Exit(f.code, f.stderr))
	}
	return h.result(cmd, fn(args))
}

func (h *Host) result(cmd ssh.Cmd, r Reply) (ssh.Result, error) {
	res := ssh.Result{Stdout: []byte(r.Stdout), Stderr: []byte(r.Stderr), ExitCode: r.ExitCode}
	if r.ExitCode == 0 {
		return res, nil
	}
	e := &ssh.CommandError{Host: h.name, ExitCode: r.ExitCode, Sensitive: cmd.Sensitive}
	if !cmd.Sensitive {
		e.Command, e.Stderr = Line(cmd), strings.TrimSpace(r.Stderr)
	}
	return res, e
}

// Run answers a command after the host's latency.
func (h *Host) Run(ctx context.Context, cmd ssh.Cmd) (ssh.Result, error) {
	h.mu.Lock()
	d := h.latency
	h.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	return h.Fake.Run(ctx, cmd)
}

// WriteFile writes like the real client, after telling OnWrite's function.
func (h *Host) WriteFile(ctx context.Context, f ssh.File) (bool, error) {
	h.mu.Lock()
	fn := h.onWrite
	h.mu.Unlock()
	if fn != nil {
		fn()
	}
	return h.Fake.WriteFile(ctx, f)
}

// SetLatency adds d to every command, like a network round trip.
func (h *Host) SetLatency(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.latency = d
}

// OnWrite calls fn before every file write.
func (h *Host) OnWrite(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onWrite = fn
}

// State is what a test asserts about a host.
type State struct {
	// Swap: swap is on. Sysctl: the installer's sysctls are in effect.
	Swap, Sysctl bool
	// Containerd, Kubeadm, Kubelet and Kubectl are the installed versions ("" when absent).
	Containerd, Kubeadm, Kubelet, Kubectl string
	// Node: the host joined or initialised a cluster (it has a kubelet.conf).
	Node bool
	// KubeletRunning is the version of the kubelet that runs ("" when stopped), KubeletFlags the
	// version of the kubeadm that last wrote its flags; CrashLoop: its flags are too old for it.
	KubeletRunning, KubeletFlags string
	CrashLoop                    bool
	// ControlPlane is the image tag of the kube-apiserver static pod ("" when there is none).
	ControlPlane string
}

// State returns the host's state now.
func (h *Host) State() State {
	st := State{Node: h.exists(constants.KubeletConf), ControlPlane: h.controlPlaneVersion()}
	h.mu.Lock()
	defer h.mu.Unlock()
	st.Swap, st.Sysctl, st.Containerd = h.swap, h.sysctlApplied, h.bins[containerdPath]
	if v := h.bins[releaseContainerdPath]; v != "" {
		st.Containerd = v // first on PATH
	}
	st.Kubeadm, st.Kubelet, st.Kubectl = h.bins["/usr/bin/kubeadm"], h.bins["/usr/bin/kubelet"], h.bins["/usr/bin/kubectl"]
	st.KubeletRunning, st.KubeletFlags, st.CrashLoop = h.kubeletRunning, h.kubeletFlags, h.crashLoop
	return st
}

// controlPlaneVersion is the image tag of the kube-apiserver static pod.
func (h *Host) controlPlaneVersion() string {
	f, ok := h.File(constants.KubeAPIServerManifest)
	if !ok {
		return ""
	}
	_, tag, _ := strings.Cut(firstImage(f.Content), ":")
	return tag
}

// Failure modes a test sets up.

// StopAPIServer makes the host's API server stop answering (kubectl through admin.conf fails).
func (h *Host) StopAPIServer() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.apiServerDown = true
}

// StartAPIServer makes a stopped API server answer again (a restart that fixed it).
func (h *Host) StartAPIServer() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.apiServerDown = false
}

// StopEtcd makes the host's etcd stop answering (etcd.sh fails).
func (h *Host) StopEtcd() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.etcdDown = true
}

// KeepEtcdMemberOnReset makes kubeadm reset fail to remove the host's etcd member.
func (h *Host) KeepEtcdMemberOnReset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.keepEtcdMember = true
}

// MissingPrerequisites makes node prerequisites (installed.sh's PACKAGEs) absent until installed.
func (h *Host) MissingPrerequisites(pkgs ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range pkgs {
		h.missing[p] = true
	}
}

// Leftovers is what reset-host.sh and reset-firewall.sh would list on the host (extra are the
// installer's own files to look for, as reset-host.sh's FILE arguments): nothing on a clean host.
func (h *Host) Leftovers(extra ...string) []string {
	out := h.resetHostLines(extra)
	out = append(out, h.firewallLines()...)
	var left []string
	for _, l := range out {
		if !strings.HasPrefix(l, "have ") {
			left = append(left, l)
		}
	}
	return left
}

// Files on the host.

// exists reports whether a file or directory exists.
func (h *Host) exists(p string) bool {
	if _, ok := h.File(p); ok {
		return true
	}
	return h.dirExists(p)
}

// dirExists: created on its own, or holding a file or directory.
func (h *Host) dirExists(p string) bool {
	if len(h.Files(p+"/")) > 0 {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for d := range h.dirs {
		if d == p || strings.HasPrefix(d, p+"/") {
			return true
		}
	}
	return false
}

func (h *Host) mkdir(p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dirs[path.Clean(p)] = true
}

// removeAll removes p and everything below it.
func (h *Host) removeAll(p string) {
	h.RemoveFile(p)
	h.emptyDir(p)
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.dirs, p)
}

// emptyDir removes everything below p and leaves p.
func (h *Host) emptyDir(p string) {
	for _, f := range h.Files(p + "/") {
		h.RemoveFile(f)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for d := range h.dirs {
		if strings.HasPrefix(d, p+"/") {
			delete(h.dirs, d)
		}
	}
}

func (h *Host) unitState(name string) (enabled, active bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u := h.units[name]; u != nil {
		return u.enabled, u.active
	}
	return false, false
}

// setUnit changes a unit's state; nil leaves that half as it is.
func (h *Host) setUnit(name string, enabled, active *bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.units[name]
	if u == nil {
		u = &unit{}
		h.units[name] = u
	}
	if enabled != nil {
		u.enabled = *enabled
	}
	if active != nil {
		u.active = *active
	}
}

var yes, no = func() *bool { b := true; return &b }(), func() *bool { b := false; return &b }()

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Exists reports whether a file or directory exists on the host.
func (h *Host) Exists(p string) bool { return h.exists(p) }
