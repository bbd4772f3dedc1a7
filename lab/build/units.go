package build

import (
	"fmt"
	"strings"

	"installer.dev/installer/pkg/versions"
)

// Versions of lab-only components. Product versions (Kubernetes, etcd, CoreDNS, crictl, CNI plugins,
// flannel) come from pkg/versions; these exist only because the lab builds stand-ins for them.
const (
	// FlannelCNIPluginModule is the last containernetworking/plugins release that carried
	// plugins/meta/flannel (github.com/flannel-io/cni-plugin is not on the module proxy).
	FlannelCNIPluginModule = "v0.9.1"
	// PauseVersion is what the Go pause stand-in prints for -v.
	PauseVersion = "3.10.1"
)

// kubernetesCommands are the commands built from k8s.io/kubernetes, in build order: kubeadm first, it
// compiles most of the shared packages and is what tests ask for first.
var kubernetesCommands = []string{
	"kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
}

// tool is one binary a unit produces.
type tool struct {
	Name    string // output file name
	Package string // import path (or ./dir inside the wrapper module)
	LDFlags string // may contain {{buildDate}}
	Tags    string
	CGO     bool
	// Test builds the package's test binary (go test -c) instead of a command; omitempty keeps the
	// cache keys of every other unit unchanged.
	Test bool `json:",omitempty"`
}

// derivedFile is a file of the wrapper module copied from a downloaded module with some import lines
// dropped (flannel's main without the backends the proxy or CGO_ENABLED=0 cannot build).
type derivedFile struct {
	Dest        string
	Module      string
	Version     string
	File        string
	DropImports []string
}

// unit is one wrapper module and the binaries it builds. Every field takes part in the cache key, so
// a change to a recipe rebuilds exactly the units it touches.
type unit struct {
	ID      string
	Module  string
	GoLine  string            // used unless K8s is set (then copied from k8s.io/kubernetes's go.mod)
	K8s     string            // k8s.io/kubernetes version whose go, godebug and staging replace lines are copied
	Require []string          // "module version"
	Sources map[string]string // wrapper-module path -> content (stand-in sources read from the repository)
	Derived []derivedFile
	// PostTidy are go commands run in the wrapper module after go mod tidy (go get -t of test
	// packages, whose test-only dependencies tidy does not keep); omitempty keeps other keys unchanged.
	PostTidy [][]string `json:",omitempty"`
	Tools    []tool
}

func (u *unit) tool(name string) (tool, bool) {
	for _, t := range u.Tools {
		if t.Name == name {
			return t, true
		}
	}
	return tool{}, false
}

const (
	k8sTags = "selinux,notest,grpcnotrace"
	ldStrip = "-s -w"
)

// k8sLDFlags stamps the version the way upstream's hack/lib/golang.sh does; kubeadm derives its
// default and minimum versions from gitVersion and refuses to work with v0.0.0.
func k8sLDFlags(r versions.Release) string {
	minor := strings.TrimPrefix(r.Minor(), "v1.")
	var b strings.Builder
	b.WriteString(ldStrip)
	for _, p := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		fmt.Fprintf(&b, " -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean -X %s.buildDate={{buildDate}}",
			p, r.Kubernetes, p, p, minor, p, p)
	}
	return b.String()
}

