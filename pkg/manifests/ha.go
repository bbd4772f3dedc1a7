package manifests

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/facts"
)

// Paths of the HA endpoint's files on control planes. kubeadm reset empties the static pod
// directory, so a control plane that joins again needs them laid down again.
const (
	KeepalivedConfigPath = "/etc/keepalived/keepalived.conf"
	KeepalivedCheckPath  = "/etc/keepalived/check_apiserver.sh"
	HAProxyConfigPath    = "/etc/haproxy/haproxy.cfg"
	KeepalivedPodPath    = constants.StaticPodDir + "/keepalived.yaml"
	HAProxyPodPath       = constants.StaticPodDir + "/haproxy.yaml"
	KubeVIPPodPath       = constants.StaticPodDir + "/kube-vip.yaml"

	// HAProxyAdminDir holds haproxy's runtime API socket, HAProxyAdminSocket (root only); the pod
	// mounts the directory, which the socket is created in at each start.
	HAProxyAdminDir    = "/run/installer/haproxy"
	HAProxyAdminSocket = HAProxyAdminDir + "/admin.sock"
	// KeepalivedMaintenanceDir holds KeepalivedMaintenanceFile while an upgrade has this control
	// plane out of service: keepalived's check fails and the VIP moves to another control plane. It
	// is under /run, so a reboot ends a maintenance an interrupted run left behind.
	KeepalivedMaintenanceDir  = "/run/installer/keepalived"
	KeepalivedMaintenanceFile = KeepalivedMaintenanceDir + "/maintenance"
	// HAProxyOutMarker exists on a control plane while a run has it out of every haproxy (upgrade,
	// certs renew, apply): the proof that a server left in maintenance is the installer's to put
	// back. Under /run like haproxy's own state, which a reboot also resets.
	HAProxyOutMarker = "/run/installer/haproxy-out"
)

// HAProxyBackend is the name of the API's backend in haproxy.cfg.
const HAProxyBackend = "k8s-api"

// haFiles renders the HA endpoint of one control plane for the spec's load balancer type; initDone
// is HostInput.InitDone.
func haFiles(spec *v1alpha1.ClusterSpec, host v1alpha1.Host, f facts.Host, in Inputs, initDone bool) ([]File, error) {
	switch spec.LoadBalancer.Type {
	case v1alpha1.LoadBalancerKeepalivedHAProxy:
		return keepalivedHAProxy(spec, host, f, in)
	case v1alpha1.LoadBalancerKubeVIP:
		return kubeVIP(spec, host, f, initDone)
	}
	return nil, nil
}

// vipInterface is the spec's interface, else the one holding the host's private address.
func vipInterface(spec *v1alpha1.ClusterSpec, host v1alpha1.Host, f facts.Host) (string, error) {
	if i := spec.LoadBalancer.Interface; i != "" {
		return i, nil
	}
	if i := f.InterfaceFor(host.NodeIP()); i != "" {
		return i, nil
	}
	return "", fmt.Errorf("no interface holds %s for the VIP: set spec.loadBalancer.interface", host.NodeIP())
}

// vipPrefix is the prefix length of the interface network that contains the VIP (so the VIP sits in
// the subnet like any address), /32 when none does.
func vipPrefix(vip, iface string, f facts.Host) int {
	ip := net.ParseIP(vip)
	for _, i := range f.Interfaces {
		if i.Name != iface {
			continue
		}
		for _, a := range i.Addrs {
			if _, n, err := net.ParseCIDR(a); err == nil && n.Contains(ip) {
				ones, _ := n.Mask.Size()
				return ones
			}
		}
	}
	if ip.To4() == nil {
		return 128
	}
	return 32
}

type keepalivedData struct {
	Host, Interface, VIP, Password, CheckScript string
	VirtualRouterID, Priority                   int32
}

type haproxyData struct {
	Host, AdminSocket string
	Port              int32
	Backends          []haproxyBackend
}

type haproxyBackend struct{ Name, Address string }

