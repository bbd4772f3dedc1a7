package phases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/ssh/sshtest"
)

// simHost is a fake host with state: what is installed and running answers the installer's queries,
// and its commands change that state the way they change a real Debian host. It lets tests run the
// host-side phases end to end, pin the exact commands, and prove re-runs converge.
type simHost struct {
	*sshtest.Fake
	name, ip string

	mu          sync.Mutex
	containerd  string // installed version ("" = absent)
	kube        map[string]string
	crictl, cni string
	enabled     map[string]bool
	active      map[string]bool
	manifests   bool
	kubeletConf bool
	adminConf   bool
	initDone    bool
	swap        bool
	sysctlOK    bool
	// failOn makes the first command whose transcript line (shortCommand) contains it fail (exit 1).
	failOn string
	// latency is added to every command, like a network round trip.
	latency time.Duration
	// onWrite, when set, is called on every file write.
	onWrite func()
	// caPEM is the cluster CA kubeadm join writes to /etc/kubernetes/pki/ca.crt (from cluster-info).
	caPEM []byte
}

func newSimHost(name, ip string) *simHost {
	s := &simHost{Fake: sshtest.NewFake(name), name: name, ip: ip, kube: map[string]string{},
		enabled: map[string]bool{}, active: map[string]bool{}, swap: true}
	s.On(sshtest.Any()).Do(s.handle)
	return s
}

