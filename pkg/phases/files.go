package phases

import (
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/manifests"
)

// hostFiles renders every file of the host, grouped by the phase that uploads it
// (manifests.HostFiles): each phase takes its own group. Everything is rendered each time, so a
// host whose files cannot be rendered fails the first phase that asks, before the later ones change
// it. initDone says whether kubeadm init has completed on the first control plane (kube-vip there
// reads super-admin.conf until then): Init passes true once it has run; before that, phases pass
// whether the host had admin.conf when its facts were gathered.
func hostFiles(h *Host, spec *v1alpha1.ClusterSpec, inputs manifests.Inputs, initDone bool) (manifests.HostFiles, error) {
	return manifests.RenderHostFiles(manifests.HostInput{Spec: spec, Host: h.Spec, Facts: h.now(), Inputs: inputs, InitDone: initDone})
}