func keepalivedHAProxy(spec *v1alpha1.ClusterSpec, host v1alpha1.Host, f facts.Host, in Inputs) ([]File, error) {
	lb := spec.LoadBalancer
	if lb.VIP == "" {
		return nil, fmt.Errorf("spec.loadBalancer.vip is required for %s", lb.Type)
	}
	if in.VRRPPassword == "" || len(in.VRRPPassword) > MaxVRRPPasswordLength ||
		strings.ContainsAny(in.VRRPPassword, " \t\n\"'#!{}\\") {
		return nil, fmt.Errorf("keepalived needs a VRRP password of 1-%d plain characters (NewVRRPPassword makes one)", MaxVRRPPasswordLength)
	}
	iface, err := vipInterface(spec, host, f)
	if err != nil {
		return nil, err
	}
	cps := spec.ControlPlanes()
	var prio int32 = 0
	var backends []haproxyBackend
	for i, cp := range cps {
		if cp.Name == host.Name {
			// The first control plane is preferred; keepalived's priorities run 1-254.
			prio = max(150-10*int32(i), 1)
		}
		backends = append(backends, haproxyBackend{Name: cp.Name, Address: net.JoinHostPort(cp.NodeIP(), strconv.Itoa(constants.APIServerPort))})
	}
	if prio == 0 {
		return nil, fmt.Errorf("%s is not a control plane", host.Name)
	}
	kd := keepalivedData{Host: host.Name, Interface: iface, VirtualRouterID: lb.VirtualRouterID, Priority: prio,
		VIP: fmt.Sprintf("%s/%d", lb.VIP, vipPrefix(lb.VIP, iface, f)), CheckScript: KeepalivedCheckPath}
	kd.Password = in.VRRPPassword
	kconf, err := render("keepalived.conf.tmpl", kd)
	if err != nil {
		return nil, err
	}
	kd.Password = Redacted
	kmasked, err := render("keepalived.conf.tmpl", kd)
	if err != nil {
		return nil, err
	}
	check, err := render("check_apiserver.sh.tmpl", struct {
		Port            int32
		MaintenanceFile string
	}{spec.ControlPlaneEndpoint.Port, KeepalivedMaintenanceFile})
	if err != nil {
		return nil, err
	}
	hconf, err := render("haproxy.cfg.tmpl", haproxyData{Host: host.Name, AdminSocket: HAProxyAdminSocket, Port: spec.ControlPlaneEndpoint.Port, Backends: backends})
	if err != nil {
		return nil, err
	}

	kimg, err := ImageName(spec, "keepalived")
	if err != nil {
		return nil, err
	}
	himg, err := ImageName(spec, "haproxy")
	if err != nil {
		return nil, err
	}
	r, err := Release(spec)
	if err != nil {
		return nil, err
	}
	kbin, err := ImageFor(r, "keepalived")
	if err != nil {
		return nil, err
	}
	hbin, err := ImageFor(r, "haproxy")
	if err != nil {
		return nil, err
	}

	kpod := staticPod("keepalived", in.configHash(append(kmasked, check...), []byte(in.VRRPPassword)), corev1.Container{
		Name:    "keepalived",
		Image:   kimg,
		Command: []string{kbin.Binaries[0]},
		Args:    []string{"--dont-fork", "--log-console", "--log-detail", "--vrrp", "--use-file=" + KeepalivedConfigPath},
		SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
			// VRRP adverts, gratuitous ARP and adding the VIP; measured: no need for privileged.
			Add: []corev1.Capability{"NET_ADMIN", "NET_BROADCAST", "NET_RAW"},
		}},
	}, fileMount("config", KeepalivedConfigPath, true), fileMount("check", KeepalivedCheckPath, true),
		dirMount("maintenance", KeepalivedMaintenanceDir, true))

	hpod := staticPod("haproxy", in.configHash(hconf), corev1.Container{
		Name:    "haproxy",
		Image:   himg,
		Command: []string{hbin.Binaries[0]},
		Args:    []string{"-db", "-f", HAProxyConfigPath},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(spec.ControlPlaneEndpoint.Port)}},
			InitialDelaySeconds: 10, PeriodSeconds: 10, FailureThreshold: 3,
		},
	}, fileMount("config", HAProxyConfigPath, true), dirMount("admin", HAProxyAdminDir, false))

	kyaml, err := marshalPod(kpod)
	if err != nil {
		return nil, err
	}
	hyaml, err := marshalPod(hpod)
	if err != nil {
		return nil, err
	}
	return []File{
		{Path: KeepalivedConfigPath, Mode: 0o600, Content: kconf, Sensitive: true, Masked: kmasked},
		// keepalived's script security refuses scripts others could write.
		{Path: KeepalivedCheckPath, Mode: 0o755, Content: check},
		{Path: HAProxyConfigPath, Mode: 0o644, Content: hconf},
		{Path: KeepalivedPodPath, Mode: 0o600, Content: kyaml},
		{Path: HAProxyPodPath, Mode: 0o600, Content: hyaml},
	}, nil
}

