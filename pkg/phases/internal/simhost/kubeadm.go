package simhost

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"installer.dev/installer/pkg/constants"
)

// kubeadm's side of a host: kubeconfigs, static pods, the kubelet it starts, etcd's membership, and
// the kubectl and kubeadm commands the installer runs.

// kubeconfigs are the kubeconfigs kubeadm init writes (and reset removes); a control plane that
// joins gets controlPlaneKubeconfigs and kubelet.conf.
var (
	kubeconfigs             = []string{constants.AdminConf, constants.SuperAdminConf, constants.KubeletConf, constants.ControllerManagerConf, constants.SchedulerConf}
	controlPlaneKubeconfigs = []string{constants.AdminConf, constants.ControllerManagerConf, constants.SchedulerConf}
)

// kubectl answers the one kubectl call the installer makes: whether kubeadm's ConfigMap can be
// read through a kubeconfig (kubeadm init completed and the API server answers).
func (h *Host) kubectl(args []string) Reply {
	i := slices.Index(args, "--kubeconfig")
	if i < 0 || i+1 >= len(args) || !slices.Contains(args, "kubeadm-config") {
		return Exit(1, "simhost: kubectl "+strings.Join(args, " ")+" is not simulated")
	}
	if _, ok := h.File(args[i+1]); !ok {
		return Exit(1, "error: stat "+args[i+1]+": no such file or directory")
	}
	if !h.apiServerUp() {
		return Exit(1, "The connection to the server "+h.ip+":"+strconv.Itoa(constants.APIServerPort)+" was refused - did you specify the right host or port?")
	}
	return Out("configmap/kubeadm-config\n")
}

// apiServerUp: the host's kube-apiserver static pod runs (its manifest is there, the kubelet runs)
// and answers.
func (h *Host) apiServerUp() bool {
	if !h.controlPlane || !h.exists(constants.KubeAPIServerManifest) {
		return false
	}
	_, active := h.unitState("kubelet")
	h.mu.Lock()
	defer h.mu.Unlock()
	return active && !h.apiServerDown
}

// etcdRunning: the host's etcd static pod runs and answers.
func (h *Host) etcdRunning() bool {
	if !h.controlPlane || !h.exists(constants.EtcdManifest) {
		return false
	}
	_, active := h.unitState("kubelet")
	h.mu.Lock()
	defer h.mu.Unlock()
	return active && !h.etcdDown
}

// startKubelet (re)starts the kubelet at the installed version. A kubelet of a newer minor than
// the kubeadm that wrote its flags crash-loops, and its node goes NotReady still showing the old
// version (lab-upgrade-ha.md §3.7); otherwise the node reports the new version, Ready.
func (h *Host) startKubelet() {
	h.setUnit("kubelet", nil, yes)
	h.mu.Lock()
	before := h.kubeletRunning
	h.kubeletRunning = h.bins["/usr/bin/kubelet"]
	h.kubeletStart = time.Now()
	h.crashLoop = h.kubeletFlags != "" && minorOf(h.kubeletRunning) > minorOf(h.kubeletFlags)
	running, crash := h.kubeletRunning, h.crashLoop
	h.mu.Unlock()
	if api := h.cluster.API; api != nil {
		if crash {
			api.setNode(h.name, before, false)
		} else {
			api.setNode(h.name, running, true)
		}
	}
}

func minorOf(v string) int {
	var maj, min, patch int
	_, _ = fmt.Sscanf(v, "v%d.%d.%d", &maj, &min, &patch)
	return min
}

// configFile is kubeadm's --config file, which must exist on the host.
func (h *Host) configFile(args []string) ([]byte, Reply, bool) {
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		return nil, Exit(1, "simhost: kubeadm without --config is not simulated"), false
	}
	f, ok := h.File(args[i+1])
	if !ok {
		return nil, Exit(1, "unable to read config from \""+args[i+1]+"\": no such file or directory"), false
	}
	return f.Content, Reply{}, true
}

