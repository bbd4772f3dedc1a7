package phases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

const (
	aptKeyring = "/etc/apt/keyrings/kubernetes-apt-keyring.asc"
	// aptKeyringBinary takes a binary key file: apt reads .asc keyrings as armored text only.
	aptKeyringBinary = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
	aptSourcesFile   = "/etc/apt/sources.list.d/kubernetes.list"
	rpmRepoFile      = "/etc/yum.repos.d/kubernetes.repo"
	rpmKeyFile       = "/etc/pki/rpm-gpg/kubernetes.asc"
)

// kubePackages are the packages of the Kubernetes repository the installer pins, in install order;
// heldPackages those it holds (as the upstream install guide does): cri-tools and kubernetes-cni move
// only with them.
var (
	kubePackages = []string{"kubeadm", "kubelet", "kubectl", "cri-tools", "kubernetes-cni"}
	heldPackages = []string{"kubeadm", "kubelet", "kubectl"}
)

// ensureRepositoryKey puts the repository's signing key at path: the spec's local key file
// (uploaded only when it differs), else the key the repository publishes beside its packages (fetched
// once). It reports whether the host's key changed.
func (h *Host) ensureRepositoryKey(ctx context.Context, path, keyURL string) (bool, error) {
	s := &h.in.Cluster.Spec
	if f := s.Install.PackageRepositoryKeyFile; f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return false, fmt.Errorf("repository key: %w", err)
		}
		return h.Upload(ctx, manifests.File{Path: path, Mode: 0o644, Content: data})
	}
	if _, err := h.Query(ctx, ssh.Cmd{Args: []string{"test", "-s", path}}); err == nil {
		return false, nil
	}
	if _, err := h.Exec(ctx, ssh.Cmd{Args: scripts.FetchKey.Args(keyURL, path, install.Proxy(s)), Idempotent: true}); err != nil {
		return false, fmt.Errorf("fetch repository key %s: %w", keyURL, err)
	}
	return true, nil
}

// aptKeyringPath is where the key goes: .asc for armored keys (and the repository's own Release.key),
// .gpg for a binary key file.
func aptKeyringPath(keyFile string) (string, error) {
	if keyFile == "" {
		return aptKeyring, nil
	}
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return "", fmt.Errorf("repository key: %w", err)
	}
	if bytes.Contains(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
		return aptKeyring, nil
	}
	return aptKeyringBinary, nil
}

// packagePlan is what the package phase must do on one host, decided from facts alone.
type packagePlan struct {
	Install []string // packages not at the wanted version, in kubePackages order
	Unhold  []string // held packages that must move (unhold, install, hold again)
	Hold    []string // packages to hold afterwards
}

// planPackages compares the wanted versions with the installed ones (facts from dpkg-query or rpm).
// same says whether an installed version is the wanted one (apt: equal; RPM: same upstream version,
// its release differs from the deb revision). Only the packages in want are considered, so a caller
// may ask for kubeadm alone.
func planPackages(want, have map[string]string, held []string, same func(have, want string) bool) packagePlan {
	var p packagePlan
	for _, n := range kubePackages {
		v, ok := want[n]
		if !ok {
			continue
		}
		isHeld := slices.Contains(held, n)
		if !same(have[n], v) {
			p.Install = append(p.Install, n)
			if isHeld {
				p.Unhold = append(p.Unhold, n)
			}
		}
		if slices.Contains(heldPackages, n) && (!isHeld || slices.Contains(p.Unhold, n)) {
			p.Hold = append(p.Hold, n)
		}
	}
	return p
}

func sameDeb(have, want string) bool { return have != "" && have == want }

// sameRPM compares upstream versions: "1.35.8-150500.1.1" is "1.35.8-1.1" of the deb table.
func sameRPM(have, want string) bool {
	return have != "" && upstreamVersion(have) == upstreamVersion(want)
}

