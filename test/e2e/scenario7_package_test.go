//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/lab/debrepo"
	"installer.dev/installer/lab/hosts"
	"installer.dev/installer/lab/labspec"
	"installer.dev/installer/lab/mirror"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/pgpkey"
	"installer.dev/installer/pkg/versions"
	"sigs.k8s.io/yaml"
)

// inProcessMirror serves the lab mirror (binary mirror, registry, apt repositories) from the test
// process on the bridge address; Down stops it.
type inProcessMirror struct {
	t   *testing.T
	mu  sync.Mutex
	srv *mirror.Server
}

func (m *inProcessMirror) Start(ctx context.Context, bind, kubernetesVersion, dir string) (*labspec.Mirror, error) {
	cache, err := build.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	srv, err := mirror.Start(ctx, mirror.Options{Addr: bind + ":5000", CacheDir: cache, Log: logWriter{m.t}})
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.srv = srv
	m.mu.Unlock()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := mirror.WritePins(filepath.Join(dir, mirror.PinsName), srv.Content); err != nil {
		return nil, err
	}
	return mirror.SpecMirror(srv.URL(), kubernetesVersion, cache, dir)
}

func (m *inProcessMirror) Stop(context.Context, string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv == nil {
		return nil
	}
	err := m.srv.Close()
	m.srv = nil
	return err
}

// hostPhaseTimes are the per-host durations of one phase in the installer's JSON log.
func hostPhaseTimes(out, phase string) map[string]float64 {
	times := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var rec struct {
			Msg, Phase, Host string
			Seconds          float64
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "host done" && rec.Phase == phase {
			times[rec.Host] = rec.Seconds
		}
	}
	return times
}

// phaseChanges is the "changes" count of a phase's "phase done" record (-1 when absent).
func phaseChanges(out, phase string) int {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var rec struct {
			Msg, Phase string
			Changes    int
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "phase done" && rec.Phase == phase {
			return rec.Changes
		}
	}
	return -1
}

