// Package build is the lab's one component builder: it turns pinned versions from pkg/versions into
// real binaries (Kubernetes, etcd, CoreDNS, crictl, CNI plugins, flannel, runc, the lab's stand-ins)
// by generating wrapper modules and running the ordinary go client, and caches them under
// ~/.cache/installer-lab keyed by exact versions and a hash of the builder's own inputs.
//
// It is used by the lab CLI and by tests; nothing in the product imports it.
package build
