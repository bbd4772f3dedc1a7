package manifests

import (
	"fmt"
	"io/fs"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
)

// Paths of the per-host files other packages refer to.
const (
	KubeletUnitPath      = "/etc/systemd/system/kubelet.service"
	ContainerdUnitPath   = "/etc/systemd/system/containerd.service"
	KubeletDropInPath    = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
	SysctlPath           = "/etc/sysctl.d/99-kubernetes.conf"
	ModulesLoadPath      = "/etc/modules-load.d/kubernetes.conf"
	ContainerdProxyPath  = "/etc/systemd/system/containerd.service.d/http-proxy.conf"
	KubeletProxyPath     = "/etc/systemd/system/kubelet.service.d/http-proxy.conf"
	CrictlConfigPath     = "/etc/crictl.yaml"
	debianKubeletEnvPath = "/etc/default/kubelet"
	redhatKubeletEnvPath = "/etc/sysconfig/kubelet"
)

// HostInput is what RenderHostFiles reads for one host.
type HostInput struct {
	// Spec is the defaulted, validated spec.
	Spec *v1alpha1.ClusterSpec
	Host v1alpha1.Host
	// Facts are the host's facts; facts.Assumed ones for offline rendering.
	Facts  facts.Host
	Inputs Inputs
	// InitDone says kubeadm init has completed on the spec's first control plane. Only kube-vip
	// reads it: on that host it uses super-admin.conf until then (admin.conf has no rights before
	// init ends; kube-vip issue 684), admin.conf after.
	InitDone bool
}

// HostFiles are the files the installer writes on one host besides kubeadm's configuration, grouped
// by the phase that uploads them (which decides what a change restarts). Each group is sorted by
// path.
type HostFiles struct {
	// Node: the sysctls and kernel modules every node needs (phase prepare).
	Node []File
	// Runtime: containerd's config, registry mirrors, proxy drop-in and, for a binary install, its
	// unit (phase runtime, which restarts containerd when one changed).
	Runtime []File
	// Repository: for install.source package, the Kubernetes package repository of the spec's minor
	// (apt's sources list or the RPM .repo file) and its signing key when the spec names a key file
	// (phase kubernetes, before the packages).
	Repository []File
	// RepositoryKey is the repository's own signing key, which the host fetches itself when the
	// spec names no key file; nil otherwise.
	RepositoryKey *RemoteFile
	// Kubelet: crictl's config, the kubelet's proxy drop-in and, for binary and bundle installs, the
	// kubelet unit, kubeadm's drop-in and the defaults file (phase kubernetes, which reloads systemd
	// when one changed).
	Kubelet []File
	// HAEndpoint: keepalived and haproxy, or kube-vip, on control planes (phase ha-endpoint).
	HAEndpoint []File
}

// All returns every group's files in the order the phases upload them.
func (h HostFiles) All() []File {
	var out []File
	for _, g := range [][]File{h.Node, h.Runtime, h.Repository, h.Kubelet, h.HAEndpoint} {
		out = append(out, g...)
	}
	return out
}

