package phases

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/phases/internal/simhost"
	"installer.dev/installer/pkg/pins"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
	"installer.dev/installer/pkg/versions"
)

// simCluster is the one cluster harness of the workflow tests: a spec whose hosts are simulated
// (simhost), the PKI and renderers' inputs a run needs, and the run, marks and transcript helpers
// that create, join, upgrade and reset tests share.
type simCluster struct {
	*simhost.Cluster
	spec *v1alpha1.Cluster
	pki  *pki.Bundle
	in   manifests.Inputs
}

// simSpec is a validated spec at version with hosts named cpN (control planes, address 10.0.0.1N)
// and wN (workers, 10.0.0.2N); mutate, when set, changes it before it is defaulted and validated.
func simSpec(t *testing.T, version string, inst v1alpha1.Install, mutate func(*v1alpha1.ClusterSpec), names ...string) *v1alpha1.Cluster {
	t.Helper()
	c := &v1alpha1.Cluster{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: v1alpha1.ObjectMeta{Name: "sim"},
		Spec: v1alpha1.ClusterSpec{KubernetesVersion: version, Install: inst}}
	for _, n := range names {
		role, net := v1alpha1.RoleWorker, "2"
		if strings.HasPrefix(n, "cp") {
			role, net = v1alpha1.RoleControlPlane, "1"
		}
		c.Spec.Hosts = append(c.Spec.Hosts, v1alpha1.Host{Name: n, Address: "10.0.0." + net + strings.TrimLeft(n, "cpw"), Role: role})
	}
	if mutate != nil {
		mutate(&c.Spec)
	}
	c.Default()
	if c.Spec.Install.ChecksumsFile == "" {
		c.Spec.Install.ChecksumsFile = simPins(t, &c.Spec)
	}
	if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	return c
}

// simPin is the digest simPins pins for the file at url.
func simPin(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:])
}

