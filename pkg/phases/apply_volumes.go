package phases

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/drift"
)

// componentVolumes are the extra volumes a ClusterConfiguration gives a control-plane component,
// named by kubeadm's phase (applyComponents).
func componentVolumes(c *kubeadmv1beta4.ClusterConfiguration, phase string) []kubeadmv1beta4.HostPathMount {
	switch phase {
	case "apiserver":
		return c.APIServer.ExtraVolumes
	case "controller-manager":
		return c.ControllerManager.ExtraVolumes
	case "scheduler":
		return c.Scheduler.ExtraVolumes
	}
	return nil
}

// extraVolumeLines are the differences in the components' extra volumes between want (the spec's
// ClusterConfiguration) and have (kubeadm-config), component by component.
func extraVolumeLines(want, have *kubeadmv1beta4.ClusterConfiguration) []string {
	var out []string
	for _, c := range []struct {
		name, phase string
	}{
		{"apiServer", "apiserver"},
		{"controllerManager", "controller-manager"},
		{"scheduler", "scheduler"},
	} {
		out = append(out, drift.MountLines(c.name+".extraVolumes", componentVolumes(want, c.phase), componentVolumes(have, c.phase))...)
	}
	return out
}

// parsePod reads a static pod manifest whole (its volumes, its container's command and mounts); it
// must have a container.
func parsePod(path string, data []byte) (*corev1.Pod, error) {
	var p corev1.Pod
	if err := yaml.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(p.Spec.Containers) == 0 {
		return nil, fmt.Errorf("%s has no container", path)
	}
	return &p, nil
}
