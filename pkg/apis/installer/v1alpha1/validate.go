package v1alpha1

import (
	"encoding/hex"
	"fmt"
	"maps"
	"math/big"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/pgpkey"
	"installer.dev/installer/pkg/versions"
)

// Warning is a problem that does not stop the installer (an even number of control planes, cgroup v1
// allowances). It prints as "warning: <path>: <text>".
type Warning struct {
	Field   string
	Message string
}

func (w Warning) String() string { return fmt.Sprintf("warning: %s: %s", w.Field, w.Message) }

// Validate checks a defaulted spec. It is pure (no I/O) and reports every problem with its field
// path, never stopping at the first; warnings come back apart.
func Validate(c *Cluster) (field.ErrorList, []Warning) {
	v := &validator{c: c}
	v.metadata()
	v.version()
	v.hosts()
	v.networking()
	v.endpoint()
	v.ssh()
	v.install()
	v.proxy()
	v.runtime()
	v.images()
	v.components()
	v.extraVolumes()
	v.cni()
	v.cloud()
	v.addons()
	return v.errs, v.warns
}

type validator struct {
	c     *Cluster
	errs  field.ErrorList
	warns []Warning
}

func (v *validator) add(errs ...*field.Error) { v.errs = append(v.errs, errs...) }

func (v *validator) warn(p *field.Path, format string, args ...any) {
	v.warns = append(v.warns, Warning{Field: p.String(), Message: fmt.Sprintf(format, args...)})
}

var (
	specPath = field.NewPath("spec")
)

func (v *validator) metadata() {
	p := field.NewPath("metadata", "name")
	name := v.c.Metadata.Name
	if name == "" {
		v.add(field.Required(p, "names the cluster and its state directory"))
		return
	}
	for _, msg := range validation.IsDNS1123Label(name) {
		v.add(field.Invalid(p, name, msg))
	}
}

func (v *validator) version() {
	p := specPath.Child("kubernetesVersion")
	ver := v.c.Spec.KubernetesVersion
	if _, ok := versions.Lookup(ver); ok {
		return
	}
	if r, ok := versions.RetiredMinor(ver); ok {
		v.add(field.Invalid(p, ver, fmt.Sprintf("Kubernetes %s is past upstream end of life (%s) and no longer installed; a new cluster takes %s. A cluster that runs %s is upgraded by setting kubernetesVersion: %s and running installer upgrade",
			r.Minor, r.EndOfLife, versions.Default().Kubernetes, r.Minor, r.UpgradeTo)))
		return
	}
	v.add(field.NotSupported(p, ver, supportedVersions()))
}

func supportedVersions() []string {
	var out []string
	for _, r := range versions.Releases() {
		out = append(out, r.Kubernetes)
	}
	return out
}

// MaxHosts bounds spec.hosts: beyond it one spec is not the way to run a cluster (and Kubernetes
// itself is tested to 5,000 nodes).
const MaxHosts = 5000

