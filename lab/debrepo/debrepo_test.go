package debrepo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"installer.dev/installer/pkg/pgpkey"
	"installer.dev/installer/pkg/versions"
)

// fakeBinaries are small files standing in for the builder's binaries (the packaging is under test,
// not the binaries).
type fakeBinaries map[string]string

func (f fakeBinaries) Path(name string) string { return f[name] }

func newFakeBinaries(t *testing.T, tag string) fakeBinaries {
	t.Helper()
	dir := t.TempDir()
	bins := fakeBinaries{}
	for _, n := range append([]string{"kubeadm", "kubelet", "kubectl", "crictl"}, CNIPlugins...) {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+n+" "+tag+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		bins[n] = p
	}
	return bins
}

func TestReleasePackages(t *testing.T) {
	type row struct {
		name, version string
		depends       []string
		dests         []string
	}
	for _, r := range versions.Releases() {
		kube := strings.TrimPrefix(r.Kubernetes, "v") + "-1.1"
		want := []row{
			{"kubeadm", kube, []string{"cri-tools (>= 1.30.0)"}, []string{"/usr/bin/kubeadm", "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"}},
			{"kubelet", kube, []string{"kubernetes-cni (>= 1.2.0)", "mount", "util-linux"}, []string{"/usr/bin/kubelet", "/usr/lib/systemd/system/kubelet.service", "/etc/default/kubelet"}},
			{"kubectl", kube, nil, []string{"/usr/bin/kubectl"}},
			{"cri-tools", strings.TrimPrefix(r.CRITools, "v") + "-1.1", nil, []string{"/usr/bin/crictl"}},
			{"kubernetes-cni", strings.TrimPrefix(r.CNIPlugins, "v") + "-1.1", nil, []string{"/opt/cni/bin/bridge", "/opt/cni/bin/host-local", "/opt/cni/bin/loopback", "/opt/cni/bin/portmap"}},
		}
		pkgs, err := ReleasePackages(r, newFakeBinaries(t, r.Kubernetes))
		if err != nil {
			t.Fatal(err)
		}
		var got []row
		for _, p := range pkgs {
			var dests []string
			for _, f := range p.Files {
				dests = append(dests, f.Dest)
			}
			got = append(got, row{p.Name, p.FullVersion(), p.Depends, dests})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s packages:\n got %+v\nwant %+v", r.Kubernetes, got, want)
		}
	}
}

func TestReleasePackagesMissingBinary(t *testing.T) {
	bins := newFakeBinaries(t, "x")
	delete(bins, "kubelet")
	_, err := ReleasePackages(versions.Default(), bins)
	if err == nil || !strings.Contains(err.Error(), "no binary for /usr/bin/kubelet") {
		t.Fatalf("err = %v, want a missing kubelet binary", err)
	}
}

// buildTestRepo builds both supported releases' repositories from fake binaries.
func buildTestRepo(t *testing.T) (cache, root string, repos []Repository, key *Key) {
	t.Helper()
	cache, root = t.TempDir(), t.TempDir()
	var rels []Release
	for _, r := range versions.Releases() {
		rels = append(rels, Release{Release: r, Binaries: newFakeBinaries(t, r.Kubernetes)})
	}
	repos, key, err := Build(context.Background(), Options{CacheDir: cache, Root: root}, rels)
	if err != nil {
		t.Fatal(err)
	}
	return cache, root, repos, key
}

