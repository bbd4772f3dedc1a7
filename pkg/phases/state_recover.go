package phases

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/guard"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/state"
)

// SecretAdopter takes a secret recovered from the hosts into the state directory (state.Local).
type SecretAdopter interface {
	Adopt(name, value string) (bool, error)
}

// VRRPPasswordSecret is the state directory's name for keepalived's VRRP password.
const VRRPPasswordSecret = "vrrp-password"

// RecoverReport is what StateRecover found and did.
type RecoverReport struct {
	// Source is the control plane the PKI and the admin kubeconfig were read from.
	Source string
	// Agreeing are the other hosts whose copies of the PKI (a worker: the cluster CA) are the source's.
	Agreeing []string
	// Empty are reachable hosts that hold no cluster (not joined yet).
	Empty []string
	// Written are the state-directory paths written; Kept those already there and equal.
	Written, Kept []string
	// AdminKubeconfig is where the admin kubeconfig was copied (from Source).
	AdminKubeconfig string
}

// StateRecover rebuilds a lost state directory from the running cluster: the CAs and the
// service-account keys from the first reachable control plane that holds them, once every other
// reachable host is found to hold the same (a disagreement stops it with nothing written);
// keepalived's VRRP password from the control planes' keepalived.conf, which must agree; and the
// admin kubeconfig. A PKI or secret the state directory already holds is kept when equal and
// refused when not: nothing in it is ever replaced. The key of the pods' config hashes is derived
// from the CA key (pki.Bundle.DeriveKey), so it comes back with the PKI.
type StateRecover struct {
	Secrets SecretAdopter
	Report  *RecoverReport
}

func (StateRecover) Name() string { return "recover" }

func (p StateRecover) Run(ctx context.Context, r *Run) error {
	rep := p.Report
	var sources []*Host
	for _, h := range connected(r.All()) {
		switch {
		case !h.Facts.Cluster.Holds():
			rep.Empty = append(rep.Empty, h.Name())
		case h.Spec.Role == v1alpha1.RoleControlPlane && h.Facts.Cluster.CACert != nil:
			sources = append(sources, h)
		}
	}
	if len(sources) == 0 {
		return &guard.Refusal{Reason: "no reachable control plane holds a cluster, so there is nothing to recover the state directory from",
			Fix: "Check that the spec's control planes are the cluster's and reachable (installer plan shows what each host holds)"}
	}
	src := sources[0]
	rep.Source = src.Name()
	fetched, err := pki.Fetch(ctx, pki.ReaderFunc(src.ReadFile))
	if err != nil {
		return hostErr(src.Name(), err)
	}
	agreeing, err := hostsHoldingPKI(fetched, src, connected(r.All()))
	if err != nil {
		return err
	}
	rep.Agreeing = agreeing

	// Everything is checked before anything is written: a refusal leaves the directory as it was.
	savePKI := r.PKI == nil
	if !savePKI && !maps.Equal(r.PKI.FileSums(), fetched.FileSums()) {
		return &guard.Refusal{Reason: fmt.Sprintf("the state directory %s already holds a PKI, and it is not the cluster's (its CA %s, %s's %s)", r.StateDir,
			pki.Fingerprint(r.PKI.Cluster.Cert), src.Name(), pki.Fingerprint(fetched.Cluster.Cert)),
			Fix: "Recover into an empty state directory (--state-dir); the installer never replaces a PKI"}
	}
	newVRRP := false
	if r.Cluster.Spec.LoadBalancer.Type == v1alpha1.LoadBalancerKeepalivedHAProxy {
		if newVRRP, err = p.adoptVRRPPassword(ctx, r, sources); err != nil {
			return err
		}
	}

	if savePKI {
		if err := r.fx.SaveLocal(recoveredPKI{b: fetched, dir: r.StateDir.PKI()}); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		rep.Written = append(rep.Written, r.StateDir.PKI()+"/")
	} else {
		rep.Kept = append(rep.Kept, r.StateDir.PKI()+"/")
	}
	r.PKI = fetched
	if newVRRP {
		if err := r.fx.SaveLocal(r.Local); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		rep.Written = append(rep.Written, r.StateDir.Secret(VRRPPasswordSecret))
	}
	rep.AdminKubeconfig = r.StateDir.AdminConf()
	return saveAdminKubeconfig(ctx, r, src)
}

