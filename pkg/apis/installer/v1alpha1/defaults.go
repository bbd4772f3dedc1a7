package v1alpha1

import (
	"net"
	"strings"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/pgpkey"
	"installer.dev/installer/pkg/versions"
)

// Defaults named in docs/spec.md.
const (
	DefaultPodSubnet         = "10.244.0.0/16"
	DefaultServiceSubnet     = "10.96.0.0/12"
	DefaultDNSDomain         = "cluster.local"
	DefaultSSHUser           = "root"
	DefaultSSHPort           = 22
	DefaultKnownHostsFile    = "~/.ssh/known_hosts"
	DefaultHAProxyPort       = 8443
	DefaultVirtualRouterID   = 51
	DefaultImageRepository   = "registry.k8s.io"
	DefaultPackageRepository = "https://pkgs.k8s.io/core:/stable:"
	// DefaultPackageRepositoryKeyFingerprint is the primary key of the Kubernetes project's
	// repositories on pkgs.k8s.io ("isv:kubernetes OBS Project <isv:kubernetes@build.opensuse.org>").
	// Every minor's Release.key carries it; only its expiry date is renewed.
	DefaultPackageRepositoryKeyFingerprint = "DE15B14486CD377B9E876E1A234654DA9A296436"
	DefaultBinaryMirror                    = "https://dl.k8s.io"
	DefaultArtifactMirror                  = "https://github.com"
	DefaultKubeProxyMode                   = "iptables"
)

// Default fills every unset field with its documented default. It is pure (no I/O, no environment)
// and idempotent; derived values that need host facts (the VIP interface) stay empty.
func (c *Cluster) Default() {
	s := &c.Spec
	switch v := s.KubernetesVersion; {
	case v == "":
		s.KubernetesVersion = versions.Default().Kubernetes
	case v[0] >= '0' && v[0] <= '9':
		// "1.37.2" as kubeadm and the package repositories spell it: the installer's form has the v.
		s.KubernetesVersion = "v" + v
	}
	if s.LoadBalancer.Type == "" {
		s.LoadBalancer.Type = LoadBalancerNone
	}
	// Only keepalived speaks VRRP; kube-vip elects its leader through a Lease.
	if s.LoadBalancer.Type == LoadBalancerKeepalivedHAProxy && s.LoadBalancer.VirtualRouterID == 0 {
		s.LoadBalancer.VirtualRouterID = DefaultVirtualRouterID
	}
	if s.ControlPlaneEndpoint.Host == "" {
		s.ControlPlaneEndpoint.Host = defaultEndpointHost(s)
	}
	if s.ControlPlaneEndpoint.Port == 0 {
		s.ControlPlaneEndpoint.Port = constants.APIServerPort
		if s.LoadBalancer.Type == LoadBalancerKeepalivedHAProxy {
			s.ControlPlaneEndpoint.Port = DefaultHAProxyPort
		}
	}

	if s.Networking.PodSubnet == "" {
		s.Networking.PodSubnet = DefaultPodSubnet
	}
	if s.Networking.ServiceSubnet == "" {
		s.Networking.ServiceSubnet = DefaultServiceSubnet
	}
	if s.Networking.DNSDomain == "" {
		s.Networking.DNSDomain = DefaultDNSDomain
	}

	if s.SSH.User == "" {
		s.SSH.User = DefaultSSHUser
	}
	if s.SSH.Port == 0 {
		s.SSH.Port = DefaultSSHPort
	}
	if s.SSH.Agent == nil {
		t := true
		s.SSH.Agent = &t
	}
	if s.SSH.KnownHostsFile == "" {
		s.SSH.KnownHostsFile = DefaultKnownHostsFile
	}
	if s.SSH.HostKeyPolicy == "" {
		s.SSH.HostKeyPolicy = HostKeyStrict
	}
	if b := s.SSH.Bastion; b != nil {
		if b.Port == 0 {
			b.Port = DefaultSSHPort
		}
		if b.User == "" {
			b.User = s.SSH.User
		}
		if b.KeyFile == "" {
			b.KeyFile = s.SSH.KeyFile
		}
	}

	for i := range s.Hosts {
		h := &s.Hosts[i]
		if h.PrivateAddress == "" && net.ParseIP(h.Address) != nil {
			h.PrivateAddress = h.Address
		}
	}

	if s.Install.Source == "" {
		s.Install.Source = InstallPackage
	}
	if s.Install.PackageRepository == "" {
		s.Install.PackageRepository = DefaultPackageRepository
	}
	s.Install.PackageRepositoryKeyFingerprint = pgpkey.Normalize(s.Install.PackageRepositoryKeyFingerprint)
	if s.Install.Source == InstallPackage && s.Install.PackageRepositoryKeyFile == "" && s.Install.PackageRepositoryKeyFingerprint == "" {
		s.Install.PackageRepositoryKeyFingerprint = DefaultPackageRepositoryKeyFingerprint
	}
	if s.Install.BinaryMirror == "" {
		s.Install.BinaryMirror = DefaultBinaryMirror
	}
	if s.Install.ArtifactMirror == "" {
		s.Install.ArtifactMirror = DefaultArtifactMirror
	}
	if s.ContainerRuntime.Containerd.Source == "" {
		s.ContainerRuntime.Containerd.Source = InstallBinary
	}
	if c := &s.ContainerRuntime.Containerd; c.Source == InstallBinary {
		if c.Version == "" {
			c.Version = versions.Containerd().Containerd
		} else if !strings.HasPrefix(c.Version, "v") {
			c.Version = "v" + c.Version
		}
	}
	if s.Images.Repository == "" {
		s.Images.Repository = DefaultImageRepository
	}
	if s.KubeProxy.Mode == "" {
		s.KubeProxy.Mode = DefaultKubeProxyMode
	}
	if s.CNI.Plugin == "" {
		s.CNI.Plugin = CNIFlannel
	}
	if s.CloudProvider.Name == "" {
		s.CloudProvider.Name = CloudNone
	}
}