func upstreamVersion(v string) string {
	if i := strings.LastIndexByte(v, '-'); i > 0 {
		return v[:i]
	}
	return v
}

// installPackages adds the Kubernetes package repository of the spec's minor and installs what is
// not at the pinned version (apt: held, so an unattended upgrade cannot move the cluster).
func (h *Host) installPackages(ctx context.Context, pm facts.PackageManager) error {
	want, err := install.KubePackageVersions(&h.in.Cluster.Spec)
	if err != nil {
		return err
	}
	switch pm {
	case "apt":
		return h.installAptPackages(ctx, want)
	case "dnf", "yum":
		return h.installRPMPackages(ctx, pm, want)
	}
	return fmt.Errorf("no supported package manager (found %q)", pm)
}

// installAptPackages does what the upstream install guide does by hand, skipping what is done: the
// key in /etc/apt/keyrings, a sources file naming it with signed-by, one apt-get update, the exact
// versions (held ones unheld first), apt-mark hold. A host already at the versions with the holds
// in place gets no apt command at all. want maps package names to versions ("1.34.10-1.1").
func (h *Host) installAptPackages(ctx context.Context, want map[string]string) error {
	s := &h.in.Cluster.Spec
	rel, err := install.Release(s)
	if err != nil {
		return err
	}
	repo, err := install.RepositoryURL(s, "apt")
	if err != nil {
		return err
	}
	keyring, err := aptKeyringPath(s.Install.PackageRepositoryKeyFile)
	if err != nil {
		return err
	}
	if _, err := h.ensureRepositoryKey(ctx, keyring, repo+"Release.key"); err != nil {
		return err
	}
	sources := fmt.Sprintf("# Managed by installer: the Kubernetes %s package repository.\ndeb [signed-by=%s] %s /\n", rel.Minor(), keyring, repo)
	if _, err := h.Upload(ctx, manifests.File{Path: aptSourcesFile, Mode: 0o644, Content: []byte(sources)}); err != nil {
		return err
	}
	missing, err := h.missingPrerequisites(ctx)
	if err != nil {
		return err
	}
	plan := planPackages(want, h.Facts.Packages, h.Facts.HeldPackages, sameDeb)
	if len(plan.Install) > 0 || len(missing) > 0 {
		// A new or changed repository, or versions not seen yet: the index must be current first.
		if _, err := h.Exec(ctx, ssh.Cmd{Args: install.AptGet(s, "update"), Idempotent: true}); err != nil {
			return aptError("apt-get update", err)
		}
	}
	if len(plan.Unhold) > 0 {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: append([]string{"apt-mark", "unhold"}, plan.Unhold...)}); err != nil {
			return fmt.Errorf("unhold %s: %w", strings.Join(plan.Unhold, ", "), err)
		}
	}
	if len(plan.Install) > 0 || len(missing) > 0 {
		args := []string{"install", "--no-install-recommends"}
		for _, n := range plan.Install {
			args = append(args, n+"="+want[n])
		}
		args = append(args, missing...)
		if _, err := h.Exec(ctx, ssh.Cmd{Args: install.AptGet(s, args...), Idempotent: true}); err != nil {
			return aptError("install Kubernetes packages", err)
		}
	}
	if len(plan.Hold) > 0 {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: append([]string{"apt-mark", "hold"}, plan.Hold...)}); err != nil {
			return fmt.Errorf("hold %s: %w", strings.Join(plan.Hold, ", "), err)
		}
	}
	h.recordPackages(want, plan)
	return nil
}

// recordPackages updates the facts after an install, so later steps of the same run (the upgrade's
// kubelet step after its kubeadm step) see the host as it is now.
func (h *Host) recordPackages(want map[string]string, plan packagePlan) {
	if len(plan.Install) > 0 && h.Facts.Packages == nil {
		h.Facts.Packages = map[string]string{}
	}
	for _, n := range plan.Install {
		h.Facts.Packages[n] = want[n]
	}
	for _, n := range plan.Hold {
		if !slices.Contains(h.Facts.HeldPackages, n) {
			h.Facts.HeldPackages = append(h.Facts.HeldPackages, n)
		}
	}
}