func TestBuildRepositoryLayoutAndControl(t *testing.T) {
	cache, root, repos, key := buildTestRepo(t)
	if len(repos) != len(versions.Releases()) {
		t.Fatalf("%d repositories, want one per minor", len(repos))
	}
	for _, r := range versions.Releases() {
		dir := filepath.Join(root, "core:", "stable:", r.Minor(), "deb")
		for _, f := range []string{"Release", "InRelease", "Release.gpg", "Packages", "Packages.gz", "Release.key"} {
			if !exists(filepath.Join(dir, f)) {
				t.Errorf("%s: %s missing", r.Minor(), f)
			}
		}
		published, _ := os.ReadFile(filepath.Join(dir, "Release.key"))
		if fp, err := pgpkey.Fingerprint(published); err != nil || fp != key.Fingerprint() {
			t.Errorf("%s: Release.key is %s (%v), want the signing key %s", r.Minor(), fp, err, key.Fingerprint())
		}
		kube := strings.TrimPrefix(r.Kubernetes, "v") + "-1.1"
		want := map[string][]string{
			"kubeadm_" + kube + "_amd64.deb":                {"Package: kubeadm", "Version: " + kube, "Architecture: amd64", "Depends: cri-tools (>= 1.30.0)", "Section: admin"},
			"kubelet_" + kube + "_amd64.deb":                {"Package: kubelet", "Version: " + kube, "Depends: kubernetes-cni (>= 1.2.0), mount, util-linux", "Recommends: iptables (>= 1.8.4)"},
			"kubectl_" + kube + "_amd64.deb":                {"Package: kubectl", "Version: " + kube},
			"cri-tools_" + r.CRIToolsPackage + "_amd64.deb": {"Package: cri-tools", "Version: " + r.CRIToolsPackage},
			"kubernetes-cni_" + r.CNIPackage + "_amd64.deb": {"Package: kubernetes-cni", "Version: " + r.CNIPackage},
		}
		for file, fields := range want {
			control, err := ReadControl(filepath.Join(dir, file))
			if err != nil {
				t.Errorf("%s: %v", file, err)
				continue
			}
			for _, f := range fields {
				if !strings.Contains(control, f+"\n") {
					t.Errorf("%s: control lacks %q:\n%s", file, f, control)
				}
			}
		}
		// dpkg itself reads the packages: contents with modes, conffiles and maintainer scripts.
		kubelet := filepath.Join(dir, "kubelet_"+kube+"_amd64.deb")
		contents := dpkgDeb(t, "-c", kubelet)
		for _, want := range []string{"-rwxr-xr-x root/root", "./usr/bin/kubelet", "./usr/lib/systemd/system/kubelet.service",
			"./etc/default/kubelet", "./etc/kubernetes/manifests/", "./var/lib/kubelet/"} {
			if !strings.Contains(contents, want) {
				t.Errorf("kubelet contents lack %q:\n%s", want, contents)
			}
		}
		info := dpkgDeb(t, "-I", kubelet)
		for _, want := range []string{"postinst", "prerm", "postrm", "conffiles"} {
			if !strings.Contains(info, want) {
				t.Errorf("kubelet control members lack %s:\n%s", want, info)
			}
		}
		if got := dpkgDeb(t, "--ctrl-tarfile", kubelet); got == "" {
			t.Errorf("kubelet: empty control tarball")
		}
		cni := dpkgDeb(t, "-c", filepath.Join(dir, "kubernetes-cni_"+r.CNIPackage+"_amd64.deb"))
		for _, p := range append(CNIPlugins, "etc/cni/net.d/") {
			if !strings.Contains(cni, p) {
				t.Errorf("kubernetes-cni lacks %s:\n%s", p, cni)
			}
		}
	}
	st, err := os.Stat(filepath.Join(cache, "debrepo", "key", privateKeyName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("private key mode: %v %v, want 0600", st.Mode(), err)
	}
	if data, _ := os.ReadFile(key.PublicFile); !bytes.Contains(data, []byte("BEGIN PGP PUBLIC KEY BLOCK")) || bytes.Contains(data, []byte("PRIVATE")) {
		t.Errorf("public key file is not one armored public key")
	}
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestRepositorySignaturesAndHashes(t *testing.T) {
	_, root, _, key := buildTestRepo(t)
	pub, err := os.ReadFile(key.PublicFile)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(pub))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "core:", "stable:", versions.Default().Minor(), "deb")
	release, _ := os.ReadFile(filepath.Join(dir, "Release"))
	inRelease, _ := os.ReadFile(filepath.Join(dir, "InRelease"))
	block, _ := clearsign.Decode(inRelease)
	if block == nil {
		t.Fatal("InRelease is not clear-signed")
	}
	if _, err := block.VerifySignature(ring, nil); err != nil {
		t.Errorf("InRelease signature: %v", err)
	}
	if !bytes.Equal(bytes.TrimRight(block.Plaintext, "\n"), bytes.TrimRight(release, "\n")) {
		t.Errorf("InRelease text differs from Release")
	}
	sig, _ := os.Open(filepath.Join(dir, "Release.gpg"))
	defer sig.Close()
	if _, err := openpgp.CheckArmoredDetachedSignature(ring, bytes.NewReader(release), sig, nil); err != nil {
		t.Errorf("Release.gpg: %v", err)
	}
	for _, f := range []string{"Packages", "Packages.gz"} {
		data, _ := os.ReadFile(filepath.Join(dir, f))
		line := fmt.Sprintf(" %x %d %s\n", sha256.Sum256(data), len(data), f)
		if !strings.Contains(string(release), line) {
			t.Errorf("Release lacks %q:\n%s", line, release)
		}
	}
	for _, weak := range []string{"MD5Sum:", "SHA1:"} {
		if strings.Contains(string(release), weak) {
			t.Errorf("Release lists %s", weak)
		}
	}
	// gpgv is what apt runs on Debian 12: it must accept both forms with the key as a binary keyring.
	keyring := filepath.Join(t.TempDir(), "key.gpg")
	var bin bytes.Buffer
	if err := ring[0].Serialize(&bin); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyring, bin.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{filepath.Join(dir, "InRelease")}, {filepath.Join(dir, "Release.gpg"), filepath.Join(dir, "Release")}} {
		out, err := exec.Command("gpgv", append([]string{"--keyring", keyring}, args...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Good signature") {
			t.Errorf("gpgv %v: %v\n%s", args, err, out)
		}
	}
}

