package phases

import (
	"path"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// CreateCluster is the workflow of `installer create cluster` (DESIGN.md §3), in order.
func CreateCluster() []Phase {
	initState, join := &initPlan{}, &joinState{}
	return []Phase{
		Connect{},
		GatherFacts{},
		ClusterIdentity{Policy: PKIMayCreate},
		Preflight{},
		InitCheck{plan: initState},
		Prepare{},
		Runtime{},
		KubernetesBinaries{},
		UploadPKI{},
		HAEndpoint{},
		Init{plan: initState, join: join},
		Join{Role: v1alpha1.RoleControlPlane, join: join},
		Join{Role: v1alpha1.RoleWorker, join: join},
		ApplyClusterFiles{PhaseName: "cni", Match: func(p string) bool { return p == "cni.yaml" },
			Skip: func(r *Run) string {
				if r.Cluster.Spec.CNI.Plugin == v1alpha1.CNINone {
					return "cni.plugin is none"
				}
				return ""
			}},
		ApplyClusterFiles{PhaseName: "cloud-controller-manager", Match: func(p string) bool { return p == "ccm.yaml" },
			Skip: func(r *Run) string {
				if !r.Cluster.Spec.ExternalCCM() {
					return "no cloud provider"
				}
				return ""
			}},
		ApplyClusterFiles{PhaseName: "addons", Match: func(p string) bool { return strings.HasPrefix(p, "addons/") && path.Ext(p) == ".yaml" },
			Skip: func(r *Run) string {
				if len(r.Cluster.Spec.Addons) == 0 {
					return "no addons"
				}
				return ""
			}},
		WaitReady{},
		SpreadCoreDNS{},
		AdminKubeconfig{},
	}
}

// JoinNode is the workflow of `installer join node`: the named hosts become nodes; one control
// plane is only read from (facts, a fresh bootstrap token, the cluster API). Existing nodes are
// not touched.
func JoinNode() []Phase {
	join := &joinState{}
	return []Phase{
		Connect{},
		GatherFacts{},
		ClusterIdentity{Policy: PKIRequired},
		RequireCluster{},
		SettleNodes{},
		Preflight{},
		Prepare{},
		Runtime{},
		KubernetesBinaries{},
		UploadPKI{},
		HAEndpoint{},
		Join{Role: v1alpha1.RoleControlPlane, join: join},
		Join{Role: v1alpha1.RoleWorker, join: join},
		WaitReady{},
	}
}
