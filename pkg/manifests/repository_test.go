package manifests

import (
	"reflect"
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
)

const armoredKey = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjMEZ\n-----END PGP PUBLIC KEY BLOCK-----\n"

// repositoryHost renders the repository group of a v1.37.2 package install from a mirror, with the
// key file (nil: none named) and package manager given.
func repositoryHost(t *testing.T, pm string, key []byte, proxy string) HostFiles {
	t.Helper()
	s := defaulted(t, func(s *v1alpha1.ClusterSpec) {
		s.KubernetesVersion = "v1.37.2"
		s.Install.PackageRepository = "http://172.30.0.1:5000/core:/stable:"
		s.Install.PackageProxy = proxy
		if key != nil {
			s.Install.PackageRepositoryKeyFile = "/keys/kubernetes.key"
		}
	})
	f := facts.Assumed(s, s.Hosts[2])
	f.OS.PackageManager = facts.PackageManager(pm)
	in := Inputs{Files: map[string][]byte{}}
	if key != nil {
		in.Files["/keys/kubernetes.key"] = key
	}
	files, err := RenderHostFiles(HostInput{Spec: s, Host: s.Hosts[2], Facts: f, Inputs: in})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func paths(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

// TestRepositoryFiles pins the repository's files byte for byte (hosts compare checksums, so a
// changed byte is a change on every converged host) and where the key comes from.
func TestRepositoryFiles(t *testing.T) {
	const aptSources = "# Managed by installer: the Kubernetes v1.37 package repository.\n" +
		"deb [signed-by=%s] http://172.30.0.1:5000/core:/stable:/v1.37/deb/ /\n"
	const rpmRepo = "# Managed by installer: the Kubernetes v1.37 package repository.\n[kubernetes]\nname=Kubernetes v1.37\n" +
		"baseurl=http://172.30.0.1:5000/core:/stable:/v1.37/rpm/\nenabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/kubernetes.asc\n" +
		"exclude=kubeadm kubelet kubectl cri-tools kubernetes-cni\n"
	binaryKey := []byte{0x99, 0x01, 0x0d, 0x04}
	tests := []struct {
		name, pm, proxy string
		key             []byte
		files           map[string]string // path -> content
		fetch           *RemoteFile
	}{
		{"apt, the repository's own key", "apt", "", nil,
			map[string]string{AptSourcesPath: strings.Replace(aptSources, "%s", AptKeyringPath, 1)},
			&RemoteFile{URL: "http://172.30.0.1:5000/core:/stable:/v1.37/deb/Release.key", Path: AptKeyringPath}},
		{"apt, armored key file", "apt", "", []byte(armoredKey),
			map[string]string{AptKeyringPath: armoredKey, AptSourcesPath: strings.Replace(aptSources, "%s", AptKeyringPath, 1)}, nil},
		// apt reads .asc keyrings as armored text only.
		{"apt, binary key file", "apt", "", binaryKey,
			map[string]string{AptBinaryKeyringPath: string(binaryKey), AptSourcesPath: strings.Replace(aptSources, "%s", AptBinaryKeyringPath, 1)}, nil},
		{"dnf, key file, proxy", "dnf", "http://10.0.0.5:3142", []byte(armoredKey),
			map[string]string{RPMKeyPath: armoredKey, RPMRepoPath: rpmRepo + "proxy=http://10.0.0.5:3142\n"}, nil},
		{"yum, the repository's own key", "yum", "", nil,
			map[string]string{RPMRepoPath: rpmRepo},
			&RemoteFile{URL: "http://172.30.0.1:5000/core:/stable:/v1.37/rpm/repodata/repomd.xml.key", Path: RPMKeyPath}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := repositoryHost(t, tt.pm, tt.key, tt.proxy)
			got := map[string]string{}
			for _, f := range files.Repository {
				got[f.Path] = string(f.Content)
				if f.Mode != 0o644 || f.Sensitive {
					t.Errorf("%s: mode %04o sensitive %t", f.Path, f.Mode, f.Sensitive)
				}
			}
			if !reflect.DeepEqual(got, tt.files) {
				t.Errorf("files:\n got %q\nwant %q", got, tt.files)
			}
			if !reflect.DeepEqual(files.RepositoryKey, tt.fetch) {
				t.Errorf("key fetched: %+v, want %+v", files.RepositoryKey, tt.fetch)
			}
			// The key sorts before the list that names it: it is uploaded first.
			if p := paths(files.Repository); len(p) == 2 && p[1] != AptSourcesPath && p[1] != RPMRepoPath {
				t.Errorf("upload order %v", p)
			}
		})
	}
}

// TestRepositoryOnlyForPackageInstalls: binary and bundle installs get no repository; a package
// install on a host without a known package manager is an error, not a silent skip.
func TestRepositoryOnlyForPackageInstalls(t *testing.T) {
	s := defaulted(t, func(s *v1alpha1.ClusterSpec) { s.Install.Source = v1alpha1.InstallBinary })
	files, err := RenderHostFiles(HostInput{Spec: s, Host: s.Hosts[2], Facts: facts.Host{}})
	if err != nil || files.Repository != nil || files.RepositoryKey != nil {
		t.Errorf("binary install: %v, %+v, %v", paths(files.Repository), files.RepositoryKey, err)
	}
	pkg := defaulted(t, nil)
	if _, err := RenderHostFiles(HostInput{Spec: pkg, Host: pkg.Hosts[2], Facts: facts.Host{}}); err == nil ||
		!strings.Contains(err.Error(), `no supported package manager (found "")`) {
		t.Errorf("err = %v", err)
	}
	pkg.Install.PackageRepositoryKeyFile = "/not/loaded.asc"
	if _, err := RenderHostFiles(HostInput{Spec: pkg, Host: pkg.Hosts[2], Facts: facts.Assumed(pkg, pkg.Hosts[2])}); err == nil ||
		!strings.Contains(err.Error(), "spec.install.packageRepositoryKeyFile: the content of /not/loaded.asc was not loaded") {
		t.Errorf("err = %v", err)
	}
}

// TestHostFilesGroups: each file is in the group of the phase that uploads it, and All lists each
// once, in upload order.
func TestHostFilesGroups(t *testing.T) {
	s := defaulted(t, func(s *v1alpha1.ClusterSpec) {
		s.Install.Source = v1alpha1.InstallBinary
		s.LoadBalancer = v1alpha1.LoadBalancer{Type: v1alpha1.LoadBalancerKeepalivedHAProxy, VIP: "10.0.0.100"}
		s.Proxy.HTTP = "http://proxy:3128"
	})
	files, err := RenderHostFiles(HostInput{Spec: s, Host: s.Hosts[0], Facts: facts.Assumed(s, s.Hosts[0]), Inputs: Inputs{VRRPPassword: "abcd1234"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"Node":       {ModulesLoadPath, SysctlPath},
		"Runtime":    {ContainerdConfigPath, ContainerdUnitPath, ContainerdProxyPath},
		"Kubelet":    {CrictlConfigPath, debianKubeletEnvPath, KubeletUnitPath, KubeletDropInPath, KubeletProxyPath},
		"HAEndpoint": {HAProxyConfigPath, KeepalivedCheckPath, KeepalivedConfigPath, HAProxyPodPath, KeepalivedPodPath},
	}
	got := map[string][]string{"Node": paths(files.Node), "Runtime": paths(files.Runtime), "Kubelet": paths(files.Kubelet), "HAEndpoint": paths(files.HAEndpoint)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups:\n got %q\nwant %q", got, want)
	}
	var all []string
	for _, g := range []string{"Node", "Runtime", "Kubelet", "HAEndpoint"} {
		all = append(all, want[g]...)
	}
	if got := paths(files.All()); !reflect.DeepEqual(got, all) {
		t.Errorf("All() = %q, want %q", got, all)
	}
}
