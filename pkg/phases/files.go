package phases

import (
	"strings"

	"installer.dev/installer/pkg/manifests"
)

// fileGroup says which phase uploads a rendered host file: the path a file lands on decides it, so
// this table is the one place that maps renderers' output to phases (and what a change restarts).
type fileGroup int

const (
	groupNode       fileGroup = iota // sysctls, kernel modules: prepare
	groupRuntime                     // containerd: runtime (restart containerd on change)
	groupKubelet                     // kubelet unit, drop-ins, crictl: kubernetes (daemon-reload on change)
	groupHAEndpoint                  // keepalived/haproxy/kube-vip: ha-endpoint (static pods)
)

func groupOf(path string) fileGroup {
	switch {
	case strings.HasPrefix(path, "/etc/containerd/"),
		strings.HasPrefix(path, "/etc/systemd/system/containerd.service.d/"):
		return groupRuntime
	case strings.HasPrefix(path, "/etc/keepalived/"), strings.HasPrefix(path, "/etc/haproxy/"),
		strings.HasPrefix(path, "/etc/kubernetes/manifests/"), strings.HasPrefix(path, "/etc/kube-vip/"):
		return groupHAEndpoint
	case strings.HasPrefix(path, "/etc/sysctl.d/"), strings.HasPrefix(path, "/etc/modules-load.d/"):
		return groupNode
	}
	return groupKubelet
}

// hostFiles renders the host's files and returns those of one group.
func (h *Host) hostFiles(g fileGroup) ([]manifests.File, error) {
	all, err := manifests.HostFiles(&h.in.Cluster.Spec, h.Spec, h.Facts, h.in.Inputs)
	if err != nil {
		return nil, err
	}
	var out []manifests.File
	for _, f := range all {
		if groupOf(f.Path) == g {
			out = append(out, f)
		}
	}
	return out, nil
}
