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
	KubeletDropInPath    = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
	SysctlPath           = "/etc/sysctl.d/99-kubernetes.conf"
	ModulesLoadPath      = "/etc/modules-load.d/kubernetes.conf"
	ContainerdProxyPath  = "/etc/systemd/system/containerd.service.d/http-proxy.conf"
	KubeletProxyPath     = "/etc/systemd/system/kubelet.service.d/http-proxy.conf"
	CrictlConfigPath     = "/etc/crictl.yaml"
	debianKubeletEnvPath = "/etc/default/kubelet"
	redhatKubeletEnvPath = "/etc/sysconfig/kubelet"
)

// HostFiles renders every file the installer writes on one host besides kubeadm's configuration:
// the node prerequisites (sysctls, modules), containerd's config and mirrors, the kubelet unit for
// binary installs, proxy drop-ins, and on control planes the HA endpoint's static pods. The spec must
// be defaulted and validated; facts may be Assumed ones.
func HostFiles(spec *v1alpha1.ClusterSpec, host v1alpha1.Host, f facts.Host, in Inputs) ([]File, error) {
	var files []File
	add := func(name, p string, mode uint32, data any) error {
		b, err := render(name, data)
		if err != nil {
			return err
		}
		files = append(files, File{Path: p, Mode: fsMode(mode), Content: b})
		return nil
	}
	if err := add("sysctl.conf.tmpl", SysctlPath, 0o644, nil); err != nil {
		return nil, err
	}
	if err := add("modules-load.conf.tmpl", ModulesLoadPath, 0o644, nil); err != nil {
		return nil, err
	}
	if err := add("crictl.yaml.tmpl", CrictlConfigPath, 0o644, nil); err != nil {
		return nil, err
	}

	cfg, err := containerdConfig(spec, f)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", host.Name, err)
	}
	files = append(files, cfg)
	mirrors, err := registryHosts(spec, in)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", host.Name, err)
	}
	files = append(files, mirrors...)

	if spec.Install.Source != v1alpha1.InstallPackage {
		// The packages bring their own unit and drop-in; binary and bundle installs get ours.
		envFile := kubeletEnvPath(f)
		if err := add("kubelet.service.tmpl", KubeletUnitPath, 0o644, nil); err != nil {
			return nil, err
		}
		if err := add("10-kubeadm.conf.tmpl", KubeletDropInPath, 0o644, struct{ DefaultsFile string }{envFile}); err != nil {
			return nil, err
		}
		if err := add("kubelet-defaults.tmpl", envFile, 0o644, nil); err != nil {
			return nil, err
		}
	}

	if p := spec.Proxy; p.HTTP != "" || p.HTTPS != "" {
		pf, err := proxyDropIns(spec)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", host.Name, err)
		}
		files = append(files, pf...)
	}

	if host.Role == v1alpha1.RoleControlPlane {
		ha, err := haFiles(spec, host, f, in)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", host.Name, err)
		}
		files = append(files, ha...)
	}
	SortFiles(files)
	return files, nil
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

// proxyDropIns renders the proxy environment for containerd (image pulls) and the kubelet. Validation
// refuses proxy URLs with passwords, so these files hold no secret.
func proxyDropIns(spec *v1alpha1.ClusterSpec) ([]File, error) {
	var env []string
	for _, kv := range []struct{ k, v string }{
		{"HTTP_PROXY", spec.Proxy.HTTP}, {"HTTPS_PROXY", spec.Proxy.HTTPS},
		{"NO_PROXY", strings.Join(NoProxy(spec), ",")},
	} {
		if kv.v == "" {
			continue
		}
		// Both spellings: Go reads either, curl and others only the lower-case ones.
		for _, k := range []string{kv.k, strings.ToLower(kv.k)} {
			q, err := jsonString(k + "=" + kv.v)
			if err != nil {
				return nil, err
			}
			env = append(env, q)
		}
	}
	b, err := render("proxy.conf.tmpl", struct{ Env []string }{env})
	if err != nil {
		return nil, err
	}
	return []File{
		{Path: ContainerdProxyPath, Mode: 0o644, Content: b},
		{Path: KubeletProxyPath, Mode: 0o644, Content: b},
	}, nil
}

func fsMode(m uint32) fs.FileMode { return fs.FileMode(m) }
