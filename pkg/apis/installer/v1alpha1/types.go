package v1alpha1

// GroupVersion and Kind identify the only document the installer reads.
const (
	Group      = "installer.dev"
	Version    = "v1alpha1"
	APIVersion = Group + "/" + Version
	Kind       = "Cluster"
)

// Cluster is one cluster spec file.
type Cluster struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   ObjectMeta  `json:"metadata"`
	Spec       ClusterSpec `json:"spec"`
}

// ObjectMeta names the cluster; the name keys the local state directory.
type ObjectMeta struct {
	Name string `json:"name"`
}

// ClusterSpec describes the hosts and everything installed on them.
type ClusterSpec struct {
	KubernetesVersion    string                `json:"kubernetesVersion,omitempty"`
	ControlPlaneEndpoint Endpoint              `json:"controlPlaneEndpoint,omitempty"`
	LoadBalancer         LoadBalancer          `json:"loadBalancer,omitempty"`
	CertSANs             []string              `json:"certSANs,omitempty"`
	Networking           Networking            `json:"networking,omitempty"`
	SSH                  SSH                   `json:"ssh,omitempty"`
	Hosts                []Host                `json:"hosts"`
	Install              Install               `json:"install,omitempty"`
	Proxy                Proxy                 `json:"proxy,omitempty"`
	ContainerRuntime     ContainerRuntime      `json:"containerRuntime,omitempty"`
	Images               Images                `json:"images,omitempty"`
	Kubelet              Kubelet               `json:"kubelet,omitempty"`
	APIServer            ControlPlaneComponent `json:"apiServer,omitempty"`
	ControllerManager    ControlPlaneComponent `json:"controllerManager,omitempty"`
	Scheduler            ControlPlaneComponent `json:"scheduler,omitempty"`
	KubeProxy            KubeProxy             `json:"kubeProxy,omitempty"`
	Kubeadm              Kubeadm               `json:"kubeadm,omitempty"`
	CNI                  CNI                   `json:"cni,omitempty"`
	CloudProvider        CloudProvider         `json:"cloudProvider,omitempty"`
	Addons               []Addon               `json:"addons,omitempty"`
}

// Addon is one extra manifest applied with cluster-admin rights after the CNI and the CCM: a local
// file, or an https URL with its SHA-256. A plain string is its manifest alone.
type Addon struct {
	// Manifest is a local path or an https URL.
	Manifest string `json:"manifest"`
	// SHA256 is the manifest's hex SHA-256: required for a URL, checked for a local file when given.
	SHA256 string `json:"sha256,omitempty"`
}

// Endpoint is the address every client and joining node uses for the API server.
type Endpoint struct {
	// Host is a DNS name or IP. Default: the load balancer's VIP, else the first control plane's
	// privateAddress (or address).
	Host string `json:"host,omitempty"`
	// Port defaults to 8443 with keepalived-haproxy (haproxy must not share the apiserver's port on
	// the control planes), else 6443.
	Port int32 `json:"port,omitempty"`
}

// LoadBalancerType selects how the API endpoint is made highly available.
type LoadBalancerType string

const (
	LoadBalancerNone              LoadBalancerType = "none"
	LoadBalancerKeepalivedHAProxy LoadBalancerType = "keepalived-haproxy"
	LoadBalancerKubeVIP           LoadBalancerType = "kube-vip"
	LoadBalancerExternal          LoadBalancerType = "external"
)

// LoadBalancer configures the API endpoint's load balancer.
type LoadBalancer struct {
	Type LoadBalancerType `json:"type,omitempty"`
	// VIP is the virtual IP keepalived or kube-vip holds (required for those two types).
	VIP string `json:"vip,omitempty"`
	// Interface carries the VIP. Default: the interface holding each control plane's private address.
	Interface string `json:"interface,omitempty"`
	// VirtualRouterID is the VRRP router id (1-255), unique on the VIP's network. Default 51.
	VirtualRouterID int32 `json:"virtualRouterID,omitempty"`
}

// Networking holds the cluster's address ranges.
type Networking struct {
	PodSubnet     string `json:"podSubnet,omitempty"`
	ServiceSubnet string `json:"serviceSubnet,omitempty"`
	DNSDomain     string `json:"dnsDomain,omitempty"`
}

