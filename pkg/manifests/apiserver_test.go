package manifests

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"installer.dev/installer/lab/testapiserver"
)

// testAPIServer is a real etcd and kube-apiserver built by lab/build, listening on loopback.
type testAPIServer struct {
	config *rest.Config
	client kubernetes.Interface
	dyn    dynamic.Interface
	mapper meta.RESTMapper
}

// startAPIServer starts a real API server (lab/testapiserver) and the clients these tests use.
func startAPIServer(t *testing.T) *testAPIServer {
	t.Helper()
	srv := testapiserver.Start(t)
	dyn, err := dynamic.NewForConfig(srv.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &testAPIServer{config: srv.Config, client: srv.Client, dyn: dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(srv.Client.Discovery()))}
}

// apply server-side applies one object; dryRun leaves nothing behind.
func (s *testAPIServer) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w", gvk, err)
	}
	var r dynamic.ResourceInterface = s.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ns := u.GetNamespace()
		if ns == "" {
			ns = "default"
		}
		r = s.dyn.Resource(m.Resource).Namespace(ns)
	}
	opts := metav1.ApplyOptions{FieldManager: "installer", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = r.Apply(ctx, u.GetName(), u, opts)
	return err
}

// TestAPIServerAcceptsRenderedManifests applies every rendered cluster file (cni.yaml, ccm.yaml,
// addons) and every static pod of every spec to a real kube-apiserver with server-side dry-run.
// Namespaces are created for real first (a dry-run namespace does not exist for the objects in it).
func TestAPIServerAcceptsRenderedManifests(t *testing.T) {
	s := startAPIServer(t)
	ctx := context.Background()
	for _, sp := range specFiles(t) {
		t.Run(goldenName(sp), func(t *testing.T) {
			r := renderSpec(t, sp)
			var objs []*unstructured.Unstructured
			for name, f := range r.tree() {
				if !strings.HasPrefix(name, "cluster/") && !strings.Contains(name, "/etc/kubernetes/manifests/") {
					continue
				}
				o, err := DecodeManifest(f.Content)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				objs = append(objs, o...)
			}
			if len(objs) == 0 {
				t.Fatal("nothing to apply")
			}
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					if err := s.apply(ctx, o, false); err != nil {
						t.Fatalf("namespace %s: %v", o.GetName(), err)
					}
				}
			}
			for _, o := range objs {
				if err := s.apply(ctx, o, true); err != nil {
					t.Errorf("%s %s/%s: the API server refused it: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}
			t.Logf("%d objects accepted", len(objs))
		})
	}
	t.Run("ccm-rbac", func(t *testing.T) { testCCMRBAC(t, s) })
}

// testCCMRBAC applies the custom CCM's manifest for real and asks the API server's authorizer
// whether the CCM's service account may do what the cloud-controller-manager does.
func testCCMRBAC(t *testing.T, s *testAPIServer) {
	ctx := context.Background()
	r := renderSpec(t, "testdata/specs/ccm-custom.yaml")
	var ccm File
	for _, f := range r.cluster {
		if f.Path == "ccm.yaml" {
			ccm = f
		}
	}
	objs, err := DecodeManifest(ccm.Content)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "DaemonSet" {
			continue // no pods are wanted, only the RBAC
		}
		if err := s.apply(ctx, o, false); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	const user = "system:serviceaccount:kube-system:cloud-controller-manager"
	type check struct {
		group, resource, sub, verb, ns, name string
		allowed                              bool
	}
	var checks []check
	add := func(allowed bool, group, resource, sub, ns, name string, verbs ...string) {
		for _, v := range verbs {
			checks = append(checks, check{group, resource, sub, v, ns, name, allowed})
		}
	}
	add(true, "", "nodes", "", "", "", "get", "list", "watch", "update", "patch", "delete")
	add(true, "", "nodes", "status", "", "", "patch")
	add(true, "", "services", "", "", "", "list", "watch", "patch", "update")
	add(true, "", "services", "status", "", "", "patch")
	add(true, "", "events", "", "default", "", "create", "patch", "update")
	add(true, "", "serviceaccounts", "", "kube-system", "node-controller", "get", "create")
	add(true, "", "serviceaccounts", "token", "kube-system", "node-controller", "create")
	add(true, "", "persistentvolumes", "", "", "", "get", "list", "watch", "update")
	add(true, "", "endpoints", "", "kube-system", "", "create", "get", "list", "watch", "update")
	add(true, "coordination.k8s.io", "leases", "", "kube-system", "cloud-controller-manager", "get", "create", "update")
	add(true, "", "configmaps", "", "kube-system", "extension-apiserver-authentication", "get", "list", "watch")
	// Least privilege: nothing beyond that.
	add(false, "", "secrets", "", "kube-system", "", "get", "list")
	add(false, "", "pods", "", "kube-system", "", "create", "delete")
	add(false, "", "serviceaccounts", "", "kube-system", "", "delete")

	deadline := time.Now().Add(30 * time.Second)
	for _, c := range checks {
		for {
			sar, err := s.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: user,
					Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
					ResourceAttributes: &authorizationv1.ResourceAttributes{Group: c.group, Resource: c.resource,
						Subresource: c.sub, Verb: c.verb, Namespace: c.ns, Name: c.name}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed == c.allowed {
				break
			}
			// The RBAC authorizer sees new bindings through its informers, a moment later.
			if time.Now().After(deadline) {
				t.Errorf("%s %s/%s %s in %q: allowed=%t, want %t (%s)", c.verb, c.resource, c.sub, c.name, c.ns, sar.Status.Allowed, c.allowed, sar.Status.Reason)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("%d access reviews answered as expected", len(checks))
}