// TestAptGetUpdate runs the machine's apt against the repository over HTTP with a private state
// directory and signed-by the lab key: update must succeed without a single warning, and apt must see
// the pinned versions and the relationships.
func TestAptGetUpdate(t *testing.T) {
	_, root, _, key := buildTestRepo(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer srv.Close()
	base := t.TempDir()
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "etc/preferences.d", "etc/apt.conf.d", "etc/sources.list.d", "etc/trusted.gpg.d"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := versions.Default()
	sources := fmt.Sprintf("deb [signed-by=%s] %s%s /\n", key.PublicFile, srv.URL, RepositoryPath(r.Minor()))
	if err := os.WriteFile(filepath.Join(base, "etc/sources.list"), []byte(sources), 0o644); err != nil {
		t.Fatal(err)
	}
	status := filepath.Join(base, "status")
	if err := os.WriteFile(status, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	apt := func(cmd string, args ...string) string {
		argv := []string{"-o", "Dir::State=" + filepath.Join(base, "state"), "-o", "Dir::Cache=" + filepath.Join(base, "cache"),
			"-o", "Dir::Etc=" + filepath.Join(base, "etc"), "-o", "Dir::State::status=" + status,
			"-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=" + currentUser(), "-o", "Acquire::http::Proxy=DIRECT"}
		out, err := exec.Command(cmd, append(argv, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", cmd, args, err, out)
		}
		return string(out)
	}
	out := apt("apt-get", "update")
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "N:") {
			t.Errorf("apt-get update: %s", l)
		}
	}
	if !strings.Contains(out, "InRelease") {
		t.Errorf("apt-get update did not fetch InRelease:\n%s", out)
	}
	t.Logf("apt-get update:\n%s", out)
	kube := strings.TrimPrefix(r.Kubernetes, "v") + "-" + r.PackageRevision
	policy := apt("apt-cache", "policy", "kubeadm", "kubelet", "kubectl", "cri-tools", "kubernetes-cni")
	for _, v := range []string{kube, r.CRIToolsPackage, r.CNIPackage} {
		if !strings.Contains(policy, "Candidate: "+v) {
			t.Errorf("apt-cache policy lacks candidate %s:\n%s", v, policy)
		}
	}
	deps := apt("apt-cache", "depends", "kubelet", "kubeadm")
	var got []string
	for _, l := range strings.Split(deps, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "Depends:") || strings.HasPrefix(l, "Recommends:") {
			// <name> marks packages the private status file does not know (mount, util-linux...).
			got = append(got, strings.NewReplacer("<", "", ">", "").Replace(l))
		}
	}
	sort.Strings(got)
	want := []string{"Depends: cri-tools", "Depends: kubernetes-cni", "Depends: mount", "Depends: util-linux", "Recommends: iptables"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("apt-cache depends: got %q, want %q", got, want)
	}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

func TestBuildIsCached(t *testing.T) {
	cache, root := t.TempDir(), t.TempDir()
	rels := []Release{{Release: versions.Default(), Binaries: newFakeBinaries(t, "v")}}
	var log bytes.Buffer
	if _, _, err := Build(context.Background(), Options{CacheDir: cache, Root: root, Log: &log}, rels); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "debrepo: built"); n != 5 {
		t.Errorf("first build made %d packages, want 5:\n%s", n, log.String())
	}
	inRelease := filepath.Join(root, "core:", "stable:", versions.Default().Minor(), "deb", "InRelease")
	before, _ := os.ReadFile(inRelease)
	log.Reset()
	if _, _, err := Build(context.Background(), Options{CacheDir: cache, Root: root, Log: &log}, rels); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(inRelease)
	if log.Len() != 0 || !bytes.Equal(before, after) {
		t.Errorf("second build changed something: log %q, InRelease same=%v", log.String(), bytes.Equal(before, after))
	}
}