// HostKeyPolicy decides what happens to host keys missing from known_hosts.
type HostKeyPolicy string

const (
	// HostKeyStrict refuses unknown and changed host keys (default).
	HostKeyStrict HostKeyPolicy = "strict"
	// HostKeyAcceptNew records unknown keys and refuses changed ones, as OpenSSH's accept-new.
	HostKeyAcceptNew HostKeyPolicy = "accept-new"
)

// SSH is how the installer logs in to every host (hosts may override user, port and credentials).
type SSH struct {
	User string `json:"user,omitempty"`
	Port int32  `json:"port,omitempty"`
	// KeyFile is a private key file; PassphraseEnv names the environment variable holding its passphrase.
	KeyFile       string `json:"keyFile,omitempty"`
	PassphraseEnv string `json:"passphraseEnv,omitempty"`
	// Agent uses the ssh-agent at SSH_AUTH_SOCK when it is set. Default true.
	Agent *bool `json:"agent,omitempty"`
	// PasswordEnv names the environment variable holding a login password (never the password itself).
	PasswordEnv    string        `json:"passwordEnv,omitempty"`
	KnownHostsFile string        `json:"knownHostsFile,omitempty"`
	HostKeyPolicy  HostKeyPolicy `json:"hostKeyPolicy,omitempty"`
	Bastion        *Bastion      `json:"bastion,omitempty"`
}

// Bastion is a jump host (OpenSSH's ProxyJump) every connection goes through.
type Bastion struct {
	Address string `json:"address"`
	Port    int32  `json:"port,omitempty"`
	// User and KeyFile default to spec.ssh's.
	User    string `json:"user,omitempty"`
	KeyFile string `json:"keyFile,omitempty"`
}

// HostSSH overrides spec.ssh for one host.
type HostSSH struct {
	User          string `json:"user,omitempty"`
	Port          int32  `json:"port,omitempty"`
	KeyFile       string `json:"keyFile,omitempty"`
	PassphraseEnv string `json:"passphraseEnv,omitempty"`
	PasswordEnv   string `json:"passwordEnv,omitempty"`
}

// Role is what a host becomes in the cluster.
type Role string

const (
	RoleControlPlane Role = "control-plane"
	RoleWorker       Role = "worker"
)

// Host is one machine of the cluster.
type Host struct {
	// Name becomes the node name; DNS-1123, unique.
	Name string `json:"name"`
	// Address is where the installer connects (IP or DNS name).
	Address string `json:"address"`
	// PrivateAddress is the IP the node uses inside the cluster (advertise address, node-ip).
	// Default: address, when that is an IP.
	PrivateAddress string            `json:"privateAddress,omitempty"`
	Role           Role              `json:"role"`
	Labels         map[string]string `json:"labels,omitempty"`
	Taints         []Taint           `json:"taints,omitempty"`
	SSH            *HostSSH          `json:"ssh,omitempty"`
	// Remove asks `installer apply` to take this host out of the cluster: drained, its etcd member
	// removed, its Node deleted, the host reset (or, when it cannot be reached and its kubelet has
	// been silent for minutes, removed from the surviving side only). Then delete the entry. Every
	// other command refuses a spec holding such a host.
	Remove bool `json:"remove,omitempty"`
}

// Taint is a node taint set at registration.
type Taint struct {
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	Effect string `json:"effect"`
}

// InstallSource says where kubeadm, kubelet and kubectl come from.
type InstallSource string

const (
	InstallPackage InstallSource = "package"
	InstallBinary  InstallSource = "binary"
	InstallBundle  InstallSource = "bundle"
)