func (s *simHost) handle(cmd ssh.Cmd) (ssh.Result, error) {
	if s.latency > 0 {
		time.Sleep(s.latency)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	line := strings.Join(cmd.Args, " ")
	if s.failOn != "" && strings.Contains(shortCommand(cmd), s.failOn) {
		s.failOn = ""
		return ssh.Result{ExitCode: 1, Stderr: []byte("injected failure")}, &ssh.CommandError{Host: s.name, ExitCode: 1, Command: "(injected)", Stderr: "injected failure"}
	}
	ok := func(out string) (ssh.Result, error) { return ssh.Result{Stdout: []byte(out)}, nil }
	fail := func(code int) (ssh.Result, error) {
		return ssh.Result{ExitCode: code}, &ssh.CommandError{Host: s.name, ExitCode: code, Command: ssh.Quote(cmd.Args)}
	}
	a := cmd.Args
	name, args := scriptCall(cmd)
	switch {
	case name == scripts.Facts.Name:
		return ok(s.factsOutput())
	case name == scripts.FileState.Name:
		return ok(fileStateOutput(s.Fake, args[0]))
	case name == scripts.SwapOff.Name:
		s.swap = false
		return ok("")
	case name == scripts.MissingModules.Name:
		return ok("")
	case a[0] == "sysctl" && a[1] == "-n":
		if s.sysctlOK {
			return ok("1\n1\n1\n")
		}
		return ok("0\n1\n1\n")
	case a[0] == "sysctl":
		s.sysctlOK = true
		return ok("")
	case name == scripts.Apt.Name: // proxy, then apt-get's arguments
		if len(args) > 1 && args[1] == "install" {
			for _, p := range args[2:] {
				if strings.HasPrefix(p, "containerd") {
					s.containerd = "1.6.20"
					s.enabled["containerd"], s.active["containerd"] = true, true
				}
			}
		}
		return ok("")
	case line == "containerd --version":
		return ok("containerd github.com/containerd/containerd " + s.containerd + "~ds1 1.6.20~ds1-1+deb12u3\n")
	case name == scripts.UnitState.Name:
		unit := args[0]
		return ok(fmt.Sprintf("%s %s\n", map[bool]string{true: "enabled", false: "disabled"}[s.enabled[unit]], map[bool]string{true: "active", false: "inactive"}[s.active[unit]]))
	case a[0] == "systemctl" && a[1] == "is-enabled":
		if s.enabled[a[2]] {
			return ok("enabled\n")
		}
		return ssh.Result{Stdout: []byte("disabled\n"), ExitCode: 1}, &ssh.CommandError{Host: s.name, ExitCode: 1}
	case a[0] == "systemctl" && a[1] == "enable":
		s.enabled[a[2]] = true
		return ok("")
	case a[0] == "systemctl" && (a[1] == "restart" || a[1] == "start"):
		s.active[a[2]] = true
		return ok("")
	case line == "systemctl daemon-reload":
		return ok("")
	case name == scripts.Installed.Name:
		return ok(fmt.Sprintf("crictl=%s\ncni=%s\nmissing=\n", s.crictl, s.cni))
	case name == scripts.Download.Name && args[0] == "binary": // URL DEST MODE PROXY
		s.kube[path.Base(args[2])] = strings.Split(args[1], "/")[4] // .../release/<version>/bin/...
		return ok("")
	case name == scripts.Download.Name && args[0] == "archive": // URL DIR VERSION MARKER PROXY
		if strings.Contains(args[1], "cri-tools") {
			s.crictl = args[3]
		} else {
			s.cni = args[3]
		}
		return ok("")
	case line == "test -d /etc/kubernetes/manifests":
		if s.manifests {
			return ok("")
		}
		return fail(1)
	case line == "mkdir -p -m 0755 /etc/kubernetes/manifests":
		s.manifests = true
		return ok("")
	case line == "rm -f "+facts.InitMarkerPath:
		s.RemoveFile(facts.InitMarkerPath)
		return ok("")
	case line == "kubeadm reset -f":
		s.adminConf, s.kubeletConf, s.initDone = false, false, false
		for _, p := range s.Files(facts.PKIDir + "/") {
			s.RemoveFile(p)
		}
		return ok("")
	case name == scripts.Etcd.Name:
		return fail(1) // no etcd container
	case strings.HasPrefix(line, "kubeadm init"):
		s.adminConf, s.kubeletConf, s.initDone = true, true, true
		s.active["kubelet"] = true
		return ok("")
	case strings.HasPrefix(line, "kubeadm join"):
		if _, found := s.File(facts.PKIDir + "/ca.crt"); !found {
			s.SetFile(facts.PKIDir+"/ca.crt", s.caPEM, 0o644, "root:root")
		}
		s.kubeletConf = true
		s.active["kubelet"] = true
		return ok("")
	case line == strings.Join(initCompleteCheck.Args, " "):
		if s.initDone {
			return ok("configmap/kubeadm-config\n")
		}
		return fail(1)
	case strings.HasPrefix(line, "kubeadm token create"):
		return ok("abcdef.0123456789abcdef\n")
	}
	return ssh.Result{}, fmt.Errorf("simulated host %s: unexpected command %s", s.name, ssh.Quote(cmd.Args))
}

// fileStateOutput is what file-state.sh prints for a file of a fake host.
func fileStateOutput(f *sshtest.Fake, path string) string {
	file, found := f.File(path)
	if !found {
		return "missing\n"
	}
	owner, group, _ := strings.Cut(file.Owner, ":")
	sum := sha256.Sum256(file.Content)
	return fmt.Sprintf("%o %s %s\n%s  %s\n", file.Mode, owner, group, hex.EncodeToString(sum[:]), path)
}

// scriptCall returns the name ($0) and the arguments of a command that runs one of pkg/scripts'
// scripts; name is "" for any other command. Simulators dispatch on the name, never on the body.
func scriptCall(cmd ssh.Cmd) (name string, args []string) {
	if s, args, ok := scripts.Parse(cmd.Args); ok {
		return s.Name, args
	}
	return "", nil
}

// isScript is an sshtest matcher for the commands that run the named script.
func isScript(name string) func([]string) bool {
	return func(a []string) bool {
		s, _, ok := scripts.Parse(a)
		return ok && s.Name == name
	}
}

func (s *simHost) factsOutput() string {
	var b strings.Builder
	sec := func(name, body string) { fmt.Fprintf(&b, "==%s\n%s", name, body) }
	sec("os-release", "ID=debian\nVERSION_ID=\"12\"\n")
	sec("arch", "x86_64\n")
	sec("hostname", s.name+"\n")
	sec("cgroupfs", "cgroup2fs\n")
	sec("init", "systemd\n")
	sec("addrs", "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet "+s.ip+"/24 brd x scope global eth0\n")
	sec("default-route", "default via 10.0.0.254 dev eth0\n")
	sec("product-uuid", "uuid-"+s.name+"\n")
	swaps := "Filename Type Size Used Priority\n"
	if s.swap {
		swaps += "/swap file 1024 0 -2\n"
	}
	sec("swaps", swaps)
	sec("containerd", map[bool]string{true: "containerd github.com/containerd/containerd " + s.containerd + "~ds1 x\n"}[s.containerd != ""])
	sec("kubelet", map[bool]string{true: "Kubernetes " + s.kube["kubelet"] + "\n"}[s.kube["kubelet"] != ""])
	sec("kubeadm", map[bool]string{true: s.kube["kubeadm"] + "\n"}[s.kube["kubeadm"] != ""])
	sec("kubectl", map[bool]string{true: "Client Version: " + s.kube["kubectl"] + "\n"}[s.kube["kubectl"] != ""])
	files := ""
	if s.kubeletConf {
		files += "/etc/kubernetes/kubelet.conf\n"
	}
	if s.adminConf {
		files += "/etc/kubernetes/admin.conf\n"
	}
	sec("files", files)
	var present []string
	if s.adminConf {
		present = append(present, "/etc/kubernetes/admin.conf", "/etc/kubernetes/manifests/kube-apiserver.yaml")
	}
	if s.kubeletConf {
		present = append(present, "/etc/kubernetes/kubelet.conf")
	}
	b.WriteString(clusterSections(s.Fake, present))
	listening := "0.0.0.0:22\n"
	if s.active["kubelet"] {
		listening += "*:10250\n"
	}
	sec("listening", listening)
	sec("time", "")
	sec("end", "")
	return b.String()
}

// clusterSections renders the facts script's cluster sections for a simulated host: the cluster
// paths given, and the PKI files and init marker among the fake host's files.
func clusterSections(f *sshtest.Fake, present []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "==cluster-paths\n")
	for _, p := range present {
		fmt.Fprintln(&b, p)
	}
	fmt.Fprintf(&b, "==pki-sums\n")
	for _, p := range f.Files(facts.PKIDir + "/") {
		file, _ := f.File(p)
		sum := sha256.Sum256(file.Content)
		fmt.Fprintf(&b, "%s  %s\n", hex.EncodeToString(sum[:]), strings.TrimPrefix(p, facts.PKIDir+"/"))
	}
	fmt.Fprintf(&b, "==cluster-ca\n")
	if ca, ok := f.File(facts.PKIDir + "/ca.crt"); ok {
		b.Write(ca.Content)
	}
	fmt.Fprintf(&b, "==init-marker\n")
	if m, ok := f.File(facts.InitMarkerPath); ok {
		b.Write(m.Content)
	}
	return b.String()
}

