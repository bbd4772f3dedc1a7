// Package drift compares what a running cluster holds with what its spec asks for, as pure
// functions of both: the control-plane components' flags and extra volumes, the apiserver
// certificate's names, the kubelet configuration, a node's labels and taints, and the cluster-wide
// settings apply refuses to change. `installer apply` reads the cluster and prints and reconciles
// what these report.
package drift

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Change is one difference between the spec and the cluster: which host (empty: cluster-wide) and
// component, what differs (one line each, "+" added, "-" removed, "~" changed) and what making it
// costs (a restart, a rewrite).
type Change struct {
	Host      string
	Component string
	Lines     []string
	Cost      string
}

// Refusal is a difference apply will not make: the spec's field and why.
type Refusal struct {
	Field  string
	Reason string
}

func (r Refusal) String() string { return r.Field + ": " + r.Reason }

// Flags compares a component's wanted extra flags with the flags of its manifest (kubeadm's
// "--name=value" command line). removed are flags the cluster's configuration had and the spec no
// longer has, with the value they had: one still in the manifest with that value must go (kubeadm
// then renders its own default, or none). Returns one line per difference, sorted by flag.
func Flags(want map[string]string, removed map[string]string, command []string) []string {
	have := ParseFlags(command)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		v, ok := have[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("+ --%s=%s", k, want[k]))
		case v != want[k]:
			out = append(out, fmt.Sprintf("~ --%s=%s (now %s)", k, want[k], v))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(removed)) {
		if _, kept := want[k]; kept {
			continue
		}
		if v, ok := have[k]; ok && v == removed[k] {
			out = append(out, fmt.Sprintf("- --%s=%s", k, v))
		}
	}
	return out
}

// ParseFlags reads "--name=value" arguments (a bare "--name" is "true"); the binary's name and
// anything else is ignored.
func ParseFlags(command []string) map[string]string {
	out := map[string]string{}
	for _, a := range command {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok {
			v = "true"
		}
		out[k] = v
	}
	return out
}

// Removed returns the entries of old whose key want lacks.
func Removed(old, want map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range old {
		if _, ok := want[k]; !ok {
			out[k] = v
		}
	}
	return out
}
