// Package conformance runs upstream's kubeadm suite (test/e2e_kubeadm) and the [Conformance] specs
// of test/e2e against a cluster through the ginkgo CLI, and reads their JUnit reports into a
// summary (passed, failed, skipped with reasons, durations). The binaries come from lab/build, the
// test images from lab/images; `lab conformance` and `make conformance` drive it. Nothing in the
// product imports it.
package conformance