// skipsPhase reports whether kubeadm's --skip-phases names phase.
func skipsPhase(args []string, phase string) bool {
	i := slices.Index(args, "--skip-phases")
	return i >= 0 && i+1 < len(args) && slices.Contains(strings.Split(args[i+1], ","), phase)
}

// kubeadmInit: the kubeconfigs, the control plane's static pods at kubeadm's version, a new etcd
// cluster, the kubelet started on the flags kubeadm wrote, and what a running node accumulates.
func (h *Host) kubeadmInit(args []string) Reply {
	if _, r, ok := h.configFile(args); !ok {
		return r
	}
	v := h.binary("/usr/bin/kubeadm")
	if h.binary("/usr/bin/kubelet") == "" {
		return Exit(1, "[preflight] Some fatal errors occurred: kubelet not found in system path")
	}
	for _, f := range kubeconfigs {
		h.writeKubeconfig(f)
	}
	h.writeStaticPods(v, true)
	h.cluster.addMember(h.name, true)
	h.mu.Lock()
	h.apiServerDown = false
	h.mu.Unlock()
	h.becomeNode(v)
	return Out("Your Kubernetes control-plane has initialized successfully!\n")
}

// kubeadmJoin: the cluster CA from cluster-info, kubelet.conf, and on a control plane its
// kubeconfigs, static pods and etcd member.
func (h *Host) kubeadmJoin(args []string) Reply {
	if _, r, ok := h.configFile(args); !ok {
		return r
	}
	ca, ok := h.cluster.caCert()
	if !ok {
		return Exit(1, "error execution phase preflight: couldn't validate the identity of the API Server: the cluster does not answer")
	}
	if _, found := h.File(constants.PKIDir + "/ca.crt"); !found {
		h.SetFile(constants.PKIDir+"/ca.crt", ca, 0o644, "root:root")
	}
	if _, found := h.File(constants.KubeletConf); found && !skipsPhase(args, "preflight") {
		return Exit(1, "error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists")
	}
	v := h.binary("/usr/bin/kubeadm")
	h.writeKubeconfig(constants.KubeletConf)
	if h.controlPlane {
		if _, ok := h.File(constants.PKIDir + "/ca.key"); !ok {
			return Exit(1, "error execution phase control-plane-prepare/certs: the cluster CA's key is missing")
		}
		for _, f := range controlPlaneKubeconfigs {
			h.writeKubeconfig(f)
		}
		h.writeStaticPods(v, true)
		h.cluster.addMemberOnce(h.name)
	}
	h.becomeNode(v)
	return Out("This node has joined the cluster\n")
}

// becomeNode starts the kubelet on kubeadm's flags and adds what a running node leaves behind: the
// kubelet's and the CNI's directories, pods, links and firewall rules.
func (h *Host) becomeNode(kubeadmVersion string) {
	for _, d := range []string{constants.KubeletDir, "/var/lib/cni", "/run/flannel"} {
		h.mkdir(d)
	}
	if h.controlPlane {
		h.mkdir(etcdMemberDir)
	}
	h.SetFile(cniConfDir+"/10-flannel.conflist", []byte(`{"name":"cbr0","cniVersion":"1.0.0","plugins":[{"type":"flannel"}]}`+"\n"), 0o644, "root:root")
	h.mu.Lock()
	h.kubeletFlags = kubeadmVersion
	h.pods, h.links, h.firewall = 7, []string{"cni0", "flannel.1"}, true
	h.mu.Unlock()
	h.startKubelet()
}

