// Package constants holds the names kubeadm and the installer give to ports, paths and files on a
// host: one spelling each. It is a leaf (it imports nothing), so every package, the spec API
// included, can use it. Paths that only one renderer writes stay beside that renderer
// (manifests.KubeletUnitPath, kubeadm.ConfigPath).
package constants

// APIServerPort is the port every apiserver binds on its own host (kubeadm's default). The cluster's
// endpoint defaults to it but may differ (8443 through haproxy on the control planes).
const APIServerPort = 6443

// LocalAPIServer is where every control plane's apiserver listens on its own host
// (127.0.0.1:APIServerPort). kubeadm's certSANs include 127.0.0.1, so TLS verifies against the
// cluster CA as usual.
const LocalAPIServer = "127.0.0.1:6443"

// kubeadm's directories and files on every node.
const (
	// KubernetesDir is kubeadm's configuration directory.
	KubernetesDir = "/etc/kubernetes"
	// PKIDir is where kubeadm keeps (and adopts) a cluster's certificates and keys.
	PKIDir = KubernetesDir + "/pki"
	// StaticPodDir is where the kubelet reads static pods (the control plane, etcd, the HA endpoint).
	StaticPodDir = KubernetesDir + "/manifests"

	// AdminConf is the cluster-admin kubeconfig on a control plane.
	AdminConf = KubernetesDir + "/admin.conf"
	// SuperAdminConf is the kubeconfig that bypasses RBAC; kubeadm init writes it on the first
	// control plane only.
	SuperAdminConf = KubernetesDir + "/super-admin.conf"
	// KubeletConf is the kubelet's kubeconfig: a host that has it is a node.
	KubeletConf = KubernetesDir + "/kubelet.conf"
	// ControllerManagerConf and SchedulerConf are the control-plane components' kubeconfigs.
	ControllerManagerConf = KubernetesDir + "/controller-manager.conf"
	SchedulerConf         = KubernetesDir + "/scheduler.conf"

	// The control plane's static pods' manifests, as kubeadm names them.
	EtcdManifest                  = StaticPodDir + "/etcd.yaml"
	KubeAPIServerManifest         = StaticPodDir + "/kube-apiserver.yaml"
	KubeControllerManagerManifest = StaticPodDir + "/kube-controller-manager.yaml"
	KubeSchedulerManifest         = StaticPodDir + "/kube-scheduler.yaml"

	// EtcdDataDir is the local etcd's data directory (and where snapshots are taken on the host).
	EtcdDataDir = "/var/lib/etcd"
	// KubeletDir is the kubelet's state directory.
	KubeletDir = "/var/lib/kubelet"
	// KubeletClientCert is the kubelet's current client certificate, with its key (the kubelet
	// rotates it; kubelet.conf names this file).
	KubeletClientCert = KubeletDir + "/pki/kubelet-client-current.pem"
	// KubeletConfigFile is the node's KubeletConfiguration, which kubeadm writes from the cluster's
	// kubelet-config at join and upgrade.
	KubeletConfigFile = KubeletDir + "/config.yaml"
	// KubeadmFlagsFile holds the kubelet flags kubeadm wrote at init or join (node-ip, node-labels,
	// register-with-taints).
	KubeadmFlagsFile = KubeletDir + "/kubeadm-flags.env"
)

// The installer's own directories and files on a host.
const (
	// InstallerDataDir holds the installer's markers; kubeadm reset leaves it alone, the
	// installer's reset removes it.
	InstallerDataDir = "/var/lib/installer"
	// InitMarker is written on the first control plane before `kubeadm init` and removed once init
	// has completed: the only proof that a half-initialised control plane is the installer's own
	// unfinished work.
	InitMarker = InstallerDataDir + "/kubeadm-init.started"
	// JoinMarker is written on a control plane before `kubeadm join` and removed once the join has
	// completed. kubeadm writes kubelet.conf long before a control plane's join ends (its etcd
	// member is added, promoted, the node marked after it): with the marker there, the host is an
	// unfinished join of the installer's, which the next run resumes.
	JoinMarker = InstallerDataDir + "/kubeadm-join.started"
)

// ControlPlaneComponents are the static pods kubeadm runs on a control plane, by the component label
// it gives them (the mirror pod is <component>-<node>).
var ControlPlaneComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