// aptCacheHolds reports whether the lab's apt cache already holds a file named name (a warm cache
// for the lab repository's packages).
func aptCacheHolds(t *testing.T, name string) bool {
	cache, err := build.DefaultCacheDir()
	if err != nil {
		fatal(t, err)
	}
	found := false
	_ = filepath.WalkDir(filepath.Join(cache, "apt-cacher-ng"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// hostState is what a converged re-run must leave exactly as it was.
const hostStateScript = `dpkg-query -W -f='${Package} ${Version}\n' kubeadm kubelet kubectl cri-tools kubernetes-cni
echo holds: $(apt-mark showhold | sort)
sudo sha256sum /etc/apt/sources.list.d/kubernetes.list /etc/apt/keyrings/kubernetes-apt-keyring.asc \
  /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/bin/crictl /opt/cni/bin/bridge \
  /usr/lib/systemd/system/kubelet.service /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf \
  /etc/default/kubelet /etc/containerd/config.toml /etc/crictl.yaml /var/lib/kubelet/config.yaml \
  /var/lib/kubelet/kubeadm-flags.env /etc/kubernetes/kubelet.conf
sudo sh -c 'for f in /etc/kubernetes/manifests/*; do [ -e "$f" ] && sha256sum "$f"; done; true'
systemctl show kubelet -p NRestarts -p InvocationID -p ActiveState`

// TestScenario7PackageInstall is scenario 1 (one control plane, two workers, flannel, the lab CCM)
// with install.source package from the lab's signed apt repository: the cluster checks, the five
// packages at their pinned versions with kubeadm, kubelet and kubectl held on every host, apt-get
// update clean with signed-by the lab key, and a second create that changes nothing.
func TestScenario7PackageInstall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	root, err := filepath.Abs("../..")
	if err != nil {
		fatal(t, err)
	}
	installer := filepath.Join(t.TempDir(), "installer")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", installer, "../../cmd/installer").CombinedOutput(); err != nil {
		fatalf(t, "build installer: %v\n%s", err, out)
	}
	rel := versions.Default()
	kube := strings.TrimPrefix(rel.Kubernetes, "v") + "-" + rel.PackageRevision
	cold := !aptCacheHolds(t, "kubelet_"+kube+"_amd64.deb")

	l, err := hosts.New(hosts.Options{Dir: filepath.Join(root, ".lab", "e2e"), Log: hostsLog{t}, Mirror: &inProcessMirror{t: t}})
	if err != nil {
		fatal(t, err)
	}
	st, err := l.Up(ctx, hosts.Topology{Hosts: 3, Install: "package", KubernetesVersion: rel.Kubernetes})
	if err != nil {
		fatalf(t, "lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			errorf(t, "lab down: %v", err)
		}
	})

	c, err := v1alpha1.LoadFile(l.SpecFile())
	if err != nil {
		fatal(t, err)
	}
	in := c.Spec.Install
	if in.Source != v1alpha1.InstallPackage || in.PackageRepository != "http://172.30.0.1:5000"+debrepo.BasePath ||
		in.PackageRepositoryKeyFile != filepath.Join("mirror", mirror.AptKeyName) {
		fatalf(t, "spec install = %+v", in)
	}

	// The hosts fetch the repository's own Release.key, trusted by its pinned fingerprint (a user's
	// default with pkgs.k8s.io), instead of the lab's key file.
	keyData, err := os.ReadFile(filepath.Join(filepath.Dir(l.SpecFile()), in.PackageRepositoryKeyFile))
	if err != nil {
		fatal(t, err)
	}
	labKey, err := pgpkey.Fingerprint(keyData)
	if err != nil {
		fatal(t, err)
	}
	pinned := func(name, fingerprint string) string {
		v := *c
		v.Spec.Install.PackageRepositoryKeyFile = ""
		v.Spec.Install.PackageRepositoryKeyFingerprint = fingerprint
		out, err := yaml.Marshal(&v)
		if err != nil {
			fatal(t, err)
		}
		p := filepath.Join(filepath.Dir(l.SpecFile()), name)
		if err := os.WriteFile(p, out, 0o600); err != nil {
			fatal(t, err)
		}
		return p
	}
	spec := pinned("cluster-pinned-key.yaml", labKey)

	// A mirror that serves a substitute runc with its own matching checksum file (finding M3): the
	// hosts check it against the pin (the lab's checksumsFile), refuse it and install nothing.
	t.Run("tampered mirror refused", func(t *testing.T) { tamperedMirror(ctx, t, l, st, installer, c) })

	// A pin the repository's key does not match: the key is never installed, apt never trusts it.
	const wrongPin = "0123456789ABCDEF0123456789ABCDEF01234567"
	wrong := exec.CommandContext(ctx, installer, "create", "cluster", "-f", pinned("cluster-wrong-pin.yaml", wrongPin), "--state-dir", l.StateDir())
	wrongOut, err := wrong.CombinedOutput()
	if err == nil || !strings.Contains(string(wrongOut), "key "+labKey+", not the pinned "+wrongPin) {
		errorf(t, "create with a wrong key pin: %v, want a refusal naming both fingerprints:\n%s", err, wrongOut)
	}
	t.Logf("MEASURE a repository key that is not the pinned one: %s", lastLine(string(wrongOut)))
	for _, h := range st.Hosts {
		if out := mustSSH(ctx, t, l, h.Name, "ls /etc/apt/keyrings/ /etc/apt/sources.list.d/ 2>/dev/null | grep -c kubernetes || true"); out != "0" {
			errorf(t, "%s: a kubernetes keyring or sources file after the refused key (%s)", h.Name, out)
		}
	}

	create := func(run string) string {
		start := time.Now()
		cmd := exec.CommandContext(ctx, installer, "create", "cluster", "-f", spec, "--state-dir", l.StateDir(), "--log-format", "json")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			fatalf(t, "%s create cluster: %v\n%s", run, err, out.String())
		}
		t.Logf("MEASURE %s create cluster: %s", run, time.Since(start).Round(100*time.Millisecond))
		times := hostPhaseTimes(out.String(), "kubernetes")
		names := make([]string, 0, len(times))
		for h := range times {
			names = append(names, h)
		}
		sort.Strings(names)
		for _, h := range names {
			t.Logf("MEASURE %s package phase (kubernetes) on %s: %.1f s", run, h, times[h])
		}
		if len(times) != len(st.Hosts) {
			errorf(t, "%s: kubernetes phase times for %d hosts, want %d:\n%s", run, len(times), len(st.Hosts), out.String())
		}
		return out.String()
	}
	cache := "warm"
	if cold {
		cache = "cold"
	}
	first := create("first (" + cache + " apt cache)")
	if phaseChanges(first, "kubernetes") <= 0 {
		errorf(t, "first create: the kubernetes phase made no change")
	}

	t.Run("cluster", func(t *testing.T) { checkCluster(ctx, t, l, st) })

	t.Run("packages and holds", func(t *testing.T) {
		for _, h := range st.Hosts {
			got := mustSSH(ctx, t, l, h.Name, `dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\n' kubeadm kubelet kubectl cri-tools kubernetes-cni | sed 's/ *$//'`)
			// dpkg-query lists by name; "hi": held and installed.
			want := strings.Join([]string{"cri-tools " + rel.CRIToolsPackage + " ii",
				"kubeadm " + kube + " hi", "kubectl " + kube + " hi", "kubelet " + kube + " hi",
				"kubernetes-cni " + rel.CNIPackage + " ii"}, "\n")
			if got != want {
				errorf(t, "%s dpkg-query:\n%s\nwant\n%s", h.Name, got, want)
			}
			if holds := mustSSH(ctx, t, l, h.Name, "apt-mark showhold | sort | tr '\\n' ' '"); holds != "kubeadm kubectl kubelet" {
				errorf(t, "%s apt-mark showhold = %q", h.Name, holds)
			}
			// The package's files, not leftovers of another install mode.
			if owner := mustSSH(ctx, t, l, h.Name, "dpkg -S /usr/bin/kubelet /usr/bin/crictl /opt/cni/bin/bridge /etc/kubernetes/manifests | cut -d: -f1 | tr '\\n' ' '"); owner != "kubelet cri-tools kubernetes-cni kubelet" {
				errorf(t, "%s: file owners %q", h.Name, owner)
			}
		}
	})

	t.Run("apt-get update with signed-by the lab key", func(t *testing.T) {
		out := mustSSH(ctx, t, l, "cp1", "cat /etc/apt/sources.list.d/kubernetes.list; sudo apt-get update 2>&1")
		t.Logf("cp1 apt-get update:\n%s", out)
		if !strings.Contains(out, "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.asc] http://172.30.0.1:5000/core:/stable:/"+rel.Minor()+"/deb/ /") {
			errorf(t, "sources file is not the signed-by line")
		}
		if !strings.Contains(out, "core:/stable:/"+rel.Minor()+"/deb  InRelease") {
			errorf(t, "apt-get update did not read the lab repository's InRelease")
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "N:") {
				errorf(t, "apt-get update: %s", l)
			}
		}
	})

	before := map[string]string{}
	for _, h := range st.Hosts {
		before[h.Name] = mustSSH(ctx, t, l, h.Name, hostStateScript)
	}
	second := create("second (converged)")
	if n := phaseChanges(second, "kubernetes"); n != 0 {
		errorf(t, "second create: kubernetes phase made %d change(s)", n)
	}
	for _, h := range st.Hosts {
		// A logged command spans lines (scripts are multi-line): an entry runs to the next one.
		inExec := false
		for _, line := range strings.Split(hostLogOfLastRun(t, l.StateDir(), h.Name), "\n") {
			switch {
			case strings.HasPrefix(line, "exec "):
				inExec = true
			case strings.HasPrefix(line, "query "), strings.HasPrefix(line, "upload "):
				inExec = false
			}
			if inExec && !strings.HasPrefix(line, "  | ") && (strings.Contains(line, "apt-get") || strings.Contains(line, "apt-mark")) {
				errorf(t, "%s: the converged run changed packages: %.200s", h.Name, line)
			}
		}
	}
	for _, h := range st.Hosts {
		if after := mustSSH(ctx, t, l, h.Name, hostStateScript); after != before[h.Name] {
			errorf(t, "%s changed on the second create:\nbefore:\n%s\nafter:\n%s", h.Name, before[h.Name], after)
		}
	}
}

