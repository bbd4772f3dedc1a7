// Package debrepo builds the lab's Kubernetes apt repository: Debian packages named, versioned and
// related like the upstream ones on pkgs.k8s.io (kubeadm, kubelet, kubectl at the Kubernetes version,
// cri-tools and kubernetes-cni at their own), made with nfpm from the lab builder's binaries, and a
// flat repository per minor (core:/stable:/v1.34/deb/ with Packages, Packages.gz, Release, InRelease
// and Release.gpg) signed with a lab key kept in the lab cache. The unit files and maintainer scripts
// are the lab's own, written to behave like upstream's. Nothing in the product imports it.
package debrepo