// defaultEndpointHost is the VIP when there is one, else the first control plane's private address
// (its address when no private address is known).
func defaultEndpointHost(s *ClusterSpec) string {
	if s.LoadBalancer.Type == LoadBalancerExternal {
		return "" // only the user knows the external load balancer's address
	}
	if s.LoadBalancer.VIP != "" {
		return s.LoadBalancer.VIP
	}
	for _, h := range s.Hosts {
		if h.Role != RoleControlPlane {
			continue
		}
		if h.PrivateAddress != "" {
			return h.PrivateAddress
		}
		return h.Address
	}
	return ""
}

// ControlPlanes returns the control-plane hosts in spec order; the first one runs kubeadm init.
func (s *ClusterSpec) ControlPlanes() []Host { return s.hostsWithRole(RoleControlPlane) }

// Workers returns the worker hosts in spec order.
func (s *ClusterSpec) Workers() []Host { return s.hostsWithRole(RoleWorker) }

func (s *ClusterSpec) hostsWithRole(r Role) []Host {
	var out []Host
	for _, h := range s.Hosts {
		if h.Role == r {
			out = append(out, h)
		}
	}
	return out
}

// Removing returns the hosts marked remove, in spec order.
func (s *ClusterSpec) Removing() []Host {
	var out []Host
	for _, h := range s.Hosts {
		if h.Remove {
			out = append(out, h)
		}
	}
	return out
}

// WithoutRemoved is a copy of the cluster without the hosts marked remove: the cluster as it must
// become, which every file is rendered for.
func (c *Cluster) WithoutRemoved() *Cluster {
	out := *c
	out.Spec.Hosts = nil
	for _, h := range c.Spec.Hosts {
		if !h.Remove {
			out.Spec.Hosts = append(out.Spec.Hosts, h)
		}
	}
	return &out
}

// Host finds a host by name.
func (s *ClusterSpec) Host(name string) (Host, bool) {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// NodeIP is the address the node uses inside the cluster: privateAddress, else address.
func (h Host) NodeIP() string {
	if h.PrivateAddress != "" {
		return h.PrivateAddress
	}
	return h.Address
}

// ExternalCCM reports whether an external cloud-controller-manager is deployed.
func (s *ClusterSpec) ExternalCCM() bool {
	return s.CloudProvider.Name != "" && s.CloudProvider.Name != CloudNone
}

// EffectiveSSH merges a host's overrides into spec.ssh.
func (s *ClusterSpec) EffectiveSSH(h Host) SSH {
	e := s.SSH
	if o := h.SSH; o != nil {
		if o.User != "" {
			e.User = o.User
		}
		if o.Port != 0 {
			e.Port = o.Port
		}
		if o.KeyFile != "" {
			e.KeyFile = o.KeyFile
		}
		if o.PassphraseEnv != "" {
			e.PassphraseEnv = o.PassphraseEnv
		}
		if o.PasswordEnv != "" {
			e.PasswordEnv = o.PasswordEnv
		}
	}
	return e
}
