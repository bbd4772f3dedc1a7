package guard

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/pki"
)

var bundles struct {
	once sync.Once
	ours *pki.Bundle
	them *pki.Bundle
	err  error
}

// twoClusters returns two different cluster PKIs.
func twoClusters(t *testing.T) (ours, them *pki.Bundle) {
	t.Helper()
	bundles.once.Do(func() {
		if bundles.ours, bundles.err = pki.Generate(pki.Options{}); bundles.err == nil {
			bundles.them, bundles.err = pki.Generate(pki.Options{})
		}
	})
	if bundles.err != nil {
		t.Fatal(bundles.err)
	}
	return bundles.ours, bundles.them
}

// onHost is what a control plane (or, with only ca.crt, a worker) holds of bundle b.
func onHost(b *pki.Bundle, names ...string) facts.ClusterFiles {
	sums := b.FileSums()
	f := facts.ClusterFiles{PKISums: map[string]string{}, CACert: b.Cluster.CertPEM}
	if len(names) == 0 {
		names = pki.FileNames()
	}
	for _, n := range names {
		f.PKISums[n] = sums[n]
	}
	return f
}

func refusalOf(t *testing.T, err error) *Refusal {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("got %v, want a Refusal", err)
	}
	if exitcode.Of(err) != exitcode.Refused || !strings.Contains(err.Error(), RefusalPhrase) {
		t.Errorf("refusal %q: exit %d, want %d and the refusal phrase", err, exitcode.Of(err), exitcode.Refused)
	}
	return r
}

func TestClusterPKI(t *testing.T) {
	ours, them := twoClusters(t)
	oursFP, themFP := pki.Fingerprint(ours.Cluster.Cert), pki.Fingerprint(them.Cluster.Cert)
	leftovers := facts.ClusterFiles{Present: []string{"/var/lib/etcd/member"}}
	tamperedSA := onHost(ours)
	tamperedSA.PKISums["sa.pub"] = them.FileSums()["sa.pub"]

	tests := []struct {
		name  string
		local *pki.Bundle
		hosts []HostFiles
		// want: substrings of the error, one refusal per host named; none: allowed.
		want []string
	}{
		{name: "new cluster on clean hosts", local: nil, hosts: []HostFiles{{Name: "cp1"}, {Name: "w1"}}},
		{name: "re-run of our cluster", local: ours, hosts: []HostFiles{{"cp1", onHost(ours)}, {"w1", onHost(ours, "ca.crt")}, {"w2", facts.ClusterFiles{}}}},
		{name: "an upload cut short (some files only)", local: ours, hosts: []HostFiles{{"cp1", onHost(ours, "ca.crt", "ca.key")}}},
		{name: "lost state directory", local: nil, hosts: []HostFiles{{"cp1", onHost(ours)}, {"w1", onHost(ours, "ca.crt")}},
			want: []string{"host cp1 is part of an existing cluster (cluster CA " + oursFP + "), but the state directory /state has no PKI", "host w1 is part of", "installer state recover"}},
		{name: "another cluster's state directory", local: them, hosts: []HostFiles{{"cp1", onHost(ours)}},
			want: []string{"host cp1 belongs to another cluster: its cluster CA is " + oursFP + ", the state directory /state holds " + themFP}},
		{name: "same CA, another service-account key", local: ours, hosts: []HostFiles{{"cp1", tamperedSA}},
			want: []string{"host cp1 has the state directory's cluster CA but other keys or certificates: /etc/kubernetes/pki/sa.pub"}},
		{name: "cluster files without a CA", local: ours, hosts: []HostFiles{{"cp1", leftovers}},
			want: []string{"host cp1 holds files of a kubeadm cluster (/var/lib/etcd/member) but /etc/kubernetes/pki/ca.crt (it is missing)"}},
		{name: "an unparsable CA", local: nil, hosts: []HostFiles{{"cp1", facts.ClusterFiles{CACert: []byte("garbage\n")}}},
			want: []string{"host cp1 holds files of a kubeadm cluster", "does not parse"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ClusterPKI("/state", tc.local, tc.hosts)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			refusalOf(t, err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestInit(t *testing.T) {
	ours, _ := twoClusters(t)
	id := Identity{Cluster: "prod", CAFingerprint: pki.Fingerprint(ours.Cluster.Cert)}
	marker := &facts.Marker{Cluster: "prod", CAFingerprint: id.CAFingerprint, Host: "cp1"}
	otherMarker := &facts.Marker{Cluster: "staging", CAFingerprint: "sha256:00", Host: "cp1"}
	initialised := []string{"/etc/kubernetes/admin.conf", "/etc/kubernetes/manifests/kube-apiserver.yaml", "/var/lib/etcd/member"}
	apiDown := "kubectl: connection refused"

	tests := []struct {
		name string
		ev   InitEvidence
		want InitAction
		// refused: substrings of the refusal
		refused []string
	}{
		{name: "fresh host", ev: InitEvidence{}, want: InitRun},
		{name: "completed init", ev: InitEvidence{Files: facts.ClusterFiles{Present: initialised}, Complete: true}, want: InitDone},
		{name: "completed init, marker left by a kill after init", ev: InitEvidence{Files: facts.ClusterFiles{Present: initialised, InitMarker: marker}, Complete: true}, want: InitDone},
		{name: "API down on an initialised host: never reset", ev: InitEvidence{Files: facts.ClusterFiles{Present: initialised}, Check: apiDown},
			refused: []string{"host cp1 initialised a cluster on an earlier run, but its API server does not answer (" + apiDown + ")", "journalctl -u kubelet"}},
		{name: "leftovers nobody can vouch for", ev: InitEvidence{Files: facts.ClusterFiles{Present: []string{"/var/lib/etcd/member"}}},
			refused: []string{"holds parts of a control plane the installer did not start here (no init marker): /var/lib/etcd/member", "installer reset --host cp1"}},
		{name: "our unfinished init", ev: InitEvidence{Files: facts.ClusterFiles{Present: initialised, InitMarker: marker}, Check: apiDown}, want: InitRetry},
		{name: "our init killed before admin.conf", ev: InitEvidence{Files: facts.ClusterFiles{InitMarker: marker}}, want: InitRetry},
		{name: "our unfinished init, etcd answers with itself only", ev: InitEvidence{Files: facts.ClusterFiles{Present: initialised, InitMarker: marker}, EtcdMembers: []string{"cp1"}}, want: InitRetry},
		{name: "our marker, but another host is a node", ev: InitEvidence{Files: facts.ClusterFiles{Present: initialised, InitMarker: marker}, Nodes: []string{"w1"}, Check: apiDown},
			refused: []string{"w1 are nodes already: the cluster is in use"}},
		{name: "our marker, but etcd has other members", ev: InitEvidence{Files: facts.ClusterFiles{Present: initialised, InitMarker: marker}, EtcdMembers: []string{"cp1", "cp9"}},
			refused: []string{"etcd lists the members cp1, cp9"}},
		{name: "another cluster's marker", ev: InitEvidence{Files: facts.ClusterFiles{Present: initialised, InitMarker: otherMarker}, Complete: true},
			refused: []string{"init marker of another cluster (staging"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.ev.Host = "cp1"
			got, err := Init(id, tc.ev)
			if len(tc.refused) > 0 {
				r := refusalOf(t, err)
				if r.Host != "cp1" || got != 0 {
					t.Errorf("refusal for host %q, action %v", r.Host, got)
				}
				for _, w := range tc.refused {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal lacks %q:\n%v", w, err)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}
