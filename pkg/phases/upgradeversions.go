package phases

import (
	"fmt"
	"sort"
	"strings"

	utilversion "k8s.io/apimachinery/pkg/util/version"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/versions"
)

// Observed is one version found in the cluster: a control plane's static pods, a node's kubelet.
type Observed struct {
	What    string // "control plane on cp1", "kubelet on w2"
	Version string
}

// CheckUpgrade decides whether the cluster, with the versions observed, may move to target in one
// step: never down (not even a patch), never past the next minor of its oldest component (kubeadm
// and the version skew policy allow one minor at a time). A refusal to skip names the chain of
// supported releases to go through instead. Errors are exit code 2: the request does not fit the
// cluster, nothing was changed.
func CheckUpgrade(observed []Observed, target string, releases []versions.Release) error {
	tv, err := utilversion.ParseSemantic(target)
	if err != nil {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("target version %q: %w", target, err))
	}
	var oldest, newest *Observed
	var oldestV, newestV *utilversion.Version
	for i := range observed {
		o := &observed[i]
		v, err := utilversion.ParseSemantic(o.Version)
		if err != nil {
			return fmt.Errorf("%s reports version %q: %w", o.What, o.Version, err)
		}
		if oldestV == nil || v.LessThan(oldestV) {
			oldest, oldestV = o, v
		}
		if newestV == nil || newestV.LessThan(v) {
			newest, newestV = o, v
		}
	}
	if oldest == nil {
		return fmt.Errorf("no version found in the cluster")
	}
	if tv.LessThan(newestV) {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("refusing to downgrade: the %s runs %s, newer than the target %s (downgrades are not supported; restore the etcd snapshot taken before the upgrade instead)",
			newest.What, newest.Version, target))
	}
	if tv.Major() != oldestV.Major() || tv.Minor() > oldestV.Minor()+1 {
		return exitcode.New(exitcode.InvalidInput, fmt.Errorf("cannot upgrade from %s to %s in one step: the %s runs %s, and Kubernetes upgrades one minor version at a time. Upgrade in this order:\n%s",
			oldest.Version, target, oldest.What, oldest.Version, upgradeChain(oldestV, tv, releases)))
	}
	return nil
}

// upgradeChain lists one `installer upgrade --to` per minor from the one after from up to to, with
// the supported release of each minor (the newest patch), or says which minor has none.
func upgradeChain(from, to *utilversion.Version, releases []versions.Release) string {
	byMinor := map[uint]string{}
	sorted := append([]versions.Release(nil), releases...)
	sort.Slice(sorted, func(i, j int) bool {
		return utilversion.MustParseSemantic(sorted[i].Kubernetes).LessThan(utilversion.MustParseSemantic(sorted[j].Kubernetes))
	})
	for _, r := range sorted {
		v := utilversion.MustParseSemantic(r.Kubernetes)
		if v.Major() == to.Major() {
			byMinor[v.Minor()] = r.Kubernetes
		}
	}
	var lines []string
	for m, n := from.Minor()+1, 1; m <= to.Minor(); m, n = m+1, n+1 {
		step := byMinor[m]
		if m == to.Minor() {
			step = "v" + to.String()
		}
		if step == "" {
			lines = append(lines, fmt.Sprintf("  %d. v%d.%d: no supported release of this minor; use an installer release that supports it", n, to.Major(), m))
			continue
		}
		lines = append(lines, fmt.Sprintf("  %d. installer upgrade --to %s", n, step))
	}
	return strings.Join(lines, "\n")
}
