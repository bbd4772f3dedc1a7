// Package guard decides, from what was read on the hosts and nothing else, whether a destructive
// step may run: replacing a cluster's CAs and keys, resetting a half-initialised control plane,
// resetting a control plane whose etcd member must be removed. Every such step in the installer
// asks one function here (docs/safety.md lists them). The rule: a destructive step runs only on
// positive proof that it undoes the installer's own unfinished work for this cluster, or because
// the user asked for it by name. A check that failed is never proof: the answer is a Refusal, and
// the caller changes nothing.
package guard

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/pki"
)

// RefusalPhrase ends every refusal, so users and scripts recognise one.
const RefusalPhrase = "refusing to go on; nothing was changed"

// Refusal is the installer stopping before a step it cannot prove safe (exit code 6).
type Refusal struct {
	// Host the refusal is about ("" when it is about the cluster).
	Host string
	// Reason says what was found, Fix what the user can do about it.
	Reason string
	Fix    string
}

func (e *Refusal) Error() string {
	msg := e.Reason + "; " + RefusalPhrase
	if e.Host != "" {
		msg = "host " + e.Host + " " + msg
	}
	if e.Fix != "" {
		msg += ". " + e.Fix
	}
	return msg
}

// ExitCode makes a Refusal exit with code 6.
func (e *Refusal) ExitCode() int { return exitcode.Refused }

// HostFiles is one host's name and what it holds of a kubeadm cluster.
type HostFiles struct {
	Name  string
	Files facts.ClusterFiles
}

// RecoverFix is the way out when the state directory does not match the cluster.
const RecoverFix = "Use the state directory that created this cluster (--state-dir or INSTALLER_STATE_DIR), or rebuild one from the cluster into an empty directory with installer state recover (docs/state.md)"

// ClusterPKI checks every host's cluster PKI files against the state directory's PKI (local, nil
// when the state directory has none) before anything is uploaded: a file present on a host must be
// byte for byte the state directory's, and a host that holds any trace of a cluster must hold its
// CA so that it can be compared at all. With no local PKI, no host may hold a cluster: a new PKI
// would replace the running cluster's CAs. It returns one Refusal per host, joined.
func ClusterPKI(stateDir string, local *pki.Bundle, hosts []HostFiles) error {
	var errs []error
	var want map[string]string
	localCA := ""
	if local != nil {
		want = local.FileSums()
		localCA = pki.Fingerprint(local.Cluster.Cert)
	}
	for _, h := range hosts {
		f := h.Files
		if !f.Holds() {
			continue
		}
		hostCA, caErr := hostCAFingerprint(f)
		switch {
		case caErr != nil:
			errs = append(errs, &Refusal{Host: h.Name, Fix: "If these are leftovers of an old cluster, reset the host first (installer reset --host " + h.Name + ", or kubeadm reset)",
				Reason: fmt.Sprintf("holds files of a kubeadm cluster (%s) but %s (%v), so it cannot be told which cluster they belong to", strings.Join(holdings(f), ", "), constants.PKIDir+"/ca.crt", caErr)})
		case local == nil:
			errs = append(errs, &Refusal{Host: h.Name, Fix: RecoverFix,
				Reason: fmt.Sprintf("is part of an existing cluster (cluster CA %s), but the state directory %s has no PKI", hostCA, stateDir)})
		case hostCA != localCA:
			errs = append(errs, &Refusal{Host: h.Name, Fix: RecoverFix,
				Reason: fmt.Sprintf("belongs to another cluster: its cluster CA is %s, the state directory %s holds %s", hostCA, stateDir, localCA)})
		default:
			var differ []string
			for _, name := range slices.Sorted(maps.Keys(f.PKISums)) {
				if w, ok := want[name]; ok && w != f.PKISums[name] {
					differ = append(differ, fmt.Sprintf("%s/%s (sha256 %s, the state directory's %s)", constants.PKIDir, name, short(f.PKISums[name]), short(w)))
				}
			}
			if len(differ) > 0 {
				errs = append(errs, &Refusal{Host: h.Name, Fix: "Find out who changed them; the installer never replaces a cluster's keys",
					Reason: fmt.Sprintf("has the state directory's cluster CA but other keys or certificates: %s", strings.Join(differ, "; "))})
			}
		}
	}
	return errors.Join(errs...)
}