// hostLogOfLastRun returns a host's log file of the newest create run in the state dir.
func hostLogOfLastRun(t *testing.T, stateDir, host string) string {
	dirs, _ := filepath.Glob(filepath.Join(stateDir, "logs", "*-create-cluster"))
	sort.Strings(dirs)
	if len(dirs) == 0 {
		fatalf(t, "no create-cluster logs in %s/logs", stateDir)
	}
	data, err := os.ReadFile(filepath.Join(dirs[len(dirs)-1], host+".log"))
	if err != nil {
		fatal(t, err)
	}
	return string(data)
}

// checkCluster is scenario 1's cluster check: every node Ready with its InternalIP the spec's
// privateAddress, initialised by the lab CCM (providerID, no uninitialized taint), CoreDNS available.
func checkCluster(ctx context.Context, t *testing.T, l *hosts.Lab, st *hosts.State) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(l.StateDir(), "admin.conf"))
	if err != nil {
		fatal(t, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fatal(t, err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		fatal(t, err)
	}
	byName := map[string]corev1.Node{}
	for _, n := range nodes.Items {
		byName[n.Name] = n
	}
	for _, h := range st.Hosts {
		n, ok := byName[h.Name]
		if !ok {
			errorf(t, "node %s missing", h.Name)
			continue
		}
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		ip := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ip = a.Address
			}
		}
		if !ready || ip != h.PrivateAddress {
			errorf(t, "node %s: ready=%v InternalIP=%s, want Ready and %s", h.Name, ready, ip, h.PrivateAddress)
		}
		if n.Spec.ProviderID != "lab://"+h.Name {
			errorf(t, "node %s: providerID %q, want lab://%s (CCM)", h.Name, n.Spec.ProviderID, h.Name)
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == "node.cloudprovider.kubernetes.io/uninitialized" {
				errorf(t, "node %s still carries the CCM's uninitialized taint", h.Name)
			}
		}
		t.Logf("node %s: %s, kubelet %s", h.Name, ip, n.Status.NodeInfo.KubeletVersion)
	}
	d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil {
		fatal(t, err)
	}
	if d.Spec.Replicas == nil || d.Status.AvailableReplicas != *d.Spec.Replicas {
		errorf(t, "coredns: %d of %v available", d.Status.AvailableReplicas, d.Spec.Replicas)
	}
}

