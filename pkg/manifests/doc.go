// Package manifests holds what the installer renders onto hosts and into the cluster, and the one
// table of default container images: for each pinned Kubernetes release, every image the installer
// or kubeadm runs, with what the rendered manifests expect inside it. The lab builds its stand-in
// images from this table, so nothing else may invent an image name.
package manifests
