package phases

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pgpkey"
	"installer.dev/installer/pkg/phases/internal/simhost"
)

const testProxy = "http://10.0.0.5:3142"

// packageHost is one host of a package-install spec (v1.37.2, a local repository key, an apt cache)
// on a simulated host that lacks the missing prerequisites.
func packageHost(t *testing.T, pm facts.PackageManager, missing ...string) (*Run, *Host, *simhost.Host) {
	t.Helper()
	c := testCluster(1)
	c.Spec.KubernetesVersion = "v1.37.2"
	c.Spec.Install.Source = v1alpha1.InstallPackage
	c.Spec.Install.PackageRepository = "http://172.30.0.1:5000/core:/stable:"
	c.Spec.Install.PackageProxy = testProxy
	key := "/keys/key.asc"
	c.Spec.Install.PackageRepositoryKeyFile = key
	r, err := NewRun(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Inputs.Files = map[string][]byte{key: simhost.RepositoryKey}
	h := r.All()[0]
	sim := simhost.New(h.Name(), h.Spec.Address)
	sim.MissingPrerequisites(missing...)
	h.SetConnection(sim)
	h.Facts.OS.PackageManager = pm
	return r, h, sim
}

// installWith runs installPackages on the host with the repository files rendered from the run's
// spec and inputs.
func installWith(t *testing.T, r *Run, h *Host, want map[string]string) error {
	t.Helper()
	files, err := hostFiles(h, &r.Cluster.Spec, r.Inputs, false)
	if err != nil {
		t.Fatal(err)
	}
	if want == nil {
		if want, err = install.KubePackageVersions(&r.Cluster.Spec); err != nil {
			t.Fatal(err)
		}
	}
	return installPackages(context.Background(), h, &r.Cluster.Spec, files, want)
}

// written is a transcript's line for an upload of a 0644 file.
func written(path string) string { return "write " + path + " 0644 sensitive=false" }

// pinned is NAME=VERSION as a transcript quotes it.
func pinned(name, version string) string { return "'" + name + "=" + version + "'" }

var (
	kubeNew = "1.37.2-1.1"
	kubeOld = "1.36.5-1.1"
	allNew  = map[string]string{"kubeadm": kubeNew, "kubelet": kubeNew, "kubectl": kubeNew, "cri-tools": "1.37.0-1.1", "kubernetes-cni": "1.9.1-1.1"}
	held    = []string{"kubeadm", "kubectl", "kubelet"}
)

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// TestAptPackages pins the apt commands for each starting state; the repository files are uploaded
// in every case (unchanged uploads are checksum-compared no-ops on real hosts).
func TestAptPackages(t *testing.T) {
	apt := "apt.sh " + testProxy + " "
	installAll := apt + "install --no-install-recommends " + pinned("kubeadm", kubeNew) + " " + pinned("kubelet", kubeNew) + " " + pinned("kubectl", kubeNew) +
		" " + pinned("cri-tools", "1.37.0-1.1") + " " + pinned("kubernetes-cni", "1.9.1-1.1")
	tests := []struct {
		name    string
		have    map[string]string
		held    []string
		missing []string
		want    map[string]string // nil: every package of the release
		cmds    []string
	}{
		{"fresh host", nil, nil, nil, nil, []string{apt + "update", installAll, "apt-mark hold kubeadm kubelet kubectl"}},
		{"converged: no apt command at all", allNew, held, nil, nil, nil},
		{"minor upgrade of held packages: unhold, install, hold", with(allNew, "kubeadm", kubeOld, "kubelet", kubeOld, "kubectl", kubeOld), held, nil, nil,
			[]string{apt + "update", "apt-mark unhold kubeadm kubelet kubectl",
				apt + "install --no-install-recommends " + pinned("kubeadm", kubeNew) + " " + pinned("kubelet", kubeNew) + " " + pinned("kubectl", kubeNew),
				"apt-mark hold kubeadm kubelet kubectl"}},
		{"only the kubelet differs", with(allNew, "kubelet", kubeOld), held, nil, nil,
			[]string{apt + "update", "apt-mark unhold kubelet", apt + "install --no-install-recommends " + pinned("kubelet", kubeNew), "apt-mark hold kubelet"}},
		{"holds missing: hold only, no update", allNew, []string{"kubelet"}, nil, nil, []string{"apt-mark hold kubeadm kubectl"}},
		{"missing prerequisite", allNew, held, []string{"conntrack", "socat"}, nil, []string{apt + "update", apt + "install --no-install-recommends conntrack socat"}},
		{"kubeadm alone (the upgrade's first step)", with(allNew, "kubeadm", kubeOld, "kubelet", kubeOld, "kubectl", kubeOld), held, nil, map[string]string{"kubeadm": kubeNew},
			[]string{apt + "update", "apt-mark unhold kubeadm", apt + "install --no-install-recommends " + pinned("kubeadm", kubeNew), "apt-mark hold kubeadm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, h, sim := packageHost(t, "apt", tt.missing...)
			h.Facts.Packages, h.Facts.HeldPackages = tt.have, tt.held
			if err := installWith(t, r, h, tt.want); err != nil {
				t.Fatal(err)
			}
			got := sim.Transcript(0)
			compare := "file-states.sh " + manifests.AptKeyringPath + " " + manifests.AptSourcesPath
			query := "installed.sh " + install.CNIVersionAt + " " + strings.Join(install.PrerequisiteArgs(), " ")
			head := []string{compare, written(manifests.AptKeyringPath), written(manifests.AptSourcesPath), query}
			if !reflect.DeepEqual(got[:4], head) || !reflect.DeepEqual(got[4:], append([]string(nil), tt.cmds...)) && !(len(got) == 4 && tt.cmds == nil) {
				t.Errorf("commands:\n got %q\nwant %q + %q", got, head, tt.cmds)
			}
			src, _ := sim.File(manifests.AptSourcesPath)
			if want := "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.asc] http://172.30.0.1:5000/core:/stable:/v1.37/deb/ /\n"; !strings.HasSuffix(string(src.Content), want) {
				t.Errorf("sources file:\n%s\nwant it to end with %q", src.Content, want)
			}
			// The run now knows what the host has (and the host installed the missing
			// prerequisites): a second call does nothing.
			n := sim.Mark()
			if err := installWith(t, r, h, tt.want); err != nil {
				t.Fatal(err)
			}
			if again := sim.Transcript(n); !reflect.DeepEqual(again, []string{compare, query}) {
				t.Errorf("second call ran more than one comparison of the files and the query: %q", again)
			}
		})
	}
}

// TestAptLockHeld: apt's lock held by another process past the deadline is reported with its holder
// and the advice not to kill it, from the wrapper's own wait and from apt's message alike.
func TestAptLockHeld(t *testing.T) {
	tests := []struct {
		name, stderr, holder string
		code                 int
	}{
		{"wrapper's wait", "apt lock held by unattended-upgr (pid 812)", "unattended-upgr (pid 812)", install.AptLockHeldExit},
		{"apt's own timeout", "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)\nE: Unable to acquire the dpkg frontend lock", "Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)", 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, h, sim := packageHost(t, "apt")
			sim.FailAt("apt.sh "+testProxy+" update").Exit(tt.code, tt.stderr)
			err := installWith(t, r, h, nil)
			if err == nil {
				t.Fatal("a held lock did not fail the install")
			}
			for _, want := range []string{"apt-get update: apt's lock is held by " + tt.holder, "not released within 5m0s", "never kills it"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			for _, c := range sim.Commands(0) {
				if strings.Contains(c, "install --no-install-recommends") {
					t.Errorf("installed after the lock failure: %s", c)
				}
			}
		})
	}
}

// TestRPMPackages: dnf gets the repository file with exclude=, the pinned upstream versions of what
// differs (RPM releases differ from deb revisions), and nothing when the host is converged.
func TestRPMPackages(t *testing.T) {
	rpmNew := map[string]string{"kubeadm": "1.37.2-150500.1.1", "kubelet": "1.37.2-150500.1.1", "kubectl": "1.37.2-150500.1.1",
		"cri-tools": "1.37.0-150500.1.1", "kubernetes-cni": "1.9.1-150500.1.1"}
	tests := []struct {
		name string
		pm   facts.PackageManager
		have map[string]string
		cmds []string
	}{
		{"fresh dnf host", "dnf", nil, []string{"dnf.sh dnf " + testProxy + " '--disableexcludes=kubernetes' install kubeadm-1.37.2 kubelet-1.37.2 kubectl-1.37.2 cri-tools-1.37.0 kubernetes-cni-1.9.1"}},
		{"yum host, kubelet behind", "yum", with(rpmNew, "kubelet", "1.36.5-150500.1.1"), []string{"dnf.sh yum " + testProxy + " '--disableexcludes=kubernetes' install kubelet-1.37.2"}},
		{"converged", "dnf", rpmNew, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, h, sim := packageHost(t, tt.pm)
			h.Facts.Packages = tt.have
			if err := installWith(t, r, h, nil); err != nil {
				t.Fatal(err)
			}
			got := sim.Transcript(0)
			compare := "file-states.sh " + manifests.RPMKeyPath + " " + manifests.RPMRepoPath
			if len(got) < 4 || got[0] != compare || got[1] != written(manifests.RPMKeyPath) || got[2] != written(manifests.RPMRepoPath) || !reflect.DeepEqual(got[4:], tt.cmds) && !(tt.cmds == nil && len(got) == 4) {
				t.Errorf("commands: %q, want the key, the repo file, the query and %q", got, tt.cmds)
			}
			repo, _ := sim.File(manifests.RPMRepoPath)
			for _, want := range []string{"baseurl=http://172.30.0.1:5000/core:/stable:/v1.37/rpm/\n", "gpgcheck=1\n",
				"gpgkey=file:///etc/pki/rpm-gpg/kubernetes.asc\n", "exclude=kubeadm kubelet kubectl cri-tools kubernetes-cni\n", "proxy=" + testProxy + "\n"} {
				if !strings.Contains(string(repo.Content), want) {
					t.Errorf("repo file lacks %q:\n%s", want, repo.Content)
				}
			}
		})
	}
}