// hostsHoldingPKI checks that every host holding a cluster holds the fetched PKI: a control plane
// every file of it byte for byte, any other host the same cluster CA. It returns the hosts that
// agree (besides src), or one refusal naming every host that does not.
func hostsHoldingPKI(fetched *pki.Bundle, src *Host, hosts []*Host) ([]string, error) {
	want := fetched.FileSums()
	ca := pki.Fingerprint(fetched.Cluster.Cert)
	var agreeing, differ []string
	for _, h := range hosts {
		f := h.Facts.Cluster
		if !f.Holds() {
			continue
		}
		var bad []string
		if h.Spec.Role == v1alpha1.RoleControlPlane {
			for _, name := range pki.FileNames() {
				if got, ok := f.PKISums[name]; !ok {
					bad = append(bad, name+" missing")
				} else if got != want[name] {
					bad = append(bad, name+" differs")
				}
			}
		} else if fp, err := pki.CertFingerprint(f.CACert); err != nil || fp != ca {
			bad = append(bad, "ca.crt differs")
		}
		switch {
		case len(bad) > 0:
			differ = append(differ, fmt.Sprintf("%s (%s)", h.Name(), strings.Join(bad, ", ")))
		case h != src:
			agreeing = append(agreeing, h.Name())
		}
	}
	if len(differ) > 0 {
		return nil, &guard.Refusal{Reason: fmt.Sprintf("the hosts do not hold one PKI: against %s's %s, %s", src.Name(), constants.PKIDir, strings.Join(differ, "; ")),
			Fix: "Find out which host is the cluster's (a host left from another cluster can be reset with installer reset --host), then run state recover again"}
	}
	return agreeing, nil
}

// authPass is keepalived.conf's auth_pass line.
var authPass = regexp.MustCompile(`(?m)^\s*auth_pass\s+(\S+)\s*$`)

// adoptVRRPPassword reads keepalived's VRRP password from every control plane that holds the
// cluster, which must agree, and hands it to p.Secrets (written by the next SaveLocal when new).
// Control planes without keepalived.conf are passed over; when none has one the next create
// generates a password, as for a cluster that never had one.
func (p StateRecover) adoptVRRPPassword(ctx context.Context, r *Run, cps []*Host) (bool, error) {
	seen := map[string][]string{}
	for _, h := range cps {
		conf, err := h.ReadFile(ctx, manifests.KeepalivedConfigPath)
		if err != nil {
			r.Log.Warn("no keepalived configuration to recover the VRRP password from", "host", h.Name(), "error", err)
			continue
		}
		m := authPass.FindSubmatch(conf)
		if m == nil {
			return false, hostErr(h.Name(), fmt.Errorf("%s has no auth_pass line", manifests.KeepalivedConfigPath))
		}
		seen[string(m[1])] = append(seen[string(m[1])], h.Name())
	}
	if len(seen) == 0 {
		return false, nil
	}
	if len(seen) > 1 {
		var groups []string
		for _, hosts := range seen {
			groups = append(groups, strings.Join(hosts, ", "))
		}
		slices.Sort(groups)
		// Never the passwords themselves: which hosts share one is what the operator needs.
		return false, &guard.Refusal{Reason: fmt.Sprintf("the control planes' keepalived.conf hold %d different VRRP passwords (hosts sharing one: %s)", len(seen), strings.Join(groups, "; ")),
			Fix: "Make keepalived.conf agree on the control planes, then run state recover again"}
	}
	var password string
	for pw := range seen {
		password = pw
	}
	isNew, err := p.Secrets.Adopt(VRRPPasswordSecret, password)
	if errors.Is(err, state.ErrSecretDiffers) {
		return false, &guard.Refusal{Reason: fmt.Sprintf("the VRRP password in %v (keepalived.conf on %s)", err, strings.Join(seen[password], ", ")),
			Fix: "Find out which is right; to take the hosts' value, move the state directory's file away and run state recover again"}
	}
	if err != nil {
		return false, err
	}
	if !isNew {
		p.Report.Kept = append(p.Report.Kept, r.StateDir.Secret(VRRPPasswordSecret))
	}
	return isNew, nil
}

// recoveredPKI saves a PKI read from a control plane into the state directory as a whole.
type recoveredPKI struct {
	b   *pki.Bundle
	dir string
}

func (p recoveredPKI) Pending() []string { return []string{p.dir + "/"} }
func (p recoveredPKI) Save() error       { return p.b.Save(p.dir) }
