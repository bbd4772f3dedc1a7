// The lab cloud-controller-manager's source. lab/build copies main.go into the Kubernetes wrapper
// module and builds it there (same module graph and build cache); this go.mod only keeps the file out
// of the installer module and other stand-ins.
module installer.dev/lab/standins/ccm

go 1.24.0

require k8s.io/cloud-provider v0.34.10
