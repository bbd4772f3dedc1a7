package drift

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Labels compares a node's labels with the spec's for its host. Only labels the spec sets, or set
// before (managed: earlier applies and the kubelet's --node-labels at join), are the installer's:
// a managed label the spec no longer has is removed, every other label is left alone. Returns the
// lines and the node's labels as they must become (nil when nothing changes).
func Labels(want map[string]string, managed []string, have map[string]string) ([]string, map[string]string) {
	var lines []string
	next := maps.Clone(have)
	if next == nil {
		next = map[string]string{}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v, ok := have[k]
		switch {
		case !ok:
			lines = append(lines, fmt.Sprintf("+ label %s=%s", k, want[k]))
		case v != want[k]:
			lines = append(lines, fmt.Sprintf("~ label %s=%s (now %s)", k, want[k], v))
		default:
			continue
		}
		next[k] = want[k]
	}
	for _, k := range slices.Sorted(slices.Values(managed)) {
		if _, keep := want[k]; keep {
			continue
		}
		if v, ok := have[k]; ok {
			lines = append(lines, fmt.Sprintf("- label %s=%s", k, v))
			delete(next, k)
		}
	}
	if len(lines) == 0 {
		return nil, nil
	}
	return lines, next
}

// TaintKey names a taint by key and effect, as kubectl does ("key:Effect").
func TaintKey(t corev1.Taint) string { return t.Key + ":" + string(t.Effect) }

// Taints compares a node's taints with the spec's for its host, as Labels does labels: managed are
// "key:Effect" of taints the installer set before; the others (not-ready, a cloud's, an
// operator's) are left alone. Returns the lines and the node's taints as they must become (nil when
// nothing changes).
func Taints(want []corev1.Taint, managed []string, have []corev1.Taint) ([]string, []corev1.Taint) {
	var lines []string
	next := slices.Clone(have)
	find := func(ts []corev1.Taint, key string) int {
		return slices.IndexFunc(ts, func(t corev1.Taint) bool { return TaintKey(t) == key })
	}
	for _, t := range want {
		i := find(next, TaintKey(t))
		switch {
		case i < 0:
			lines = append(lines, "+ taint "+showTaint(t))
			next = append(next, corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
		case next[i].Value != t.Value:
			lines = append(lines, fmt.Sprintf("~ taint %s (now %s)", showTaint(t), showTaint(next[i])))
			next[i].Value = t.Value
		}
	}
	for _, key := range slices.Sorted(slices.Values(managed)) {
		if find(want, key) >= 0 {
			continue
		}
		if i := find(next, key); i >= 0 {
			lines = append(lines, "- taint "+showTaint(next[i]))
			next = slices.Delete(next, i, i+1)
		}
	}
	if len(lines) == 0 {
		return nil, nil
	}
	return lines, next
}

func showTaint(t corev1.Taint) string {
	if t.Value == "" {
		return t.Key + ":" + string(t.Effect)
	}
	return t.Key + "=" + t.Value + ":" + string(t.Effect)
}