// tamperedMirror points the artifact mirror at a server of the test's that answers runc's URL with
// other bytes and a runc.sha256sum that matches them. Create must stop at runc on every host with
// "checksum mismatch ... pinned", never ask the mirror for its checksum file, and leave no runc.
func tamperedMirror(ctx context.Context, t *testing.T, l *hosts.Lab, st *hosts.State, installer string, c *v1alpha1.Cluster) {
	evil := []byte("#!/bin/sh\necho this is not runc\n")
	sum := sha256.Sum256(evil)
	runcPath := strings.TrimPrefix(mirror.RuncPath(versions.Containerd().Runc), "/")
	var mu sync.Mutex
	asked := map[string]int{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.Path]++
		mu.Unlock()
		switch path.Base(r.URL.Path) {
		case "runc.amd64":
			w.Write(evil)
		case "runc.sha256sum":
			fmt.Fprintf(w, "%x  runc.amd64\n", sum)
		default:
			http.NotFound(w, r)
		}
	})}
	ln, err := net.Listen("tcp", st.Public.Gateway+":0")
	if err != nil {
		fatal(t, err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	v := *c
	v.Spec.Install.ArtifactMirror = "http://" + ln.Addr().String()
	out, err := yaml.Marshal(&v)
	if err != nil {
		fatal(t, err)
	}
	spec := filepath.Join(filepath.Dir(l.SpecFile()), "cluster-tampered-mirror.yaml")
	if err := os.WriteFile(spec, out, 0o600); err != nil {
		fatal(t, err)
	}
	pins, err := os.ReadFile(filepath.Join(filepath.Dir(l.SpecFile()), c.Spec.Install.ChecksumsFile))
	if err != nil {
		fatal(t, err)
	}
	if !strings.Contains(string(pins), "  "+runcPath+"\n") {
		fatalf(t, "the lab's pins do not name %s:\n%s", runcPath, pins)
	}
	res, err := exec.CommandContext(ctx, installer, "create", "cluster", "-f", spec, "--state-dir", t.TempDir()).CombinedOutput()
	want := fmt.Sprintf("checksum mismatch for %s/%s: got %x, pinned ", v.Spec.Install.ArtifactMirror, runcPath, sum)
	if err == nil || !strings.Contains(string(res), want) {
		errorf(t, "create from a tampered mirror: %v, want %q:\n%s", err, want, res)
	}
	t.Logf("MEASURE a mirror serving a substitute runc with a matching checksum: %s", lastLine(string(res)))
	mu.Lock()
	defer mu.Unlock()
	if asked["/"+runcPath] == 0 {
		errorf(t, "no host asked the tampered mirror for runc: %v", asked)
	}
	for p := range asked {
		if strings.HasSuffix(p, ".sha256sum") || strings.HasSuffix(p, ".sha256") {
			errorf(t, "a host read the mirror's checksum file %s", p)
		}
	}
	for _, h := range st.Hosts {
		if got := mustSSH(ctx, t, l, h.Name, "ls /usr/local/sbin/runc /usr/local/sbin/runc.installer-download 2>/dev/null | wc -l"); got != "0" {
			errorf(t, "%s: a runc file after the refused download (%s)", h.Name, got)
		}
	}
}
