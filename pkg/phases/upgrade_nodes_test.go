package phases

import (
	"fmt"
	"testing"
	"time"
)

// crictlPods is `crictl pods --label tier=control-plane --state ready -o json` as crictl 1.37
// prints it, cut to the fields that matter, after kubelet-pods.sh's first line.
func crictlPods(kubeletStart int64, created map[string]int64) []byte {
	out := fmt.Sprintf("%d\n{\n  \"items\": [", kubeletStart)
	sep := ""
	for c, sec := range created {
		out += fmt.Sprintf(`%s
    {
      "id": "cc8a72afcf02fa4a74fe49ce776af2fd4bc623f53dee79e3319dbeda9c87032a",
      "metadata": {"name": "%s-cp1", "uid": "312623ee73fc2bfd0169f31d1b6c7ba8", "namespace": "kube-system", "attempt": 0},
      "state": "SANDBOX_READY",
      "createdAt": "%d",
      "labels": {"component": "%s", "io.kubernetes.pod.namespace": "kube-system", "tier": "control-plane"},
      "runtimeHandler": ""
    }`, sep, c, sec*int64(time.Second), c)
		sep = ","
	}
	return []byte(out + "\n  ]\n}\n")
}

// TestNotRecreated: the control plane is the new kubelet's only once every static pod, etcd
// included, has a sandbox younger than the kubelet (or the grace passed: hashes that did not change).
func TestNotRecreated(t *testing.T) {
	const start = 1796486100
	all := func(sec int64) map[string]int64 {
		return map[string]int64{"etcd": sec, "kube-apiserver": sec, "kube-controller-manager": sec, "kube-scheduler": sec}
	}
	etcdOld := all(start + 5)
	etcdOld["etcd"] = start - 600
	noScheduler := all(start + 5)
	delete(noScheduler, "kube-scheduler")
	for _, c := range []struct {
		name    string
		created map[string]int64
		inGrace bool
		want    string
	}{
		{"all re-created", all(start + 5), true, ""},
		{"etcd not yet", etcdOld, true, "the kubelet has not re-created etcd yet"},
		{"etcd kept after the grace", etcdOld, false, ""},
		{"none yet", all(start - 600), true, "the kubelet has not re-created etcd, kube-apiserver, kube-controller-manager, kube-scheduler yet"},
		{"scheduler without a ready sandbox", noScheduler, false, "no ready pod of kube-scheduler"},
	} {
		started, newest, err := parseStaticPods(crictlPods(start, c.created))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if started.Unix() != start || len(newest) != len(c.created) {
			t.Fatalf("%s: parsed start %v, %d components", c.name, started, len(newest))
		}
		if got := notRecreated(started, newest, c.inGrace); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if _, _, err := parseStaticPods([]byte("\n{}")); err == nil {
		t.Error("an empty kubelet start time was accepted")
	}
}