// kubeadmReset is what kubeadm reset does (lab-upgrade-ha.md §5): it stops the kubelet, removes
// the pods, kubeadm's kubeconfigs, manifests/ and pki/ contents, etcd's data and the host's etcd
// member; it leaves the directories, /etc/kubernetes/installer, the CNI's files, links and firewall
// rules, and the kubelet enabled.
func (h *Host) kubeadmReset() {
	h.setUnit("kubelet", nil, no)
	h.mu.Lock()
	h.kubeletRunning, h.pods = "", 0
	keep := h.keepEtcdMember
	h.mu.Unlock()
	for _, f := range kubeconfigs {
		h.RemoveFile(f)
	}
	h.emptyDir(constants.StaticPodDir)
	h.emptyDir(constants.PKIDir)
	h.emptyDir(constants.EtcdDataDir)
	h.emptyDir(constants.KubeletDir)
	if h.controlPlane && !keep {
		h.cluster.removeMemberOf(h.name)
	}
}

// kubeVersion finds the target an UpgradeConfiguration names.
func kubeVersion(config []byte) string {
	for _, l := range strings.Split(string(config), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "kubernetesVersion: "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// kubeadmToken is kubeadm token create: it needs the API server.
func (h *Host) kubeadmToken([]string) Reply {
	if !h.apiServerUp() {
		return Exit(1, "failed to create bootstrap token: the API server does not answer")
	}
	return Out("abcdef.0123456789abcdef\n")
}

// kubeadmUpgradePlan succeeds when the installed kubeadm is the configuration's target.
func (h *Host) kubeadmUpgradePlan(args []string) Reply {
	config, r, ok := h.configFile(args)
	if !ok {
		return r
	}
	v, target := h.binary("/usr/bin/kubeadm"), kubeVersion(config)
	if v != target {
		return Exit(1, "kubeadm "+v+" cannot plan "+target)
	}
	return Out("You can now apply the upgrade\n")
}

// kubeadmUpgrade is `kubeadm upgrade apply` (apply: the cluster's configuration too) and `upgrade
// node`: the kubelet's flags, on a control plane its static pods, at the installed kubeadm's
// version; the last control plane also upgrades the add-ons.
func (h *Host) kubeadmUpgrade(apply bool) Reply {
	v := h.binary("/usr/bin/kubeadm")
	h.mu.Lock()
	h.kubeletFlags = v
	h.mu.Unlock()
	if !h.controlPlane {
		return Out("")
	}
	h.writeStaticPods(v, false)
	h.cluster.restarted(h.name, "kubeadm upgrade")
	if api := h.cluster.API; api != nil {
		api.kubeadmUpgraded(v, apply, h.cluster.controlPlanesAt(v))
	}
	var out strings.Builder
	for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		fmt.Fprintf(&out, "[upgrade/staticpods] Preparing for %q upgrade\n[upgrade/staticpods] Component %q upgraded successfully!\n", c, c)
	}
	return Out(out.String() + "[upgrade] SUCCESS!\n")
}

// writeStaticPods writes the control plane's static pods at version (etcd's only with etcd).
func (h *Host) writeStaticPods(version string, etcd bool) {
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		h.SetFile(constants.StaticPodDir+"/"+c+".yaml", staticPod(c, "registry.k8s.io/"+c+":"+version), 0o600, "root:root")
	}
	if etcd {
		h.SetFile(constants.EtcdManifest, staticPod("etcd", "registry.k8s.io/etcd:3.6.5-0"), 0o600, "root:root")
	}
}

func staticPod(name, image string) []byte {
	return []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  namespace: kube-system\nspec:\n  containers:\n  - name: " +
		name + "\n    image: " + image + "\n")
}

// writeKubeconfig writes a kubeconfig of kubeadm's naming the host's API endpoint.
func (h *Host) writeKubeconfig(p string) {
	conf := "apiVersion: v1\nkind: Config\nclusters: [{name: sim, cluster: {server: \"https://" + h.ip + ":" + strconv.Itoa(constants.APIServerPort) + "\"}}]\n" +
		"users: [{name: admin, user: {token: sim}}]\ncontexts: [{name: sim, context: {cluster: sim, user: admin}}]\ncurrent-context: sim\n"
	h.SetFile(p, []byte(conf), 0o600, "root:root")
}