// simPins writes an install.checksumsFile that pins every file of every supported release on
// the spec's mirrors for amd64 (the simulated hosts do not check the digests; download.sh does, in
// pkg/install's tests).
func simPins(t testing.TB, s *v1alpha1.ClusterSpec) string {
	t.Helper()
	table := pins.Table{}
	for _, r := range versions.Releases() {
		rs := *s
		rs.KubernetesVersion = r.Kubernetes
		rs.Install.Source = v1alpha1.InstallBinary
		urls, err := install.Downloads(&rs, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range urls {
			table[install.ReleasePath(&rs, u)] = simPin(u)
		}
	}
	p := filepath.Join(t.TempDir(), "pins.sha256")
	if err := os.WriteFile(p, table.Format(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// createSpec is the spec the create, join and reset tests start from (cp1, w1, w2 unless named):
// v1.36.5 from binary mirrors, containerd through an apt proxy.
func createSpec(t *testing.T, names ...string) *v1alpha1.Cluster {
	t.Helper()
	return createSpecWith(t, nil, names...)
}

// createSpecWith is createSpec changed by mutate before it is defaulted.
func createSpecWith(t *testing.T, mutate func(*v1alpha1.ClusterSpec), names ...string) *v1alpha1.Cluster {
	t.Helper()
	if len(names) == 0 {
		names = []string{"cp1", "w1", "w2"}
	}
	return simSpec(t, "v1.36.5", v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: "http://mirror:8080",
		ArtifactMirror: "http://mirror:8080", PackageProxy: "http://mirror:3142"}, mutate, names...)
}

// upgradeSpec is the upgrade tests' spec: to v1.37.2 from binary mirrors, without a CNI (its
// server-side apply needs a real apiserver: the lab proves the CNI/CCM re-apply).
func upgradeSpec(t *testing.T, names ...string) *v1alpha1.Cluster {
	t.Helper()
	return simSpec(t, "v1.37.2", v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: "http://mirror:8080", ArtifactMirror: "http://mirror:8080"},
		func(s *v1alpha1.ClusterSpec) { s.CNI = v1alpha1.CNI{Plugin: v1alpha1.CNINone} }, names...)
}

// newSimCluster simulates the spec's hosts, fresh.
func newSimCluster(t *testing.T, c *v1alpha1.Cluster) *simCluster {
	t.Helper()
	in, err := manifests.LoadInputs(context.Background(), &c.Spec, manifests.LoadOptions{VRRPPassword: "vrrppass", HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	sc := &simCluster{Cluster: simhost.NewCluster(), spec: c, pki: testPKI(t), in: in}
	for _, h := range c.Spec.Hosts {
		sc.Add(h.Name, h.Address, h.Role == v1alpha1.RoleControlPlane)
	}
	return sc
}

// newUpgradeCluster is upgradeSpec's cluster running at version from.
func newUpgradeCluster(t *testing.T, from string, names ...string) *simCluster {
	t.Helper()
	return runningCluster(t, upgradeSpec(t, names...), from)
}

// runningCluster simulates the spec's hosts as create left them at version from, with a cluster
// API: the tools (from packages when the spec installs packages), kubeadm's state, the PKI and the
// kubelet's files as rendered.
func runningCluster(t *testing.T, c *v1alpha1.Cluster, from string) *simCluster {
	t.Helper()
	return runningClusterWith(t, c, from, nil)
}

// runningClusterWith is runningCluster with the nodes' seed changed by mutate.
func runningClusterWith(t *testing.T, c *v1alpha1.Cluster, from string, mutate func(*simhost.Seed)) *simCluster {
	t.Helper()
	sc := newSimCluster(t, c)
	rel, ok := versions.Lookup(from)
	if !ok {
		t.Fatalf("no release %s", from)
	}
	seed := simhost.Seed{Kubernetes: from, Crictl: rel.CRITools, CNI: rel.CNIPlugins}
	if c.Spec.Install.Source == v1alpha1.InstallPackage {
		v := strings.TrimPrefix(from, "v") + "-" + rel.PackageRevision
		seed.Packages = map[string]string{"kubeadm": v, "kubelet": v, "kubectl": v, "cri-tools": rel.CRIToolsPackage, "kubernetes-cni": rel.CNIPackage}
	}
	if mutate != nil {
		mutate(&seed)
	}
	for _, spec := range c.Spec.Hosts {
		h := sc.Host(spec.Name)
		h.Seed(seed)
		for _, f := range sc.pki.ControlPlaneFiles() {
			if spec.Role == v1alpha1.RoleControlPlane || f.Path == facts.PKIDir+"/ca.crt" {
				h.SetFile(f.Path, f.Content, f.Mode, "root:root")
			}
		}
		files, err := manifests.RenderHostFiles(manifests.HostInput{Spec: &c.Spec, Host: spec, Facts: facts.Host{Name: spec.Name, Arch: "amd64", CgroupVersion: 2,
			OS: facts.OS{ID: "debian", VersionID: "12", PackageManager: facts.Apt}}, Inputs: sc.in})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(files.Kubelet, files.HAEndpoint...) {
			mode := f.Mode
			if mode == 0 {
				mode = 0o644
			}
			h.SetFile(f.Path, f.Content, mode, "root:root")
		}
		if seed.Packages != nil {
			h.SetFile(manifests.AptKeyringPath, simhost.RepositoryKey, 0o644, "root:root")
		}
	}
	if _, err := sc.StartAPI(from); err != nil {
		t.Fatal(err)
	}
	return sc
}

// newRun is a run over the targets (every host when none) and the read-only hosts, connected to
// the simulated hosts (and to the fake cluster API when there is one), with a fresh state directory.
func (sc *simCluster) newRun(t *testing.T, targets []string, readOnly ...string) *Run {
	t.Helper()
	r, err := NewRun(sc.spec, targets, readOnly...)
	if err != nil {
		t.Fatal(err)
	}
	r.PKI, r.Inputs, r.StateDir = sc.pki, sc.in, state.Dir(t.TempDir())
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) { return sc.Host(h.Name), nil }
	if sc.API != nil {
		r.api = connectedAPI(&kubeapi.Client{Kube: sc.API.Clientset})
	}
	return r
}

// run executes list over the targets (every host when none).
func (sc *simCluster) run(t *testing.T, list []Phase, targets ...string) (*Run, error) {
	t.Helper()
	r := sc.newRun(t, targets)
	_, err := Execute(context.Background(), r, list)
	return r, err
}

// create runs create's host phases; they must succeed.
func (sc *simCluster) create(t *testing.T) *Run {
	t.Helper()
	r, err := sc.run(t, hostPhases())
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return r
}

// upgrade runs the upgrade workflow with the state directory stateDir.
func (sc *simCluster) upgrade(t *testing.T, stateDir string, dryRun bool, o UpgradeOptions) (*Run, error) {
	t.Helper()
	r := sc.newRun(t, nil)
	r.StateDir, r.DryRun = state.Dir(stateDir), dryRun
	o.pollInterval = time.Millisecond
	_, err := Execute(context.Background(), r, Upgrade(o))
	return r, err
}

// hostPhases are the create workflow's phases that act on hosts only (the cluster API phases are
// proven against a real cluster in the lab).
func hostPhases() []Phase {
	var out []Phase
	for _, p := range CreateCluster() {
		out = append(out, p)
		if p.Name() == "join/workers" {
			break
		}
	}
	return out
}

// simMarks is where each host's transcript and the API's were at one moment.
type simMarks struct {
	hosts map[string]int
	api   int
}

func (sc *simCluster) marks() simMarks {
	m := simMarks{hosts: map[string]int{}}
	for _, h := range sc.Hosts() {
		m.hosts[h.Name()] = h.Mark()
	}
	if sc.API != nil {
		m.api = sc.API.Mark()
	}
	return m
}

// snapshotTime is the time in an etcd snapshot's name, "<time>" in transcripts.
var snapshotTime = regexp.MustCompile(`[0-9]{8}T[0-9]{6}\.[0-9]{3}Z`)

// transcript is what each host saw since from, in spec order, one simhost.CallLine each, then the
// changes asked of the fake cluster API when there is one.
func (sc *simCluster) transcript(from simMarks) string {
	var b strings.Builder
	for _, spec := range sc.spec.Spec.Hosts {
		lines := sc.Host(spec.Name).Transcript(from.hosts[spec.Name])
		fmt.Fprintf(&b, "== %s (%d calls)\n", spec.Name, len(lines))
		for _, l := range lines {
			b.WriteString(snapshotTime.ReplaceAllString(l, "<time>") + "\n")
		}
	}
	if sc.API != nil {
		b.WriteString("== API changes\n")
		for _, l := range sc.API.Changes(from.api) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// checkGolden compares got with testdata/name (rewritten with -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if got != string(want) {
		t.Errorf("transcript differs from %s (run with -update after checking):\n%s", golden, got)
	}
}

func totalChanges(r *Run) int {
	n := 0
	for _, c := range r.Changes() {
		n += c
	}
	return n
}

// sharedPKI is one cluster PKI for every simulated cluster of the package's tests (RSA keys are
// slow to generate); foreignPKI another cluster's, for the identity tests.
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
