package phases

import (
	"strings"
	"testing"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
)

func haCreateSpec(t *testing.T) *v1alpha1.Cluster {
	t.Helper()
	return createSpecWith(t, func(s *v1alpha1.ClusterSpec) {
		s.LoadBalancer = v1alpha1.LoadBalancer{Type: v1alpha1.LoadBalancerKeepalivedHAProxy, VIP: "10.0.0.100", Interface: "eth0"}
	}, "cp1", "cp2", "cp3", "w1")
}

// TestUnfinishedControlPlaneJoinResumes is the power loss of cp2 during its kubeadm join, after
// kubeadm wrote admin.conf and kubelet.conf (as kubeadm 1.37 does before it adds the etcd member):
// the run stops at cp2 and does not start cp3's join; the next run resumes cp2's join past the
// preflight that would refuse kubeadm's own files, then joins cp3; a third run changes nothing.
func TestUnfinishedControlPlaneJoinResumes(t *testing.T) {
	sc := newSimCluster(t, haCreateSpec(t))
	cp2 := sc.Host("cp2")
	cp2.FailAt("kubeadm join").Lose()
	_, err := sc.run(t, hostPhases())
	if err == nil || !strings.Contains(err.Error(), "phase join/control-planes: host cp2: kubeadm join") || !strings.Contains(err.Error(), "(not started after it: cp3)") {
		t.Fatalf("err = %v", err)
	}
	if _, ok := cp2.File(constants.JoinMarker); !ok {
		t.Fatal("no join marker on cp2 after its join was cut")
	}
	for _, h := range []string{"cp3"} {
		for _, l := range sc.Host(h).Transcript(0) {
			if strings.HasPrefix(l, "kubeadm join") || strings.Contains(l, constants.JoinMarker) {
				t.Errorf("%s was started after cp2 failed: %s", h, l)
			}
		}
	}
	// What kubeadm had written on cp2 when the power went: its kubeconfigs.
	cp2.SetFile(constants.AdminConf, []byte("apiVersion: v1\nkind: Config\n"), 0o600, "root:root")
	cp2.SetFile(constants.KubeletConf, []byte("apiVersion: v1\nkind: Config\n"), 0o600, "root:root")

	mark := sc.marks()
	if _, err := sc.run(t, hostPhases()); err != nil {
		t.Fatalf("re-run: %v", err)
	}
	var joins []string
	for _, l := range cp2.Transcript(mark.hosts["cp2"]) {
		if strings.HasPrefix(l, "kubeadm join") {
			joins = append(joins, l)
		}
	}
	if want := "kubeadm join --config /etc/kubernetes/installer/kubeadm.yaml --skip-phases preflight,kubelet-start"; len(joins) != 1 || joins[0] != want {
		t.Errorf("cp2 joins: %q, want %q", joins, want)
	}
	for _, h := range []string{"cp2", "cp3"} {
		if _, ok := sc.Host(h).File(constants.JoinMarker); ok {
			t.Errorf("%s: join marker left after a completed join", h)
		}
		if st := sc.Host(h).State(); !st.Node || st.ControlPlane == "" {
			t.Errorf("%s not a control plane: %+v", h, st)
		}
	}
	r3, err := sc.run(t, hostPhases())
	if err != nil || totalChanges(r3) != 0 {
		t.Errorf("third run: %v, changes %v", err, r3.Changes())
	}
}

// TestForeignJoinMarkerRefused: a join marker naming another cluster is not resumed.
func TestForeignJoinMarkerRefused(t *testing.T) {
	sc := newSimCluster(t, haCreateSpec(t))
	sc.Host("cp2").FailAt("kubeadm join")
	if _, err := sc.run(t, hostPhases()); err == nil {
		t.Fatal("the injected failure did not fail the run")
	}
	sc.Host("cp2").SetFile(constants.JoinMarker, []byte("cluster=other\nca=sha256:00\nhost=cp2\nstarted=2026-12-01T00:00:00Z\n"), 0o644, "root:root")
	mark := sc.marks()
	_, err := sc.run(t, hostPhases())
	if err == nil || !strings.Contains(err.Error(), `records a join of cluster "other"`) || !strings.Contains(err.Error(), "not started after it: cp3") {
		t.Fatalf("err = %v", err)
	}
	for _, l := range sc.Host("cp2").Transcript(mark.hosts["cp2"]) {
		if strings.HasPrefix(l, "kubeadm join") {
			t.Errorf("cp2 ran %s", l)
		}
	}
}
