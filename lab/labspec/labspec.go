// Package labspec writes the cluster spec (DESIGN.md §2) that describes a running lab, so the installer
// under test and e2e tests get hosts, keys, the apt cache and the lab-only allowances from one place.
// It fills the product's own spec types (pkg/apis/installer/v1alpha1), so the file cannot drift from
// what the installer reads.
package labspec

import (
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// Host is one lab host as the spec lists it.
type Host struct {
	Name           string
	Address        string // public network: SSH, default route
	PrivateAddress string // private network: node IP, advertise address
	Role           string // control-plane | worker
}

// Mirror is what the lab's mirror servers (lab/mirror) serve; nil when they are not running.
type Mirror struct {
	BinaryMirror   string              // dl.k8s.io layout
	ArtifactMirror string              // GitHub release layout
	Registries     map[string][]string // registry name → endpoint URLs
	CCMImage       string              // the lab cloud controller manager image
	CCMArgs        []string
	// PackageRepository is the lab apt repositories' base URL up to the minor
	// (http://172.30.0.1:5000/core:/stable:); PackageRepositoryKeyFile the public key signing them.
	// The spec carries them for install.source package only.
	PackageRepository        string
	PackageRepositoryKeyFile string
	// ChecksumsFile pins the SHA-256 of every file the mirror serves (the lab builds them).
	ChecksumsFile string
}

// Input is everything the lab knows about itself. Paths are written as given: the installer reads
// relative paths from the spec file's directory.
type Input struct {
	Name              string
	KubernetesVersion string // empty: the installer's default
	Hosts             []Host
	User              string
	KeyFile           string
	KnownHostsFile    string
	PackageProxy      string
	LoadBalancer      string // none | keepalived-haproxy | kube-vip | external
	VIP               string
	VIPInterface      string
	Install           string // package | binary | bundle; empty: the installer's default
	Mirror            *Mirror
}

// Build returns the spec for a lab.
func Build(in Input) (*v1alpha1.Cluster, error) {
	if len(in.Hosts) == 0 {
		return nil, fmt.Errorf("lab spec: no hosts")
	}
	s := v1alpha1.ClusterSpec{
		KubernetesVersion: in.KubernetesVersion,
		SSH: v1alpha1.SSH{User: in.User, KeyFile: in.KeyFile, KnownHostsFile: in.KnownHostsFile,
			HostKeyPolicy: v1alpha1.HostKeyStrict},
		Install: v1alpha1.Install{Source: v1alpha1.InstallSource(in.Install), PackageProxy: in.PackageProxy},
		// The hosts cannot lower oom_score_adj (no CAP_SYS_RESOURCE in the lab).
		ContainerRuntime: v1alpha1.ContainerRuntime{Containerd: v1alpha1.Containerd{RestrictOOMScoreAdj: true}},
		// cgroup v1 allowances for Kubernetes >= 1.35 on this machine (DESIGN.md §4).
		Kubelet: v1alpha1.Kubelet{Config: map[string]any{"failCgroupV1": false}},
		Kubeadm: v1alpha1.Kubeadm{IgnorePreflightErrors: []string{"SystemVerification"}},
		// The conntrack table is global to the shared kernel: kube-proxy must not resize it.
		KubeProxy: v1alpha1.KubeProxy{Config: map[string]any{"conntrack": map[string]any{"maxPerCore": 0}}},
	}
	if in.LoadBalancer != "" && in.LoadBalancer != string(v1alpha1.LoadBalancerNone) {
		s.LoadBalancer = v1alpha1.LoadBalancer{Type: v1alpha1.LoadBalancerType(in.LoadBalancer), VIP: in.VIP,
			Interface: in.VIPInterface}
	}
	for _, h := range in.Hosts {
		s.Hosts = append(s.Hosts, v1alpha1.Host{Name: h.Name, Address: h.Address,
			PrivateAddress: h.PrivateAddress, Role: v1alpha1.Role(h.Role)})
	}
	if m := in.Mirror; m != nil {
		if s.Install.Source == "" {
			s.Install.Source = v1alpha1.InstallBinary
		}
		s.Install.BinaryMirror = m.BinaryMirror
		s.Install.ArtifactMirror = m.ArtifactMirror
		s.Install.ChecksumsFile = m.ChecksumsFile
		if s.Install.Source == v1alpha1.InstallPackage {
			s.Install.PackageRepository = m.PackageRepository
			s.Install.PackageRepositoryKeyFile = m.PackageRepositoryKeyFile
		}
		for reg, urls := range m.Registries {
			if s.Images.Mirrors == nil {
				s.Images.Mirrors = map[string][]v1alpha1.MirrorEndpoint{}
			}
			for _, u := range urls {
				s.Images.Mirrors[reg] = append(s.Images.Mirrors[reg], v1alpha1.MirrorEndpoint{URL: u})
			}
		}
		if m.CCMImage != "" {
			s.CloudProvider = v1alpha1.CloudProvider{Name: v1alpha1.CloudCustom, Image: m.CCMImage, Args: m.CCMArgs}
		}
	}
	return &v1alpha1.Cluster{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind,
		Metadata: v1alpha1.ObjectMeta{Name: in.Name}, Spec: s}, nil
}

// Marshal renders the spec as YAML, leaving out sections that are empty.
func Marshal(in Input) ([]byte, error) {
	c, err := Build(in)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal lab spec: %w", err)
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, fmt.Errorf("marshal lab spec: %w", err)
	}
	pruneEmpty(tree)
	out, err := yaml.Marshal(tree)
	if err != nil {
		return nil, fmt.Errorf("marshal lab spec: %w", err)
	}
	return out, nil
}

// pruneEmpty drops empty objects (`proxy: {}`, which encoding/json's omitempty keeps for structs);
// false and 0 stay, since the lab sets some fields to exactly those values.
func pruneEmpty(m map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			pruneEmpty(sub)
			if len(sub) == 0 {
				delete(m, k)
			}
		}
	}
}