func (v *validator) hosts() {
	s := &v.c.Spec
	p := specPath.Child("hosts")
	if len(s.Hosts) == 0 {
		v.add(field.Required(p, "at least one host is needed"))
		return
	}
	if len(s.Hosts) > MaxHosts {
		v.add(field.TooMany(p, len(s.Hosts), MaxHosts))
		return
	}
	names := map[string]int{}
	addrs := map[string]string{}
	controlPlanes := 0
	for i, h := range s.Hosts {
		hp := p.Index(i)
		switch {
		case h.Name == "":
			v.add(field.Required(hp.Child("name"), "becomes the node name"))
		default:
			for _, msg := range validation.IsDNS1123Subdomain(h.Name) {
				v.add(field.Invalid(hp.Child("name"), h.Name, msg))
			}
			if first, dup := names[h.Name]; dup {
				v.add(field.Duplicate(hp.Child("name"), fmt.Sprintf("%s (also spec.hosts[%d].name)", h.Name, first)))
			} else {
				names[h.Name] = i
			}
		}

		if h.Address == "" {
			v.add(field.Required(hp.Child("address"), "the IP or DNS name the installer connects to"))
		} else if !isIPOrDNSName(h.Address) {
			v.add(field.Invalid(hp.Child("address"), h.Address, "must be an IP address or a DNS name"))
		}
		if h.PrivateAddress == "" && h.Address != "" && net.ParseIP(h.Address) == nil && isIPOrDNSName(h.Address) {
			v.add(field.Required(hp.Child("privateAddress"), "needed when address is a DNS name: the node IP must be an IP address"))
		} else if h.PrivateAddress != "" && net.ParseIP(h.PrivateAddress) == nil {
			v.add(field.Invalid(hp.Child("privateAddress"), h.PrivateAddress, "must be an IP address"))
		}
		for _, a := range []struct {
			path  *field.Path
			value string
		}{{hp.Child("address"), h.Address}, {hp.Child("privateAddress"), h.PrivateAddress}} {
			if a.value == "" || (a.path.String() == hp.Child("privateAddress").String() && h.PrivateAddress == h.Address) {
				continue
			}
			if ip := net.ParseIP(a.value); ip != nil && ip.To4() != nil && strings.Contains(a.value, ":") {
				v.add(field.Invalid(a.path, a.value, "an IPv4-mapped IPv6 address: write the IPv4 address "+ip.To4().String()))
			}
			// One host under two spellings (::ffff:10.0.0.1 and 10.0.0.1, HOST and host) is one host.
			key := strings.ToLower(a.value)
			if ip := net.ParseIP(a.value); ip != nil {
				key = ip.String()
			}
			if other, dup := addrs[key]; dup {
				v.add(field.Duplicate(a.path, fmt.Sprintf("%s (also %s)", a.value, other)))
			} else {
				addrs[key] = a.path.String()
			}
		}

		switch h.Role {
		case RoleControlPlane:
			if !h.Remove {
				controlPlanes++
			}
		case RoleWorker:
		case "":
			v.add(field.Required(hp.Child("role"), "control-plane or worker"))
		default:
			v.add(field.NotSupported(hp.Child("role"), h.Role, []Role{RoleControlPlane, RoleWorker}))
		}

		// One label at a time in key order: ValidateLabels walks a map, and errors must come in a
		// stable order.
		for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
			v.add(metav1validation.ValidateLabels(map[string]string{k: h.Labels[k]}, hp.Child("labels"))...)
		}
		for j, t := range h.Taints {
			v.taint(t, hp.Child("taints").Index(j))
		}
		if h.SSH != nil {
			if h.SSH.Port != 0 {
				v.port(hp.Child("ssh", "port"), h.SSH.Port)
			}
			v.envName(hp.Child("ssh", "passphraseEnv"), h.SSH.PassphraseEnv)
			v.envName(hp.Child("ssh", "passwordEnv"), h.SSH.PasswordEnv)
		}
	}
	if controlPlanes == 0 && len(s.Removing()) > 0 {
		v.add(field.Required(p, "at least one control plane must stay (not marked remove)"))
	} else if controlPlanes == 0 {
		v.add(field.Required(p, "at least one host needs role control-plane"))
	} else if controlPlanes > 1 && controlPlanes%2 == 0 {
		v.warn(p, "%d control planes: stacked etcd with an even member count tolerates no more failures than one fewer; use 1 or 3", controlPlanes)
	}
}

var taintEffects = []string{"NoSchedule", "PreferNoSchedule", "NoExecute"}

func (v *validator) taint(t Taint, p *field.Path) {
	if t.Key == "" {
		v.add(field.Required(p.Child("key"), ""))
	} else {
		for _, msg := range validation.IsQualifiedName(t.Key) {
			v.add(field.Invalid(p.Child("key"), t.Key, msg))
		}
	}
	if t.Value != "" {
		for _, msg := range validation.IsValidLabelValue(t.Value) {
			v.add(field.Invalid(p.Child("value"), t.Value, msg))
		}
	}
	if !contains(taintEffects, t.Effect) {
		if t.Effect == "" {
			v.add(field.Required(p.Child("effect"), strings.Join(taintEffects, ", ")))
		} else {
			v.add(field.NotSupported(p.Child("effect"), t.Effect, taintEffects))
		}
	}
}

func (v *validator) networking() {
	n := v.c.Spec.Networking
	p := specPath.Child("networking")
	pod := v.cidr(p.Child("podSubnet"), n.PodSubnet)
	svc := v.cidr(p.Child("serviceSubnet"), n.ServiceSubnet)
	if pod != nil && svc != nil && overlap(pod, svc) {
		v.add(field.Invalid(p.Child("serviceSubnet"), n.ServiceSubnet, fmt.Sprintf("overlaps podSubnet %s", n.PodSubnet)))
	}
	if svc != nil {
		if _, err := DNSServiceIP(n.ServiceSubnet); err != nil {
			v.add(field.Invalid(p.Child("serviceSubnet"), n.ServiceSubnet, err.Error()))
		}
	}
	for _, msg := range validation.IsDNS1123Subdomain(n.DNSDomain) {
		v.add(field.Invalid(p.Child("dnsDomain"), n.DNSDomain, msg))
	}
	// Host addresses inside the pod or service range would be routed into the cluster.
	for i, h := range v.c.Spec.Hosts {
		for _, a := range []struct{ name, value string }{{"address", h.Address}, {"privateAddress", h.PrivateAddress}} {
			ip := net.ParseIP(a.value)
			if ip == nil {
				continue
			}
			hp := specPath.Child("hosts").Index(i).Child(a.name)
			if pod != nil && pod.Contains(ip) {
				v.add(field.Invalid(hp, a.value, fmt.Sprintf("lies inside networking.podSubnet %s", n.PodSubnet)))
			}
			if svc != nil && svc.Contains(ip) {
				v.add(field.Invalid(hp, a.value, fmt.Sprintf("lies inside networking.serviceSubnet %s", n.ServiceSubnet)))
			}
		}
	}
}

