package simhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/facts"
)

// pkiFiles are the PKI files facts.sh sums, relative to the PKI directory.
var pkiFiles = []string{"ca.crt", "ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key", "sa.key", "sa.pub"}

// kubePackages are the packages facts.sh asks dpkg-query about.
var kubePackages = []string{"kubeadm", "kubelet", "kubectl", "cri-tools", "kubernetes-cni"}

// factsOutput is what facts.sh prints on the host, section by section.
func (h *Host) factsOutput() string {
	var b strings.Builder
	sec := func(name, body string) { fmt.Fprintf(&b, "==%s\n%s", name, body) }
	sec("os-release", "ID=debian\nVERSION_ID=\"12\"\n")
	sec("arch", "x86_64\n")
	sec("hostname", h.name+"\n")
	sec("cgroupfs", "cgroup2fs\n")
	sec("init", "systemd\n")
	sec("addrs", "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet "+h.ip+"/24 brd x scope global eth0\n")
	sec("default-route", "default via 10.0.0.254 dev eth0\n")
	sec("product-uuid", "uuid-"+h.name+"\n")
	h.softwareFacts(sec)
	h.clusterFacts(sec)
	listening := "0.0.0.0:22\n"
	if _, active := h.unitState("kubelet"); active {
		listening += "*:10250\n"
	}
	sec("listening", listening)
	sec("time", "")
	sec("end", "")
	return b.String()
}

// softwareFacts are the sections of swap, containerd, the Kubernetes tools and packages.
func (h *Host) softwareFacts(sec func(name, body string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	swaps := "Filename Type Size Used Priority\n"
	if h.swap {
		swaps += "/swap file 1024 0 -2\n"
	}
	sec("swaps", swaps)
	running := ""
	if h.leftoverPolls > 0 {
		running = "4242\n" // the leftover kubeadm's PID (SetLeftoverKubeadm)
	}
	sec("kubeadm-running", running)
	version := func(p, format string) string {
		if v := h.bins[p]; v != "" {
			return fmt.Sprintf(format, v)
		}
		return ""
	}
	containerd := version(containerdPath, "containerd github.com/containerd/containerd %s x\n")
	if v := version(releaseContainerdPath, "containerd github.com/containerd/containerd/v2 %s x\n"); v != "" {
		containerd = v
	}
	sec("containerd", containerd)
	runc := version(debianRuncPath, "runc version %s\n")
	if v := version(releaseRuncPath, "runc version %s\n"); v != "" {
		runc = v
	}
	sec("runc", strings.Replace(runc, "version v", "version ", 1))
	sec("kubelet", version("/usr/bin/kubelet", "Kubernetes %s\n"))
	sec("kubeadm", version("/usr/bin/kubeadm", "%s\n"))
	sec("kubectl", version("/usr/bin/kubectl", "Client Version: %s\n"))
	pkgs := ""
	for _, n := range kubePackages {
		if v := h.packages[n]; v != "" {
			pkgs += word(h.held[n], "hi", "ii") + " " + n + " " + v + "\n"
		}
	}
	sec("packages", pkgs)
}

// clusterFacts are the sections of kubeadm's files, the PKI and the installer's init marker.
func (h *Host) clusterFacts(sec func(name, body string)) {
	files := ""
	for _, f := range []string{constants.KubeletConf, constants.AdminConf} {
		if _, ok := h.File(f); ok {
			files += f + "\n"
		}
	}
	sec("files", files)
	present := ""
	for _, p := range facts.ClusterPaths {
		if h.exists(p) {
			present += p + "\n"
		}
	}
	sec("cluster-paths", present)
	sums := ""
	for _, p := range pkiFiles {
		if f, ok := h.File(constants.PKIDir + "/" + p); ok {
			sum := sha256.Sum256(f.Content)
			sums += hex.EncodeToString(sum[:]) + "  " + p + "\n"
		}
	}
	sec("pki-sums", sums)
	ca := ""
	if f, ok := h.File(constants.PKIDir + "/ca.crt"); ok {
		ca = string(f.Content)
	}
	sec("cluster-ca", ca)
	marker := ""
	if f, ok := h.File(constants.InitMarker); ok {
		marker = string(f.Content)
	}
	sec("init-marker", marker)
	joining := ""
	if f, ok := h.File(constants.JoinMarker); ok {
		joining = string(f.Content)
	}
	sec("join-marker", joining)
}