// kubeVIP renders kube-vip's static pod in ARP mode. On the first control plane it reads
// super-admin.conf until kubeadm init has finished (initDone; admin.conf has no rights before that,
// kube-vip issue 684), then admin.conf: render again with initDone once init is done.
func kubeVIP(spec *v1alpha1.ClusterSpec, host v1alpha1.Host, f facts.Host, initDone bool) ([]File, error) {
	lb := spec.LoadBalancer
	if lb.VIP == "" {
		return nil, fmt.Errorf("spec.loadBalancer.vip is required for %s", lb.Type)
	}
	iface, err := vipInterface(spec, host, f)
	if err != nil {
		return nil, err
	}
	img, err := ImageName(spec, "kube-vip")
	if err != nil {
		return nil, err
	}
	kubeconfig := constants.AdminConf
	if cps := spec.ControlPlanes(); len(cps) > 0 && cps[0].Name == host.Name && !initDone {
		kubeconfig = constants.SuperAdminConf
	}
	env := []corev1.EnvVar{
		{Name: "vip_arp", Value: "true"},
		{Name: "port", Value: strconv.Itoa(int(spec.ControlPlaneEndpoint.Port))},
		{Name: "vip_interface", Value: iface},
		{Name: "vip_cidr", Value: strconv.Itoa(vipPrefix(lb.VIP, iface, f))},
		{Name: "cp_enable", Value: "true"},
		{Name: "cp_namespace", Value: "kube-system"},
		{Name: "svc_enable", Value: "false"},
		{Name: "vip_leaderelection", Value: "true"},
		{Name: "vip_leasename", Value: "plndr-cp-lock"},
		{Name: "vip_leaseduration", Value: "5"},
		{Name: "vip_renewdeadline", Value: "3"},
		{Name: "vip_retryperiod", Value: "1"},
		{Name: "address", Value: lb.VIP},
	}
	pod := staticPod("kube-vip", "", corev1.Container{
		Name:  "kube-vip",
		Image: img,
		Args:  []string{"manager"},
		Env:   env,
		SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{
			Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"},
		}},
	}, hostFileMount("kubeconfig", kubeconfig, constants.AdminConf, true))
	// kube-vip reaches the local apiserver as "kubernetes" before the VIP exists.
	pod.Spec.HostAliases = []corev1.HostAlias{{IP: "127.0.0.1", Hostnames: []string{"kubernetes"}}}
	b, err := marshalPod(pod)
	if err != nil {
		return nil, err
	}
	return []File{{Path: KubeVIPPodPath, Mode: 0o600, Content: b}}, nil
}

type mount struct {
	volume corev1.Volume
	mount  corev1.VolumeMount
}

// fileMount mounts one host file at the same path in the container.
func fileMount(name, p string, readOnly bool) mount {
	return hostFileMount(name, p, p, readOnly)
}

// dirMount mounts a host directory at the same path, created (0755, root) when missing.
func dirMount(name, p string, readOnly bool) mount {
	t := corev1.HostPathDirectoryOrCreate
	return mount{
		volume: corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p, Type: &t}}},
		mount:  corev1.VolumeMount{Name: name, MountPath: p, ReadOnly: readOnly},
	}
}

func hostFileMount(name, hostPath, containerPath string, readOnly bool) mount {
	t := corev1.HostPathFile
	return mount{
		volume: corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostPath, Type: &t}}},
		mount:  corev1.VolumeMount{Name: name, MountPath: containerPath, ReadOnly: readOnly},
	}
}

// staticPod builds a control-plane static pod: host network, node-critical, one container.
func staticPod(name, configHash string, c corev1.Container, mounts ...mount) *corev1.Pod {
	c.ImagePullPolicy = corev1.PullIfNotPresent
	c.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("25m")}}
	var vols []corev1.Volume
	for _, m := range mounts {
		vols = append(vols, m.volume)
		c.VolumeMounts = append(c.VolumeMounts, m.mount)
	}
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "kube-system",
			Labels: map[string]string{"component": name, "tier": "control-plane", "app.kubernetes.io/managed-by": "installer"},
		},
		Spec: corev1.PodSpec{
			HostNetwork:       true,
			PriorityClassName: "system-node-critical",
			Containers:        []corev1.Container{c},
			Volumes:           vols,
		},
	}
	if configHash != "" {
		// A changed config file alone does not restart a static pod; a changed manifest does.
		p.Annotations = map[string]string{ConfigHashAnnotation: configHash}
	}
	return p
}

func marshalPod(p *corev1.Pod) ([]byte, error) {
	b, err := marshalObject(p)
	if err != nil {
		return nil, fmt.Errorf("static pod %s: %w", p.Name, err)
	}
	return b, nil
}

// marshalObject writes a typed object as YAML without the empty status and creationTimestamp that
// a plain marshal adds.
func marshalObject(obj any) ([]byte, error) {
	j, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := yaml.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	prune(m)
	return yaml.Marshal(m)
}

func prune(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case map[string]any:
			prune(t)
			if len(t) == 0 && (k == "status" || k == "resources" || k == "metadata") {
				delete(m, k)
			}
		case []any:
			for _, e := range t {
				if em, ok := e.(map[string]any); ok {
					prune(em)
				}
			}
		case nil:
			if k == "creationTimestamp" {
				delete(m, k)
			}
		}
	}
}
