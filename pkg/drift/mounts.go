package drift

import (
	"cmp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
)

// MountString shows an extra volume as "HOSTPATH -> MOUNTPATH", then "(ro, TYPE)" for what is set
// of its read-only flag and path type.
func MountString(m kubeadmv1beta4.HostPathMount) string {
	s := m.HostPath + " -> " + m.MountPath
	var opts []string
	if m.ReadOnly {
		opts = append(opts, "ro")
	}
	if m.PathType != "" {
		opts = append(opts, string(m.PathType))
	}
	if len(opts) > 0 {
		s += " (" + strings.Join(opts, ", ") + ")"
	}
	return s
}

// Mounts compares a component's wanted extra volumes (the spec's ClusterConfiguration) with its
// static pod: each must be a hostPath volume of its name with that path and type, mounted into the
// pod's container at its mount path with its read-only flag. stored are the extra volumes the
// cluster's stored configuration has: one the spec dropped that the pod still holds at the same
// host path must go (a volume of that name elsewhere is kubeadm's own). Returns one line per
// difference, "+ volume NAME ...", "~ ... (now ...)" or "- ...", sorted by name.
func Mounts(want, stored []kubeadmv1beta4.HostPathMount, pod *corev1.Pod) []string {
	var out []string
	for _, w := range byName(want) {
		h := podMount(pod, w.Name)
		switch {
		case !h.volume && !h.mounted:
			out = append(out, "+ volume "+w.Name+" "+MountString(w))
		case !h.volume || !h.hostPath || !h.mounted || !sameMount(w, h.HostPathMount):
			out = append(out, "~ volume "+w.Name+" "+MountString(w)+" (now "+h.String()+")")
		}
	}
	for _, s := range byName(stored) {
		if slices.ContainsFunc(want, func(w kubeadmv1beta4.HostPathMount) bool { return w.Name == s.Name }) {
			continue
		}
		if h := podMount(pod, s.Name); h.hostPath && h.HostPath == s.HostPath {
			out = append(out, "- volume "+s.Name+" "+MountString(h.HostPathMount))
		}
	}
	return out
}

// foundMount is what a static pod holds under one volume name.
type foundMount struct {
	kubeadmv1beta4.HostPathMount
	// volume: the pod has a volume of the name; hostPath: a hostPath one; mounted: its first
	// container mounts a volume of the name.
	volume, hostPath, mounted bool
}

func (f foundMount) String() string {
	switch {
	case !f.volume:
		return "no volume, mounted at " + f.MountPath
	case !f.hostPath:
		return "not a hostPath volume"
	case !f.mounted:
		return f.HostPath + ", not mounted"
	}
	return MountString(f.HostPathMount)
}

func podMount(pod *corev1.Pod, name string) foundMount {
	f := foundMount{HostPathMount: kubeadmv1beta4.HostPathMount{Name: name}}
	for _, v := range pod.Spec.Volumes {
		if v.Name != name {
			continue
		}
		f.volume = true
		if v.HostPath != nil {
			f.hostPath, f.HostPath = true, v.HostPath.Path
			if v.HostPath.Type != nil {
				f.PathType = *v.HostPath.Type
			}
		}
	}
	if len(pod.Spec.Containers) > 0 {
		for _, m := range pod.Spec.Containers[0].VolumeMounts {
			if m.Name == name {
				f.mounted, f.MountPath, f.ReadOnly = true, m.MountPath, m.ReadOnly
			}
		}
	}
	return f
}

// sameMount compares what kubeadm renders of an extra volume (an empty path type and none are the
// same).
func sameMount(a, b kubeadmv1beta4.HostPathMount) bool {
	return a.HostPath == b.HostPath && a.MountPath == b.MountPath && a.ReadOnly == b.ReadOnly && a.PathType == b.PathType
}

// MountLines compares the extra volumes of one component of two ClusterConfigurations, want (the
// spec's) and have (the cluster's stored one), by name: one line per volume added, changed or
// removed, "+ FIELD NAME: ...", sorted by name.
func MountLines(field string, want, have []kubeadmv1beta4.HostPathMount) []string {
	var out []string
	for _, w := range byName(want) {
		i := slices.IndexFunc(have, func(h kubeadmv1beta4.HostPathMount) bool { return h.Name == w.Name })
		switch {
		case i < 0:
			out = append(out, "+ "+field+" "+w.Name+": "+MountString(w))
		case !sameMount(w, have[i]):
			out = append(out, "~ "+field+" "+w.Name+": "+MountString(w)+" (now "+MountString(have[i])+")")
		}
	}
	for _, h := range byName(have) {
		if !slices.ContainsFunc(want, func(w kubeadmv1beta4.HostPathMount) bool { return w.Name == h.Name }) {
			out = append(out, "- "+field+" "+h.Name+": "+MountString(h))
		}
	}
	return out
}

func byName(m []kubeadmv1beta4.HostPathMount) []kubeadmv1beta4.HostPathMount {
	return slices.SortedFunc(slices.Values(m), func(a, b kubeadmv1beta4.HostPathMount) int { return cmp.Compare(a.Name, b.Name) })
}