func TestPlanPackagesHoldsOnlyKubeTools(t *testing.T) {
	p := planPackages(allNew, nil, nil, sameDeb)
	if !reflect.DeepEqual(p.Hold, heldPackages) || len(p.Unhold) != 0 || len(p.Install) != 5 {
		t.Errorf("plan = %+v", p)
	}
}

// A binary key file goes to a .gpg keyring (apt reads .asc files as armored text only).
func TestAptBinaryKey(t *testing.T) {
	r, h, sim := packageHost(t, "apt")
	r.Inputs.Files[r.Cluster.Spec.Install.PackageRepositoryKeyFile] = []byte{0x99, 0x01, 0x0d, 0x04}
	h.Facts.Packages, h.Facts.HeldPackages = allNew, held
	if err := installWith(t, r, h, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := sim.File(manifests.AptBinaryKeyringPath); !ok {
		t.Errorf("binary key not at %s: %q", manifests.AptBinaryKeyringPath, sim.Transcript(0))
	}
	src, _ := sim.File(manifests.AptSourcesPath)
	if !strings.Contains(string(src.Content), "[signed-by="+manifests.AptBinaryKeyringPath+"]") {
		t.Errorf("sources file:\n%s", src.Content)
	}
}

// TestRepositoryKeyPinned: without a key file the host fetches the repository's own key, and it is
// installed only with the pinned fingerprint; a repository serving another key, or a host that
// already has another key at the keyring's path, stops the run before apt is told to trust it.
func TestRepositoryKeyPinned(t *testing.T) {
	pinnedHost := func(t *testing.T) (*Run, *Host, *simhost.Host) {
		r, h, sim := packageHost(t, "apt")
		r.Cluster.Spec.Install.PackageRepositoryKeyFile = ""
		r.Cluster.Spec.Install.PackageRepositoryKeyFingerprint = simhost.RepositoryKeyFingerprint
		h.Facts.Packages, h.Facts.HeldPackages = allNew, held
		return r, h, sim
	}
	fetch := "fetch-key.sh http://172.30.0.1:5000/core:/stable:/v1.37/deb/Release.key ''" // no spec.proxy

	t.Run("the pinned key", func(t *testing.T) {
		r, h, sim := pinnedHost(t)
		if err := installWith(t, r, h, nil); err != nil {
			t.Fatal(err)
		}
		got := sim.Transcript(0)
		want := []string{"read " + manifests.AptKeyringPath, fetch, written(manifests.AptKeyringPath), "file-states.sh " + manifests.AptSourcesPath, written(manifests.AptSourcesPath)}
		if !reflect.DeepEqual(got[:5], want) {
			t.Fatalf("commands:\n got %q\nwant %q first", got, want)
		}
		if f, _ := sim.File(manifests.AptKeyringPath); !bytes.Equal(f.Content, simhost.RepositoryKey) || f.Mode != 0o644 {
			t.Errorf("keyring %o %q", f.Mode, f.Content)
		}
		n := sim.Mark()
		if err := installWith(t, r, h, nil); err != nil {
			t.Fatal(err)
		}
		if again := sim.Transcript(n); len(again) == 0 || again[0] != "read "+manifests.AptKeyringPath || slices.Contains(again, fetch) {
			t.Errorf("second call: %q; want the installed key read and checked, nothing fetched", again)
		}
	})

	t.Run("the repository serves another key", func(t *testing.T) {
		r, h, sim := pinnedHost(t)
		sim.ServeRepositoryKey(simhost.OtherKey)
		err := installWith(t, r, h, nil)
		other, _ := pgpkey.Fingerprint(simhost.OtherKey)
		if err == nil || !strings.Contains(err.Error(), "is key "+other+", not the pinned "+simhost.RepositoryKeyFingerprint) || !strings.Contains(err.Error(), "nothing was installed") {
			t.Fatalf("error %v; want the refusal naming both fingerprints", err)
		}
		for _, l := range sim.Transcript(0) {
			if strings.HasPrefix(l, "write ") || strings.HasPrefix(l, "apt.sh") {
				t.Errorf("refused key, yet: %s", l)
			}
		}
	})

	t.Run("another key already installed", func(t *testing.T) {
		r, h, sim := pinnedHost(t)
		sim.SetFile(manifests.AptKeyringPath, simhost.OtherKey, 0o644, "root:root")
		err := installWith(t, r, h, nil)
		if err == nil || !strings.Contains(err.Error(), manifests.AptKeyringPath+" holds another key") || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("error %v; want the refusal naming the file", err)
		}
		if f, _ := sim.File(manifests.AptKeyringPath); !bytes.Equal(f.Content, simhost.OtherKey) {
			t.Error("the installed key was replaced")
		}
	})
}