func (v *validator) cidr(p *field.Path, value string) *net.IPNet {
	if value == "" {
		v.add(field.Required(p, ""))
		return nil
	}
	ip, n, err := net.ParseCIDR(value)
	if err != nil {
		v.add(field.Invalid(p, value, "must be a CIDR such as 10.244.0.0/16"))
		return nil
	}
	if !ip.Equal(n.IP) {
		v.add(field.Invalid(p, value, fmt.Sprintf("host bits are set; the network is %s", n)))
		return nil
	}
	return n
}

func overlap(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// DNSServiceIP is the cluster DNS Service address: the 10th address of the service subnet, as
// kubeadm chooses it. The kubelet's clusterDNS must follow it.
func DNSServiceIP(serviceSubnet string) (net.IP, error) {
	_, n, err := net.ParseCIDR(serviceSubnet)
	if err != nil {
		return nil, fmt.Errorf("parse service subnet: %w", err)
	}
	ones, bits := n.Mask.Size()
	if bits-ones < 4 {
		return nil, fmt.Errorf("too small: the DNS service IP is the subnet's 10th address, so it needs at least /%d", bits-4)
	}
	base := new(big.Int).SetBytes(n.IP)
	ip := new(big.Int).Add(base, big.NewInt(10)).Bytes()
	out := make(net.IP, len(n.IP))
	copy(out[len(out)-len(ip):], ip)
	return out, nil
}

func (v *validator) endpoint() {
	s := &v.c.Spec
	lb := s.LoadBalancer
	p := specPath.Child("loadBalancer")
	ep := specPath.Child("controlPlaneEndpoint")
	switch lb.Type {
	case LoadBalancerNone, LoadBalancerExternal, LoadBalancerKeepalivedHAProxy, LoadBalancerKubeVIP:
	default:
		v.add(field.NotSupported(p.Child("type"), lb.Type, []LoadBalancerType{LoadBalancerNone, LoadBalancerKeepalivedHAProxy, LoadBalancerKubeVIP, LoadBalancerExternal}))
	}
	needsVIP := lb.Type == LoadBalancerKeepalivedHAProxy || lb.Type == LoadBalancerKubeVIP
	switch {
	case needsVIP && lb.VIP == "":
		v.add(field.Required(p.Child("vip"), fmt.Sprintf("type %s holds a virtual IP", lb.Type)))
	case lb.VIP != "":
		vip := net.ParseIP(lb.VIP)
		if vip == nil {
			v.add(field.Invalid(p.Child("vip"), lb.VIP, "must be an IP address"))
			break
		}
		if !needsVIP {
			v.add(field.Invalid(p.Child("vip"), lb.VIP, fmt.Sprintf("only used with keepalived-haproxy or kube-vip, not %s", lb.Type)))
		}
		for _, r := range []struct{ name, value string }{{"podSubnet", s.Networking.PodSubnet}, {"serviceSubnet", s.Networking.ServiceSubnet}} {
			if _, n, err := net.ParseCIDR(r.value); err == nil && n.Contains(vip) {
				v.add(field.Invalid(p.Child("vip"), lb.VIP, fmt.Sprintf("lies inside networking.%s %s", r.name, r.value)))
			}
		}
		for i, h := range s.Hosts {
			if h.Address == lb.VIP || h.PrivateAddress == lb.VIP {
				v.add(field.Invalid(p.Child("vip"), lb.VIP, fmt.Sprintf("is spec.hosts[%d]'s own address; a VIP must be free", i)))
			}
		}
	}
	if lb.Type == LoadBalancerKeepalivedHAProxy && (lb.VirtualRouterID < 1 || lb.VirtualRouterID > 255) {
		v.add(field.Invalid(p.Child("virtualRouterID"), lb.VirtualRouterID, "must be between 1 and 255"))
	}
	// Linux interface names: at most 15 bytes. The name goes into keepalived.conf and kube-vip's
	// environment, so only the characters real names use pass (no quote, brace or comment sign).
	if i := lb.Interface; i != "" && (len(i) > 15 || !interfaceName.MatchString(i)) {
		v.add(field.Invalid(p.Child("interface"), i, "not a network interface name (letters, digits, '_', '-', '.', '@'; at most 15)"))
	}
	if lb.Type == LoadBalancerExternal && s.ControlPlaneEndpoint.Host == "" {
		v.add(field.Required(ep.Child("host"), "an external load balancer's address"))
	}
	if s.ControlPlaneEndpoint.Host == "" {
		if lb.Type != LoadBalancerExternal {
			v.add(field.Required(ep.Child("host"), "no control plane to default it from"))
		}
	} else if !isIPOrDNSName(s.ControlPlaneEndpoint.Host) {
		v.add(field.Invalid(ep.Child("host"), s.ControlPlaneEndpoint.Host, "must be an IP address or a DNS name"))
	}
	v.port(ep.Child("port"), s.ControlPlaneEndpoint.Port)
	if lb.Type == LoadBalancerKeepalivedHAProxy && s.ControlPlaneEndpoint.Port == constants.APIServerPort {
		v.add(field.Invalid(ep.Child("port"), s.ControlPlaneEndpoint.Port, fmt.Sprintf("haproxy runs on every control plane beside the apiserver, which owns %d; use another port (default %d)", constants.APIServerPort, DefaultHAProxyPort)))
	}
	for i, san := range s.CertSANs {
		if !isIPOrDNSName(strings.TrimPrefix(san, "*.")) {
			v.add(field.Invalid(specPath.Child("certSANs").Index(i), san, "must be an IP address or a DNS name"))
		}
	}
}

var hostKeyPolicies = []HostKeyPolicy{HostKeyStrict, HostKeyAcceptNew}

func (v *validator) ssh() {
	s := v.c.Spec.SSH
	p := specPath.Child("ssh")
	if s.User == "" {
		v.add(field.Required(p.Child("user"), ""))
	}
	v.port(p.Child("port"), s.Port)
	if s.HostKeyPolicy != HostKeyStrict && s.HostKeyPolicy != HostKeyAcceptNew {
		v.add(field.NotSupported(p.Child("hostKeyPolicy"), s.HostKeyPolicy, hostKeyPolicies))
	}
	if s.KnownHostsFile == "" {
		v.add(field.Required(p.Child("knownHostsFile"), "host keys are always verified"))
	}
	v.envName(p.Child("passphraseEnv"), s.PassphraseEnv)
	v.envName(p.Child("passwordEnv"), s.PasswordEnv)
	if s.KeyFile == "" && s.PasswordEnv == "" && (s.Agent == nil || !*s.Agent) {
		hostsHaveAuth := len(v.c.Spec.Hosts) > 0
		for _, h := range v.c.Spec.Hosts {
			if h.SSH == nil || (h.SSH.KeyFile == "" && h.SSH.PasswordEnv == "") {
				hostsHaveAuth = false
			}
		}
		if !hostsHaveAuth {
			v.add(field.Required(p, "no way to log in: set keyFile, passwordEnv or agent: true"))
		}
	}
	if b := s.Bastion; b != nil {
		bp := p.Child("bastion")
		if b.Address == "" {
			v.add(field.Required(bp.Child("address"), ""))
		} else if !isIPOrDNSName(b.Address) {
			v.add(field.Invalid(bp.Child("address"), b.Address, "must be an IP address or a DNS name"))
		}
		v.port(bp.Child("port"), b.Port)
	}
}

func (v *validator) envName(p *field.Path, name string) {
	if name == "" {
		return
	}
	for _, msg := range validation.IsEnvVarName(name) {
		v.add(field.Invalid(p, name, msg+" (give the variable's name, never the secret itself)"))
	}
}

func (v *validator) port(p *field.Path, port int32) {
	if port < 1 || port > 65535 {
		v.add(field.Invalid(p, port, "must be between 1 and 65535"))
	}
}

func (v *validator) install() {
	in := v.c.Spec.Install
	p := specPath.Child("install")
	switch in.Source {
	case InstallPackage, InstallBinary:
	case InstallBundle:
		if in.BundleDir == "" {
			v.add(field.Required(p.Child("bundleDir"), "source bundle uploads this local directory"))
		}
	default:
		v.add(field.NotSupported(p.Child("source"), in.Source, []InstallSource{InstallPackage, InstallBinary, InstallBundle}))
	}
	v.url(p.Child("packageRepository"), in.PackageRepository, true)
	if fp := in.PackageRepositoryKeyFingerprint; fp != "" && !pgpkey.Valid(pgpkey.Normalize(fp)) {
		v.add(field.Invalid(p.Child("packageRepositoryKeyFingerprint"), fp, "an OpenPGP fingerprint: 40 hex digits (v4 key) or 64 (v6), spaces allowed"))
	}
	v.url(p.Child("binaryMirror"), in.BinaryMirror, true)
	v.url(p.Child("artifactMirror"), in.ArtifactMirror, true)
	binaries := in.Source == InstallBinary
	containerd := in.Source != InstallBundle && v.c.Spec.ContainerRuntime.Containerd.Source == InstallBinary
	for _, m := range []struct {
		name, url, integrity string
		used                 bool
	}{
		{"binaryMirror", in.BinaryMirror, "checked against pinned SHA-256s", binaries},
		{"artifactMirror", in.ArtifactMirror, "checked against pinned SHA-256s", binaries || containerd},
		{"packageRepository", in.PackageRepository, "signed by the repository key", in.Source == InstallPackage},
	} {
		if m.used && strings.HasPrefix(m.url, "http://") {
			v.warn(p.Child(m.name), "plain http: the files are %s, so they cannot be swapped, but anyone on the path sees what every host installs and can hold back a fix; use https where the mirror offers it", m.integrity)
		}
	}
	if in.PackageProxy != "" {
		v.url(p.Child("packageProxy"), in.PackageProxy, false)
	}
}

func (v *validator) proxy() {
	pr := v.c.Spec.Proxy
	p := specPath.Child("proxy")
	if pr.HTTP != "" {
		v.url(p.Child("http"), pr.HTTP, false)
	}
	if pr.HTTPS != "" {
		v.url(p.Child("https"), pr.HTTPS, false)
	}
	for i, np := range pr.NoProxy {
		if np == "" || strings.ContainsAny(np, " ,") {
			v.add(field.Invalid(p.Child("noProxy").Index(i), np, "one host, domain or CIDR per entry"))
		}
	}
}

// url checks an http(s) URL; base URLs (mirrors, repositories) may carry a path, proxies may not.
var interfaceName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]*$`)

func (v *validator) url(p *field.Path, value string, allowPath bool) {
	if value == "" {
		v.add(field.Required(p, ""))
		return
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(field.Invalid(p, value, "must be an http:// or https:// URL"))
		return
	}
	shown := value
	if u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			// Never echo the secret back: every message about this field shows it redacted.
			shown = redactURL(u)
			v.add(field.Invalid(p, shown, "must not carry a password: specs live in git"))
		}
	}
	if !allowPath && u.Path != "" && u.Path != "/" {
		v.add(field.Invalid(p, shown, "a proxy URL has no path"))
	}
}

// shownURL is a URL as messages may show it: a password redacted.
func shownURL(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	if _, ok := u.User.Password(); ok {
		return redactURL(u)
	}
	return u.String()
}

// noPassword refuses a password in a fetched URL (a manifest, an add-on): specs live in git.
func (v *validator) noPassword(p *field.Path, value string) {
	u, err := url.Parse(value)
	if err != nil || u.User == nil {
		return
	}
	if _, ok := u.User.Password(); ok {
		v.add(field.Invalid(p, redactURL(u), "must not carry a password: specs live in git"))
	}
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.Scheme + "://" + u.User.Username() + ":<redacted>@" + strings.TrimPrefix(c.String(), c.Scheme+"://")
}

func (v *validator) runtime() {
	c := v.c.Spec.ContainerRuntime.Containerd
	p := specPath.Child("containerRuntime", "containerd")
	switch c.Source {
	case InstallBinary:
		if want := versions.Containerd().Containerd; c.Version != want {
			v.add(field.NotSupported(p.Child("version"), c.Version, []string{want}))
		}
	case InstallPackage:
		// A pinned package version can be checked now; an unpinned one is checked by preflight on
		// the host.
		r, ok := versions.Lookup(v.c.Spec.KubernetesVersion)
		if ok && c.Version != "" && !versions.ContainerdAtLeast(c.Version, r.MinContainerd) {
			v.add(field.Invalid(p.Child("version"), c.Version, fmt.Sprintf("Kubernetes %s needs containerd %s or newer; use source: binary (containerd %s) or a newer package",
				r.Kubernetes, r.MinContainerd, versions.Containerd().Containerd)))
		}
	default:
		v.add(field.NotSupported(p.Child("source"), c.Source, []InstallSource{InstallBinary, InstallPackage}))
	}
}

func (v *validator) images() {
	im := v.c.Spec.Images
	p := specPath.Child("images")
	if !isImageRepository(im.Repository) {
		v.add(field.Invalid(p.Child("repository"), im.Repository, "must be a registry host with an optional path, such as registry.k8s.io or mirror.example.com:5000/k8s"))
	}
	for _, reg := range slices.Sorted(maps.Keys(im.Mirrors)) {
		rp := p.Child("mirrors").Key(reg)
		if !isRegistryHost(reg) {
			v.add(field.Invalid(rp, reg, "must be a registry host such as docker.io or registry.example.com:5000"))
		}
		if len(im.Mirrors[reg]) == 0 {
			v.add(field.Required(rp, "at least one mirror endpoint"))
		}
		for i, ep := range im.Mirrors[reg] {
			ep := ep
			epp := rp.Index(i)
			u, err := url.Parse(ep.URL)
			if ep.URL == "" {
				v.add(field.Required(epp.Child("url"), ""))
			} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.add(field.Invalid(epp.Child("url"), ep.URL, "must be an http:// or https:// URL"))
			} else if u.User != nil {
				// hosts.toml is world-readable on every node.
				v.add(field.Invalid(epp.Child("url"), shownURL(u), "must not carry credentials: it is written to every node's hosts.toml, which any local user can read"))
			} else if u.Scheme == "http" && (ep.CAFile != "" || ep.SkipVerify) {
				v.add(field.Invalid(epp.Child("url"), ep.URL, "caFile and skipVerify apply to https endpoints only"))
			}
			if ep.CAFile != "" && ep.SkipVerify {
				v.add(field.Invalid(epp.Child("skipVerify"), true, "choose caFile or skipVerify, not both"))
			}
		}
	}
	for _, from := range slices.Sorted(maps.Keys(im.Overrides)) {
		to := im.Overrides[from]
		op := p.Child("overrides").Key(from)
		if !isImageRef(from) {
			v.add(field.Invalid(op, from, "key must be an image reference such as ghcr.io/flannel-io/flannel:v0.28.10"))
		}
		if !isImageRef(to) {
			v.add(field.Invalid(op, to, "must be an image reference such as my.registry/flannel:v0.28.10"))
		}
	}
}

func (v *validator) components() {
	s := &v.c.Spec
	for _, c := range []struct {
		path *field.Path
		args map[string]string
	}{
		{specPath.Child("kubelet", "extraArgs"), s.Kubelet.ExtraArgs},
		{specPath.Child("apiServer", "extraArgs"), s.APIServer.ExtraArgs},
		{specPath.Child("controllerManager", "extraArgs"), s.ControllerManager.ExtraArgs},
		{specPath.Child("scheduler", "extraArgs"), s.Scheduler.ExtraArgs},
	} {
		for _, k := range slices.Sorted(maps.Keys(c.args)) {
			if k == "" || strings.HasPrefix(k, "-") || strings.ContainsAny(k, "= \t\n") {
				v.add(field.Invalid(c.path.Key(k), k, "a flag name without leading dashes, such as max-pods"))
			}
			if s.ExternalCCM() && k == "cloud-provider" && c.path.String() != "spec.kubelet.extraArgs" {
				v.add(field.Invalid(c.path.Key(k), c.args[k], "with an external cloud provider no control-plane component takes a cloud-provider flag"))
			}
		}
	}
	modes := []string{"iptables", "nftables", "ipvs"}
	if !contains(modes, s.KubeProxy.Mode) {
		v.add(field.NotSupported(specPath.Child("kubeProxy", "mode"), s.KubeProxy.Mode, modes))
	}
	for i, e := range s.Kubeadm.IgnorePreflightErrors {
		if e == "" || strings.ContainsAny(e, " ,") {
			v.add(field.Invalid(specPath.Child("kubeadm", "ignorePreflightErrors").Index(i), e, "one check name per entry, such as SystemVerification"))
		}
	}
	if f, ok := s.Kubelet.Config["failCgroupV1"]; ok && f == false {
		v.warn(specPath.Child("kubelet", "config", "failCgroupV1"), "false lets Kubernetes ≥ 1.35 run on cgroup v1, which upstream no longer supports; kubeadm also needs SystemVerification in spec.kubeadm.ignorePreflightErrors")
	}
}

// kubeadmVolumes are the hostPath volumes kubeadm gives each control-plane component's static pod
// (cmd/kubeadm/app/phases/controlplane/volumes.go of v1.34 to v1.37), name → mount path. An extra
// volume of the same name would replace kubeadm's (its certificates, its kubeconfig), and one at
// the same mount path makes the pod invalid. The ca-certificate directories are mounted only where
// they exist on the host; flexvolume-dir is gone from kubeadm v1.36 on.
var kubeadmVolumes = map[string]map[string]string{
	"apiServer": caCertVolumes(),
	"controllerManager": caCertVolumes(map[string]string{
		"kubeconfig":     constants.ControllerManagerConf,
		"flexvolume-dir": "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
	}),
	"scheduler": {"kubeconfig": constants.SchedulerConf},
}

func caCertVolumes(more ...map[string]string) map[string]string {
	out := map[string]string{"k8s-certs": constants.PKIDir, "ca-certs": "/etc/ssl/certs"}
	for _, d := range []string{"/etc/pki/ca-trust", "/etc/pki/tls/certs", "/etc/ca-certificates", "/usr/share/ca-certificates", "/usr/local/share/ca-certificates"} {
		out[strings.ReplaceAll(d[1:], "/", "-")] = d
	}
	for _, m := range more {
		maps.Copy(out, m)
	}
	return out
}

// hostPathTypes are Kubernetes' HostPathType values; empty checks nothing.
var hostPathTypes = []corev1.HostPathType{corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
	corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev}

// extraVolumes checks each control-plane component's extra volumes: a name kubeadm does not use
// itself, once per component; clean absolute paths, a mount path used once; a known path type.
func (v *validator) extraVolumes() {
	s := &v.c.Spec
	for _, c := range []struct {
		name string
		vols []HostPathMount
	}{
		{"apiServer", s.APIServer.ExtraVolumes},
		{"controllerManager", s.ControllerManager.ExtraVolumes},
		{"scheduler", s.Scheduler.ExtraVolumes},
	} {
		own := kubeadmVolumes[c.name]
		names, mounts := map[string]bool{}, map[string]bool{}
		for i, m := range c.vols {
			p := specPath.Child(c.name, "extraVolumes").Index(i)
			switch {
			case m.Name == "":
				v.add(field.Required(p.Child("name"), "names the volume and its mount"))
			case own[m.Name] != "":
				v.add(field.Invalid(p.Child("name"), m.Name, "kubeadm gives the component a volume of this name; choose another"))
			case names[m.Name]:
				v.add(field.Duplicate(p.Child("name"), m.Name))
			default:
				for _, msg := range validation.IsDNS1123Label(m.Name) {
					v.add(field.Invalid(p.Child("name"), m.Name, msg))
				}
			}
			names[m.Name] = true
			v.absPath(p.Child("hostPath"), m.HostPath)
			if v.absPath(p.Child("mountPath"), m.MountPath) {
				if slices.Contains(slices.Collect(maps.Values(own)), m.MountPath) {
					v.add(field.Invalid(p.Child("mountPath"), m.MountPath, "kubeadm mounts one of the component's own volumes there"))
				} else if mounts[m.MountPath] {
					v.add(field.Duplicate(p.Child("mountPath"), m.MountPath))
				}
				mounts[m.MountPath] = true
			}
			if !slices.Contains(hostPathTypes, corev1.HostPathType(m.PathType)) {
				v.add(field.NotSupported(p.Child("pathType"), m.PathType, hostPathTypes[1:]))
			}
		}
	}
}

// absPath checks a required, absolute, clean path (Linux's, on the hosts) and reports whether it
// is one.
func (v *validator) absPath(p *field.Path, value string) bool {
	switch {
	case value == "":
		v.add(field.Required(p, "an absolute path"))
	case !path.IsAbs(value):
		v.add(field.Invalid(p, value, "must be an absolute path"))
	case path.Clean(value) != value:
		v.add(field.Invalid(p, value, "must be a clean path such as "+path.Clean(value)))
	default:
		return true
	}
	return false
}

var cniPlugins = []CNIPlugin{CNIFlannel, CNICalico, CNICilium, CNICustom, CNINone}

func (v *validator) cni() {
	c := v.c.Spec.CNI
	p := specPath.Child("cni")
	if !containsT(cniPlugins, c.Plugin) {
		v.add(field.NotSupported(p.Child("plugin"), c.Plugin, cniPlugins))
		return
	}
	switch c.Plugin {
	case CNICustom:
		if c.Manifest == "" {
			v.add(field.Required(p.Child("manifest"), "plugin custom applies this manifest (a local path or an http(s) URL)"))
		}
	case CNIFlannel, CNINone:
		if c.Manifest != "" {
			v.add(field.Invalid(p.Child("manifest"), c.Manifest, fmt.Sprintf("plugin %s renders its own manifest; use plugin custom for your own", c.Plugin)))
		}
	}
	v.noPassword(p.Child("manifest"), c.Manifest)
	remote := strings.HasPrefix(c.Manifest, "http://") || strings.HasPrefix(c.Manifest, "https://")
	fetched := remote || ((c.Plugin == CNICalico || c.Plugin == CNICilium) && c.Manifest == "")
	if c.SHA256 != "" {
		if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != 32 {
			v.add(field.Invalid(p.Child("sha256"), c.SHA256, "must be 64 hexadecimal characters"))
		}
	} else if fetched {
		v.add(field.Required(p.Child("sha256"), "a manifest fetched over the network is verified against its SHA-256"))
	}
}

func (v *validator) cloud() {
	cp := v.c.Spec.CloudProvider
	p := specPath.Child("cloudProvider")
	preset, ok := CloudPresetFor(cp.Name)
	if !ok && cp.Name != CloudNone {
		v.add(field.NotSupported(p.Child("name"), cp.Name, cloudProviderNames()))
		return
	}
	if cp.Name == CloudNone {
		for _, f := range []struct {
			name string
			set  bool
		}{{"image", cp.Image != ""}, {"args", len(cp.Args) > 0}, {"cloudConfigFile", cp.CloudConfigFile != ""}, {"credentialsSecret", cp.CredentialsSecret != ""}, {"credentialsEnv", len(cp.CredentialsEnv) > 0}} {
			if f.set {
				v.add(field.Forbidden(p.Child(f.name), "set cloudProvider.name to use a cloud-controller-manager"))
			}
		}
		return
	}
	if cp.Image != "" && !isImageRef(cp.Image) {
		v.add(field.Invalid(p.Child("image"), cp.Image, "must be an image reference"))
	}
	for _, k := range slices.Sorted(maps.Keys(cp.CredentialsEnv)) {
		for _, msg := range validation.IsConfigMapKey(k) {
			v.add(field.Invalid(p.Child("credentialsEnv").Key(k), k, msg))
		}
		v.envName(p.Child("credentialsEnv").Key(k), cp.CredentialsEnv[k])
	}
	if cp.CredentialsSecret != "" {
		for _, msg := range validation.IsDNS1123Subdomain(cp.CredentialsSecret) {
			v.add(field.Invalid(p.Child("credentialsSecret"), cp.CredentialsSecret, msg))
		}
		if len(cp.CredentialsEnv) > 0 {
			v.add(field.Invalid(p.Child("credentialsEnv"), "", "choose credentialsSecret (an existing Secret) or credentialsEnv, not both"))
		}
	}
	hasCreds := cp.CredentialsSecret != "" || len(cp.CredentialsEnv) > 0
	if preset.NeedsImage && cp.Image == "" {
		v.add(field.Required(p.Child("image"), fmt.Sprintf("provider %s has no preset image", cp.Name)))
	}
	if preset.NeedsArgs && len(cp.Args) == 0 {
		v.add(field.Required(p.Child("args"), fmt.Sprintf("provider %s passes exactly these flags (for example --cloud-provider=<name>)", cp.Name)))
	}
	if preset.NeedsCloudConfig && cp.CloudConfigFile == "" {
		v.add(field.Required(p.Child("cloudConfigFile"), fmt.Sprintf("provider %s reads its cloud config", cp.Name)))
	}
	if keys := preset.CredentialKeys(); len(keys) > 0 {
		if !hasCreds {
			v.add(field.Required(p.Child("credentialsEnv"), fmt.Sprintf("provider %s needs credentials: keys %s from environment variables, or credentialsSecret naming an existing Secret", cp.Name, strings.Join(keys, ", "))))
		} else if len(cp.CredentialsEnv) > 0 {
			for _, k := range keys {
				if _, ok := cp.CredentialsEnv[k]; !ok {
					v.add(field.Required(p.Child("credentialsEnv").Key(k), fmt.Sprintf("provider %s reads key %s", cp.Name, k)))
				}
			}
		}
	}
}

// addons: an add-on is applied with cluster-admin rights, so one from the network comes over https
// and is checked against the SHA-256 the spec pins (security review M5).
func (v *validator) addons() {
	for i, a := range v.c.Spec.Addons {
		p := specPath.Child("addons").Index(i)
		v.noPassword(p.Child("manifest"), a.Manifest)
		switch m := strings.TrimSpace(a.Manifest); {
		case m == "":
			v.add(field.Required(p.Child("manifest"), "a local path or an https URL"))
		case strings.HasPrefix(m, "http://"):
			v.add(field.Invalid(p.Child("manifest"), m, "add-ons are applied with cluster-admin rights: fetch them over https, or from a local file"))
		case strings.HasPrefix(m, "https://") && a.SHA256 == "":
			v.add(field.Required(p.Child("sha256"), "an add-on fetched over the network is verified against its SHA-256: write {manifest: URL, sha256: HEX}"))
		}
		if a.SHA256 != "" {
			if b, err := hex.DecodeString(a.SHA256); err != nil || len(b) != 32 {
				v.add(field.Invalid(p.Child("sha256"), a.SHA256, "must be 64 hexadecimal characters"))
			}
		}
	}
}

func isIPOrDNSName(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	return len(validation.IsDNS1123Subdomain(strings.ToLower(s))) == 0
}

// isRegistryHost accepts host[:port] as containerd's hosts.toml directory names use it.
func isRegistryHost(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
	}
	if port != "" {
		var n int
		if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 {
			return false
		}
	}
	return isIPOrDNSName(host)
}

// isImageRepository accepts registry[:port][/path], kubeadm's imageRepository.
func isImageRepository(s string) bool {
	host, path, hasPath := strings.Cut(s, "/")
	if !isRegistryHost(host) {
		return false
	}
	return !hasPath || (path != "" && !strings.ContainsAny(path, " :@"))
}

func isImageRef(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\n") && !strings.HasPrefix(s, "/") && !strings.HasSuffix(s, ":")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func containsT[T ~string](list []T, s T) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