// aptError says plainly when apt gave up waiting for another process's lock (the installer waited
// install.AptLockTimeout and killed nothing); other failures pass through wrapped.
func aptError(what string, err error) error {
	var ce *ssh.CommandError
	if errors.As(err, &ce) {
		holder := ""
		if ce.ExitCode == install.AptLockHeldExit {
			holder = strings.TrimPrefix(lastLine(ce.Stderr), "apt lock held by ")
		} else if i := strings.Index(ce.Stderr, "Could not get lock"); i >= 0 {
			holder, _, _ = strings.Cut(ce.Stderr[i:], "\n") // "Could not get lock X. It is held by process N (cmd)"
		}
		if holder != "" {
			return fmt.Errorf("%s: apt's lock is held by %s and was not released within %s; the installer never kills it: let it finish (or stop it yourself) and run again: %w",
				what, holder, install.AptLockTimeout, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// missingPrerequisites lists the node prerequisites (install.NodePrerequisites: conntrack, socat,
// ethtool, iptables...) that are missing: the upstream packages no longer depend on them.
func (h *Host) missingPrerequisites(ctx context.Context) ([]string, error) {
	state, err := h.installed(ctx)
	if err != nil {
		return nil, fmt.Errorf("check prerequisites: %w", err)
	}
	return strings.Fields(state["missing"]), nil
}

// installRPMPackages is the same logic for dnf and yum: a repository file whose exclude= keeps a
// routine `dnf upgrade` from moving the cluster (the installer lifts it per call), and only the
// packages whose upstream version differs are installed. Not lab-proven (the lab has no RPM hosts).
func (h *Host) installRPMPackages(ctx context.Context, pm facts.PackageManager, want map[string]string) error {
	s := &h.in.Cluster.Spec
	rel, err := install.Release(s)
	if err != nil {
		return err
	}
	repo, err := install.RepositoryURL(s, "rpm")
	if err != nil {
		return err
	}
	if _, err := h.ensureRepositoryKey(ctx, rpmKeyFile, repo+"repodata/repomd.xml.key"); err != nil {
		return err
	}
	minor := rel.Minor()
	conf := fmt.Sprintf(`# Managed by installer: the Kubernetes %s package repository.
[kubernetes]
name=Kubernetes %s
baseurl=%s
enabled=1
gpgcheck=1
gpgkey=file://%s
exclude=%s
`, minor, minor, repo, rpmKeyFile, strings.Join(kubePackages, " "))
	if s.Install.PackageProxy != "" {
		conf += "proxy=" + s.Install.PackageProxy + "\n"
	}
	if _, err := h.Upload(ctx, manifests.File{Path: rpmRepoFile, Mode: 0o644, Content: []byte(conf)}); err != nil {
		return err
	}
	missing, err := h.missingPrerequisites(ctx)
	if err != nil {
		return err
	}
	plan := planPackages(want, h.Facts.Packages, nil, sameRPM)
	if len(plan.Install) == 0 && len(missing) == 0 {
		return nil
	}
	args := []string{"--disableexcludes=kubernetes", "install"}
	for _, n := range plan.Install {
		// RPM releases differ from the deb revision: pin the upstream version.
		args = append(args, n+"-"+upstreamVersion(want[n]))
	}
	args = append(args, missing...)
	if _, err := h.Exec(ctx, ssh.Cmd{Args: install.DNF(s, pm, args...), Idempotent: true}); err != nil {
		return fmt.Errorf("install Kubernetes packages: %w", err)
	}
	// RPM hosts hold through exclude=, not apt-mark: record installs only.
	h.recordPackages(want, packagePlan{Install: plan.Install})
	return nil
}