// RenderHostFiles renders every file the installer writes on one host besides kubeadm's
// configuration, each in the group of the phase that uploads it. The spec must be defaulted and
// validated; facts may be Assumed ones.
func RenderHostFiles(in HostInput) (HostFiles, error) {
	spec, host, f := in.Spec, in.Host, in.Facts
	var out HostFiles
	add := func(group *[]File, name, p string, mode uint32, data any) error {
		b, err := render(name, data)
		if err != nil {
			return err
		}
		*group = append(*group, File{Path: p, Mode: fsMode(mode), Content: b})
		return nil
	}
	if err := add(&out.Node, "sysctl.conf.tmpl", SysctlPath, 0o644, nil); err != nil {
		return HostFiles{}, err
	}
	if err := add(&out.Node, "modules-load.conf.tmpl", ModulesLoadPath, 0o644, nil); err != nil {
		return HostFiles{}, err
	}
	if err := add(&out.Kubelet, "crictl.yaml.tmpl", CrictlConfigPath, 0o644, nil); err != nil {
		return HostFiles{}, err
	}

	cfg, err := containerdConfig(spec, f)
	if err != nil {
		return HostFiles{}, fmt.Errorf("host %s: %w", host.Name, err)
	}
	out.Runtime = append(out.Runtime, cfg)
	mirrors, err := registryHosts(spec, in.Inputs)
	if err != nil {
		return HostFiles{}, fmt.Errorf("host %s: %w", host.Name, err)
	}
	out.Runtime = append(out.Runtime, mirrors...)
	if ContainerdFromRelease(spec, f) {
		if err := add(&out.Runtime, "containerd.service.tmpl", ContainerdUnitPath, 0o644, nil); err != nil {
			return HostFiles{}, err
		}
	}

	if spec.Install.Source != v1alpha1.InstallPackage {
		// The packages bring their own unit and drop-in; binary and bundle installs get ours.
		envFile := kubeletEnvPath(f)
		if err := add(&out.Kubelet, "kubelet.service.tmpl", KubeletUnitPath, 0o644, nil); err != nil {
			return HostFiles{}, err
		}
		if err := add(&out.Kubelet, "10-kubeadm.conf.tmpl", KubeletDropInPath, 0o644, struct{ DefaultsFile string }{envFile}); err != nil {
			return HostFiles{}, err
		}
		if err := add(&out.Kubelet, "kubelet-defaults.tmpl", envFile, 0o644, nil); err != nil {
			return HostFiles{}, err
		}
	}

	if p := spec.Proxy; p.HTTP != "" || p.HTTPS != "" {
		b, err := proxyEnvironment(spec)
		if err != nil {
			return HostFiles{}, fmt.Errorf("host %s: %w", host.Name, err)
		}
		out.Runtime = append(out.Runtime, File{Path: ContainerdProxyPath, Mode: 0o644, Content: b})
		out.Kubelet = append(out.Kubelet, File{Path: KubeletProxyPath, Mode: 0o644, Content: b})
	}

	if host.Role == v1alpha1.RoleControlPlane {
		ha, err := haFiles(spec, host, f, in.Inputs, in.InitDone)
		if err != nil {
			return HostFiles{}, fmt.Errorf("host %s: %w", host.Name, err)
		}
		out.HAEndpoint = ha
	}

	if out.Repository, out.RepositoryKey, err = repositoryFiles(spec, f, in.Inputs); err != nil {
		return HostFiles{}, fmt.Errorf("host %s: %w", host.Name, err)
	}
	for _, g := range []*[]File{&out.Node, &out.Runtime, &out.Repository, &out.Kubelet, &out.HAEndpoint} {
		SortFiles(*g)
	}
	return out, nil
}

// kubeletEnvPath is where the distribution's kubelet package keeps KUBELET_EXTRA_ARGS.
func kubeletEnvPath(f facts.Host) string {
	if f.OS.PackageManager.RPM() {
		return redhatKubeletEnvPath
	}
	return debianKubeletEnvPath
}

// NoProxy is the NO_PROXY list: the spec's entries, then what must never go through the proxy —
// localhost, the pod and service ranges, every host's addresses, the API endpoint and cluster DNS
// names. Duplicates are dropped, order is kept.
func NoProxy(spec *v1alpha1.ClusterSpec) []string {
	var out []string
	seen := map[string]bool{}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, n := range spec.Proxy.NoProxy {
		add(n)
	}
	for _, n := range []string{"localhost", "127.0.0.1", "::1", spec.Networking.PodSubnet, spec.Networking.ServiceSubnet,
		".svc", "." + spec.Networking.DNSDomain, spec.ControlPlaneEndpoint.Host, spec.LoadBalancer.VIP} {
		add(n)
	}
	for _, h := range spec.Hosts {
		add(h.Address)
		add(h.PrivateAddress)
		add(h.Name)
	}
	return out
}

// proxyEnvironment renders the proxy drop-in for containerd (image pulls) and the kubelet. Validation
// refuses proxy URLs with passwords, so it holds no secret.
func proxyEnvironment(spec *v1alpha1.ClusterSpec) ([]byte, error) {
	var env []string
	for _, kv := range []struct{ k, v string }{
		{"HTTP_PROXY", spec.Proxy.HTTP}, {"HTTPS_PROXY", spec.Proxy.HTTPS},
		{"NO_PROXY", strings.Join(NoProxy(spec), ",")},
	} {
		if kv.v == "" {
			continue
		}
		// Both spellings: Go reads either, curl and others only the lower-case ones. systemd expands
		// % specifiers inside Environment=: a percent-encoded URL needs its % doubled.
		for _, k := range []string{kv.k, strings.ToLower(kv.k)} {
			q, err := jsonString(strings.ReplaceAll(k+"="+kv.v, "%", "%%"))
			if err != nil {
				return nil, err
			}
			env = append(env, q)
		}
	}
	return render("proxy.conf.tmpl", struct{ Env []string }{env})
}

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) }