// Install says where binaries and packages come from.
type Install struct {
	Source InstallSource `json:"source,omitempty"`
	// PackageRepository is the base URL up to the minor: the installer appends /v1.34/deb/ (or /rpm/).
	PackageRepository string `json:"packageRepository,omitempty"`
	// PackageRepositoryKeyFile is a local OpenPGP key (ASCII-armored or binary) that signs the repository.
	// Default: the repository's own <base>/<minor>/deb/Release.key, fetched on the host.
	PackageRepositoryKeyFile string `json:"packageRepositoryKeyFile,omitempty"`
	// PackageRepositoryKeyFingerprint pins the OpenPGP fingerprint of the repository's signing key
	// (hex, spaces allowed). The key the host fetches is trusted only when it has this fingerprint,
	// and a packageRepositoryKeyFile must have it when both are set. Default without a key file: the
	// pkgs.k8s.io key's, DE15 B144 86CD 377B 9E87 6E1A 2346 54DA 9A29 6436 (a mirror of pkgs.k8s.io
	// serves that key too).
	PackageRepositoryKeyFingerprint string `json:"packageRepositoryKeyFingerprint,omitempty"`
	// BinaryMirror serves kubeadm, kubelet and kubectl in dl.k8s.io's layout.
	BinaryMirror string `json:"binaryMirror,omitempty"`
	// ArtifactMirror serves containerd, runc, CNI plugins and crictl in the upstream release layout
	// (<org>/<repo>/releases/download/<tag>/<file>).
	ArtifactMirror string `json:"artifactMirror,omitempty"`
	// ChecksumsFile is a local file of SHA-256 pins, sha256sum lines "<hex>  <path>" with the path in
	// upstream's layout (release/v1.37.2/bin/linux/amd64/kubeadm). A download is verified against the
	// pin here, else the installer's built-in one; a mirror's own checksum files are never trusted, so a
	// file from a mirror other than dl.k8s.io and github.com needs a pin.
	ChecksumsFile string `json:"checksumsFile,omitempty"`
	// PackageProxy is an HTTP proxy for apt/dnf only (an apt cache).
	PackageProxy string `json:"packageProxy,omitempty"`
	// BundleDir is a local directory uploaded over SFTP when source is bundle (air gap).
	BundleDir string `json:"bundleDir,omitempty"`
}

// Proxy is the HTTP proxy for packages, containerd and the kubelet on the hosts.
type Proxy struct {
	HTTP    string   `json:"http,omitempty"`
	HTTPS   string   `json:"https,omitempty"`
	NoProxy []string `json:"noProxy,omitempty"`
}

// ContainerRuntime configures the CRI runtime; containerd is the only one.
type ContainerRuntime struct {
	Containerd Containerd `json:"containerd,omitempty"`
}

// Containerd configures containerd.
type Containerd struct {
	// Source is binary (default: containerd's release archive and runc from install.artifactMirror,
	// or from the bundle when install.source is bundle) or package (the distribution's packages).
	Source InstallSource `json:"source,omitempty"`
	// Version is the containerd release for binary (default and only choice today: the one
	// pkg/versions pins, v2.3.7); for package it pins the package version, empty takes the
	// distribution's.
	Version string `json:"version,omitempty"`
	// RestrictOOMScoreAdj sets the CRI plugin's restrict_oom_score_adj (needed where the runtime
	// cannot lower oom_score_adj, e.g. nested containers).
	RestrictOOMScoreAdj bool `json:"restrictOOMScoreAdj,omitempty"`
	// Config is extra containerd TOML, written as YAML, merged into the rendered config.toml.
	Config map[string]any `json:"config,omitempty"`
}

// Images configures where images come from.
type Images struct {
	// Repository is kubeadm's imageRepository. Default registry.k8s.io.
	Repository string `json:"repository,omitempty"`
	// Mirrors maps a registry host to its mirror endpoints (containerd hosts.toml). In YAML an
	// endpoint is a URL string or {url, caFile, skipVerify}.
	Mirrors map[string][]MirrorEndpoint `json:"mirrors,omitempty"`
	// Overrides replaces any default image by another reference.
	Overrides map[string]string `json:"overrides,omitempty"`
}

// MirrorEndpoint is one registry mirror.
type MirrorEndpoint struct {
	URL        string `json:"url"`
	CAFile     string `json:"caFile,omitempty"`
	SkipVerify bool   `json:"skipVerify,omitempty"`
}

// Kubelet configures every node's kubelet.
type Kubelet struct {
	ExtraArgs map[string]string `json:"extraArgs,omitempty"`
	// Config is merged into the KubeletConfiguration (e.g. maxPods, failCgroupV1).
	Config map[string]any `json:"config,omitempty"`
}