// hostCAFingerprint is the fingerprint of the host's cluster CA, or why there is none.
func hostCAFingerprint(f facts.ClusterFiles) (string, error) {
	if f.CACert == nil {
		return "", fmt.Errorf("it is missing")
	}
	fp, err := pki.CertFingerprint(f.CACert)
	if err != nil {
		return "", fmt.Errorf("it does not parse: %w", err)
	}
	return fp, nil
}

func holdings(f facts.ClusterFiles) []string {
	out := slices.Clone(f.Present)
	for _, name := range slices.Sorted(maps.Keys(f.PKISums)) {
		out = append(out, constants.PKIDir+"/"+name)
	}
	return out
}

// InitAction is what the init phase does on the first control plane.
type InitAction int

const (
	// InitRun: the host holds no control plane; run kubeadm init.
	InitRun InitAction = iota + 1
	// InitDone: kubeadm init completed; nothing to do (but remove a marker left behind).
	InitDone
	// InitRetry: the installer's own kubeadm init did not finish; reset the host, then init.
	InitRetry
)

// Identity names the cluster a run acts for.
type Identity struct {
	Cluster       string
	CAFingerprint string
}

// InitEvidence is what was read on the first control plane (and the cluster's other hosts) before
// the init phase decides.
type InitEvidence struct {
	Host  string
	Files facts.ClusterFiles
	// Complete: kubeadm's configuration was read from the cluster through the host's admin.conf.
	Complete bool
	// Check is what the completeness check said when it failed (its error and output).
	Check string
	// Nodes are the other hosts of the spec that are nodes already (they have a kubelet.conf).
	Nodes []string
	// EtcdMembers are the names of etcd's members on the host; nil when etcd did not answer.
	EtcdMembers []string
}

// Init decides what the init phase may do. Resetting the host is allowed only when the installer's
// own marker for this cluster says it started kubeadm init there and never saw it finish, and
// nothing shows the cluster in use: no other host is a node, and etcd, when it answers, has this
// host as its only member.
func Init(id Identity, ev InitEvidence) (InitAction, error) {
	m := ev.Files.InitMarker
	if m != nil && (m.Cluster != id.Cluster || m.CAFingerprint != id.CAFingerprint) {
		return 0, &Refusal{Host: ev.Host, Fix: "Remove " + constants.InitMarker + " only if you know the host is not in use",
			Reason: fmt.Sprintf("holds the installer's init marker of another cluster (%s, CA %s; this one is %s, CA %s)", m.Cluster, m.CAFingerprint, id.Cluster, id.CAFingerprint)}
	}
	if ev.Complete {
		return InitDone, nil
	}
	if m == nil {
		if len(ev.Files.Present) == 0 {
			return InitRun, nil
		}
		if slices.Contains(ev.Files.Present, constants.AdminConf) {
			return 0, &Refusal{Host: ev.Host, Fix: "Look at the kubelet (journalctl -u kubelet), the static pods (crictl ps -a; /var/log/pods/kube-system_kube-apiserver-*, kube-system_etcd-*) and the manifests in " + constants.StaticPodDir + ", bring the API server back, and run again",
				Reason: fmt.Sprintf("initialised a cluster on an earlier run, but its API server does not answer (%s); the installer never re-initialises a control plane it cannot prove is its own unfinished work", ev.Check)}
		}
		return 0, &Refusal{Host: ev.Host, Fix: "If they are leftovers, reset the host first (installer reset --host " + ev.Host + ", or kubeadm reset)",
			Reason: fmt.Sprintf("holds parts of a control plane the installer did not start here (no init marker): %s", strings.Join(ev.Files.Present, ", "))}
	}
	if len(ev.Nodes) > 0 {
		return 0, &Refusal{Host: ev.Host, Fix: "Bring the API server back and run again",
			Reason: fmt.Sprintf("has an unfinished kubeadm init, but %s are nodes already: the cluster is in use (its API server does not answer: %s)", strings.Join(ev.Nodes, ", "), ev.Check)}
	}
	if ev.EtcdMembers != nil && !slices.Equal(ev.EtcdMembers, []string{ev.Host}) {
		return 0, &Refusal{Host: ev.Host, Fix: "Bring the API server back and run again",
			Reason: fmt.Sprintf("has an unfinished kubeadm init, but etcd lists the members %s: the cluster is in use", strings.Join(ev.EtcdMembers, ", "))}
	}
	return InitRetry, nil
}

func short(sum string) string {
	if len(sum) > 16 {
		return sum[:16]
	}
	return sum
}