// unitsFor returns the units that make up one release's set. stand is the stand-in sources read from
// the repository (path inside lab/standins -> content).
func unitsFor(r versions.Release, stand map[string]string) []*unit {
	k8s := &unit{
		ID:      "kubernetes-" + r.Kubernetes,
		Module:  "lab.local/k8sbuild",
		K8s:     r.Kubernetes,
		Require: []string{"k8s.io/kubernetes " + r.Kubernetes},
		// The lab CCM is built inside the Kubernetes wrapper: it shares the module graph and the build
		// cache (13 s instead of 87 s as a module of its own).
		Sources: map[string]string{"cmd/lab-cloud-controller-manager/main.go": stand["ccm/main.go"]},
	}
	for _, c := range kubernetesCommands {
		k8s.Tools = append(k8s.Tools, tool{Name: c, Package: "k8s.io/kubernetes/cmd/" + c, LDFlags: k8sLDFlags(r), Tags: k8sTags})
	}
	k8s.Tools = append(k8s.Tools, tool{Name: "lab-cloud-controller-manager", Package: "./cmd/lab-cloud-controller-manager",
		LDFlags: k8sLDFlags(r), Tags: k8sTags})

	etcd := &unit{
		ID: "etcd-" + r.EtcdModule, Module: "lab.local/etcdbuild", GoLine: "go 1.24",
		Require: []string{
			"go.etcd.io/etcd/server/v3 " + r.EtcdModule,
			"go.etcd.io/etcd/etcdctl/v3 " + r.EtcdModule,
			"go.etcd.io/etcd/etcdutl/v3 " + r.EtcdModule,
		},
		Tools: []tool{
			{Name: "etcd", Package: "go.etcd.io/etcd/server/v3", LDFlags: ldStrip},
			{Name: "etcdctl", Package: "go.etcd.io/etcd/etcdctl/v3", LDFlags: ldStrip},
			{Name: "etcdutl", Package: "go.etcd.io/etcd/etcdutl/v3", LDFlags: ldStrip},
		},
	}

	coredns := &unit{
		ID: "coredns-" + r.CoreDNS, Module: "lab.local/corednsbuild", GoLine: "go 1.24",
		Require: []string{"github.com/coredns/coredns " + r.CoreDNS},
		Tools:   []tool{{Name: "coredns", Package: "github.com/coredns/coredns", LDFlags: ldStrip}},
	}

	crictl := &unit{
		ID: "cri-tools-" + r.CRITools, Module: "lab.local/critoolsbuild", GoLine: "go 1.26",
		Require: []string{"sigs.k8s.io/cri-tools " + r.CRITools},
		Tools: []tool{{Name: "crictl", Package: "sigs.k8s.io/cri-tools/cmd/crictl",
			LDFlags: ldStrip + " -X sigs.k8s.io/cri-tools/pkg/version.Version=" + r.CRITools}},
	}

	cniLD := ldStrip + " -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=" + r.CNIPlugins
	cni := &unit{
		ID: "cni-plugins-" + r.CNIPlugins, Module: "lab.local/cnibuild", GoLine: "go 1.24",
		Require: []string{"github.com/containernetworking/plugins " + r.CNIPlugins},
	}
	for _, p := range []string{"main/bridge", "ipam/host-local", "main/loopback", "meta/portmap"} {
		cni.Tools = append(cni.Tools, tool{Name: p[strings.Index(p, "/")+1:], Package: "github.com/containernetworking/plugins/plugins/" + p, LDFlags: cniLD})
	}

	flannel := &unit{
		ID: "flannel-" + r.Flannel, Module: "lab.local/flannelbuild", GoLine: "go 1.24",
		Require: []string{"github.com/flannel-io/flannel " + r.Flannel},
		Derived: []derivedFile{{
			Dest: "cmd/flanneld/main.go", Module: "github.com/flannel-io/flannel", Version: r.Flannel, File: "main.go",
			// tencentvpc needs SDK modules the proxy refuses; udp is cgo-only on amd64.
			DropImports: []string{"github.com/flannel-io/flannel/pkg/backend/tencentvpc", "github.com/flannel-io/flannel/pkg/backend/udp"},
		}},
		Tools: []tool{{Name: "flanneld", Package: "./cmd/flanneld",
			LDFlags: ldStrip + " -X github.com/flannel-io/flannel/pkg/version.Version=" + r.Flannel}},
	}

	flannelCNI := &unit{
		ID: "flannel-cni-" + FlannelCNIPluginModule, Module: "lab.local/flannelcnibuild", GoLine: "go 1.24",
		Require: []string{"github.com/containernetworking/plugins " + FlannelCNIPluginModule},
		Tools: []tool{{Name: "flannel", Package: "github.com/containernetworking/plugins/plugins/meta/flannel",
			LDFlags: ldStrip + " -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=" + FlannelCNIPluginModule}},
	}

	rt := versions.Containerd()
	runc := &unit{
		ID: "runc-" + rt.Runc, Module: "lab.local/runcbuild", GoLine: "go 1.25.0",
		Require: []string{"github.com/opencontainers/runc " + rt.Runc},
		// seccomp: kubeadm's static pods run with the RuntimeDefault profile, which a runc without it
		// refuses ("seccomp not supported"; measured with containerd 2.3).
		Tools: []tool{{Name: "runc", Package: "github.com/opencontainers/runc", CGO: true, Tags: "seccomp netgo osusergo",
			LDFlags: ldStrip + " -X main.version=" + strings.TrimPrefix(rt.Runc, "v") + " -linkmode external -extldflags -static"}},
	}

	// containerd as its release archive holds it: static, no cgo (so no btrfs snapshotter, which
	// the hosts do not use), stamped like upstream's Makefile stamps it.
	const containerdPkg = "github.com/containerd/containerd/v2"
	containerdLD := ldStrip + " -X " + containerdPkg + "/version.Version=" + rt.Containerd +
		" -X " + containerdPkg + "/version.Revision=lab -X " + containerdPkg + "/version.Package=" + containerdPkg
	containerd := &unit{
		ID: "containerd-" + rt.Containerd, Module: "lab.local/containerdbuild", GoLine: "go 1.26.8",
		Require: []string{containerdPkg + " " + rt.Containerd},
		Tools: []tool{
			{Name: "containerd", Package: containerdPkg + "/cmd/containerd", LDFlags: containerdLD, Tags: "urfave_cli_no_docs osusergo netgo static_build"},
			{Name: "containerd-shim-runc-v2", Package: containerdPkg + "/cmd/containerd-shim-runc-v2", LDFlags: containerdLD, Tags: "urfave_cli_no_docs osusergo netgo static_build no_grpc"},
			{Name: "ctr", Package: containerdPkg + "/cmd/ctr", LDFlags: containerdLD, Tags: "urfave_cli_no_docs osusergo netgo static_build"},
		},
	}

	standins := &unit{
		ID: "standins", Module: "lab.local/standins", GoLine: "go 1.26",
		Sources: map[string]string{"pause/main.go": stand["pause/main.go"], "labnet/main.go": stand["labnet/main.go"]},
		Tools: []tool{
			{Name: "pause", Package: "./pause", LDFlags: ldStrip + " -X main.version=" + PauseVersion},
			{Name: "labnet", Package: "./labnet", LDFlags: ldStrip},
		},
	}
	return []*unit{k8s, etcd, coredns, crictl, cni, flannel, flannelCNI, runc, containerd, standins}
}