// ControlPlaneComponent carries extra flags and host directories for a control-plane component.
type ControlPlaneComponent struct {
	ExtraArgs map[string]string `json:"extraArgs,omitempty"`
	// ExtraVolumes are host paths mounted into the component's static pod (kubeadm's extraVolumes),
	// such as an audit policy directory for the apiserver.
	ExtraVolumes []HostPathMount `json:"extraVolumes,omitempty"`
}

// HostPathMount is a host path mounted into a control-plane component's static pod: a hostPath
// volume and the container's volumeMount of the same name.
type HostPathMount struct {
	// Name names the volume and its mount: a DNS-1123 label, unique within the component, and none
	// of the names kubeadm gives the component's own volumes (k8s-certs, ca-certs, kubeconfig, ...).
	Name string `json:"name"`
	// HostPath is the absolute path on the control plane.
	HostPath string `json:"hostPath"`
	// MountPath is the absolute path inside the container.
	MountPath string `json:"mountPath"`
	// ReadOnly mounts the path read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
	// PathType is the hostPath volume's type: empty (no check), DirectoryOrCreate, Directory,
	// FileOrCreate, File, Socket, CharDevice or BlockDevice. The kubelet creates the path for the
	// *OrCreate types; for the others it must exist on every control plane (the installer does not
	// create it).
	PathType string `json:"pathType,omitempty"`
}

// KubeProxy configures kube-proxy.
type KubeProxy struct {
	Mode string `json:"mode,omitempty"`
	// Config is merged into the KubeProxyConfiguration.
	Config map[string]any `json:"config,omitempty"`
}

// Kubeadm passes options to kubeadm itself.
type Kubeadm struct {
	IgnorePreflightErrors []string `json:"ignorePreflightErrors,omitempty"`
}

// CNIPlugin names the pod network.
type CNIPlugin string

const (
	CNIFlannel CNIPlugin = "flannel"
	CNICalico  CNIPlugin = "calico"
	CNICilium  CNIPlugin = "cilium"
	CNICustom  CNIPlugin = "custom"
	CNINone    CNIPlugin = "none"
)

// CNI selects and configures the pod network.
type CNI struct {
	Plugin CNIPlugin `json:"plugin,omitempty"`
	// Version of the plugin; empty takes the version this installer pins.
	Version string `json:"version,omitempty"`
	// Manifest is a local path or an http(s) URL (calico, cilium: a mirror of the official manifest;
	// custom: required).
	Manifest string `json:"manifest,omitempty"`
	// SHA256 is the manifest's hex SHA-256; required whenever the manifest is fetched over the network.
	SHA256 string `json:"sha256,omitempty"`
}

// CloudProviderName names an external cloud-controller-manager preset.
type CloudProviderName string

const (
	CloudNone         CloudProviderName = "none"
	CloudAWS          CloudProviderName = "aws"
	CloudOpenStack    CloudProviderName = "openstack"
	CloudHetzner      CloudProviderName = "hetzner"
	CloudDigitalOcean CloudProviderName = "digitalocean"
	CloudVSphere      CloudProviderName = "vsphere"
	CloudCustom       CloudProviderName = "custom"
)

// CloudProvider deploys an external cloud-controller-manager and sets kubelets to
// --cloud-provider=external.
type CloudProvider struct {
	Name CloudProviderName `json:"name,omitempty"`
	// Image overrides the preset's image (required for custom).
	Image string `json:"image,omitempty"`
	// Args are extra CCM flags (custom: the complete argument list besides the installer's own).
	Args []string `json:"args,omitempty"`
	// CloudConfigFile is a local file stored in a Secret and passed as --cloud-config.
	CloudConfigFile string `json:"cloudConfigFile,omitempty"`
	// CredentialsSecret names an existing Secret in kube-system holding the provider's credentials.
	CredentialsSecret string `json:"credentialsSecret,omitempty"`
	// CredentialsEnv builds the credentials Secret from environment variables of the installer's
	// process: Secret key -> variable name. Values never enter the spec, logs or plans.
	CredentialsEnv map[string]string `json:"credentialsEnv,omitempty"`
}