// seedPKI puts a cluster's PKI on a simulated node as create left it: every file on a control
// plane, the cluster CA on a worker.
func seedPKI(f *sshtest.Fake, b *pki.Bundle, controlPlane bool) {
	for _, file := range b.ControlPlaneFiles() {
		if controlPlane || file.Path == facts.PKIDir+"/ca.crt" {
			f.SetFile(file.Path, file.Content, file.Mode, "root:root")
		}
	}
}

// sharedPKI is one cluster PKI for every simulated cluster of the package's tests (RSA keys are
// slow to generate).
var sharedPKI, foreignPKI struct {
	once sync.Once
	b    *pki.Bundle
	err  error
}

func testPKI(t testing.TB) *pki.Bundle {
	t.Helper()
	sharedPKI.once.Do(func() { sharedPKI.b, sharedPKI.err = pki.Generate(pki.Options{}) })
	if sharedPKI.err != nil {
		t.Fatal(sharedPKI.err)
	}
	return sharedPKI.b
}

// otherClusterPKI is another cluster's PKI, for the identity tests.
func otherClusterPKI(t testing.TB) *pki.Bundle {
	t.Helper()
	foreignPKI.once.Do(func() { foreignPKI.b, foreignPKI.err = pki.Generate(pki.Options{}) })
	if foreignPKI.err != nil {
		t.Fatal(foreignPKI.err)
	}
	return foreignPKI.b
}

// WriteFile lets a test observe writes (onWrite) before the fake stores them.
func (s *simHost) WriteFile(ctx context.Context, f ssh.File) (bool, error) {
	if s.onWrite != nil {
		s.onWrite()
	}
	return s.Fake.WriteFile(ctx, f)
}
