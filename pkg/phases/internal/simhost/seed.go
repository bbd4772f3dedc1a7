package simhost

import (
	"strings"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/versions"
)

// Seed is a node of a running cluster as create left it at one version. The cluster PKI and the
// installer's rendered files are the caller's to put in place (SetFile).
type Seed struct {
	// Kubernetes is the version of kubeadm, the kubelet and kubectl and of the static pods.
	Kubernetes string
	// Crictl and CNI are the versions of crictl and of the CNI plugins (with their marker).
	Crictl, CNI string
	// Packages, when set, are the installed packages of the Kubernetes repository ("kubeadm":
	// "1.34.10-1.1"), kubeadm, kubelet and kubectl held; the tools are theirs.
	Packages map[string]string
	// DistroContainerd: the node runs Debian's containerd 1.6 packages (a cluster made before the
	// installer put containerd's release binaries on nodes) instead of those binaries.
	DistroContainerd bool
}

// Seed makes the host a node (a control plane when it was added as one) as create leaves it:
// swap off, sysctls applied, containerd running, the tools installed, kubeadm's kubeconfigs and
// static pods, an etcd member, the kubelet enabled and running on kubeadm's flags.
func (h *Host) Seed(s Seed) {
	h.mu.Lock()
	h.swap, h.sysctlApplied = false, true
	if s.DistroContainerd {
		h.packages["containerd"], h.packages["runc"] = "1.6.20~ds1-1+deb12u3", "1.1.5+ds1-1+deb12u1"
		h.bins[containerdPath], h.bins[debianRuncPath] = defaultContainerd, "1.1.5+ds1"
	} else {
		rel := versions.Containerd()
		h.bins[releaseContainerdPath], h.bins[releaseRuncPath] = strings.TrimPrefix(rel.Containerd, "v"), strings.TrimPrefix(rel.Runc, "v")
	}
	h.units["containerd"] = &unit{enabled: true, active: true}
	h.units["kubelet"] = &unit{enabled: true}
	for _, t := range []string{"kubeadm", "kubelet", "kubectl"} {
		h.bins["/usr/bin/"+t] = s.Kubernetes
	}
	for n, v := range s.Packages {
		h.packages[n] = v
	}
	if s.Packages != nil {
		h.held["kubeadm"], h.held["kubelet"], h.held["kubectl"] = true, true, true
	}
	h.bins[install.CrictlPath] = s.Crictl
	h.mu.Unlock()
	h.mkdir(install.CNIBinDir)
	h.SetFile(install.CNIVersionAt, []byte(s.CNI+"\n"), 0o644, "root:root")
	h.mkdir(constants.StaticPodDir)
	h.writeKubeconfig(constants.KubeletConf)
	if h.controlPlane {
		for _, f := range controlPlaneKubeconfigs {
			h.writeKubeconfig(f)
		}
		h.writeStaticPods(s.Kubernetes, true)
		h.cluster.addMember(h.name, false)
	}
	h.becomeNode(s.Kubernetes)
}
