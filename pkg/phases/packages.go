package phases

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pgpkey"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// heldPackages are the packages of install.KubePackages the installer holds (as the upstream install
// guide does): cri-tools and kubernetes-cni move only with them.
var heldPackages = []string{"kubeadm", "kubelet", "kubectl"}

// addRepository puts the Kubernetes package repository of the spec's minor on the host: its
// signing key (the spec's key file among files.Repository, else the repository's own key, fetched
// by the host once and installed only with the pinned fingerprint), then the sources list or .repo
// file naming it. Unchanged files are not rewritten.
func addRepository(ctx context.Context, h *Host, spec *v1alpha1.ClusterSpec, files manifests.HostFiles) error {
	if k := files.RepositoryKey; k != nil {
		if err := addRepositoryKey(ctx, h, spec, k); err != nil {
			return err
		}
	}
	_, err := h.UploadAll(ctx, files.Repository)
	return err
}

// addRepositoryKey installs the repository's own signing key once its fingerprint is the pinned one
// (install.packageRepositoryKeyFingerprint): the key a repository serves is not trusted because the
// repository serves it. A key already installed must have that fingerprint too.
func addRepositoryKey(ctx context.Context, h *Host, spec *v1alpha1.ClusterSpec, k *manifests.RemoteFile) error {
	want := spec.Install.PackageRepositoryKeyFingerprint
	installed, err := h.ReadFile(ctx, k.Path)
	switch {
	case err == nil:
		fp, err := pgpkey.Fingerprint(installed)
		if err != nil || fp != want {
			return fmt.Errorf("%s holds another key (%s) than the pinned %s (install.packageRepositoryKeyFingerprint); nothing was changed. Remove that file if it is not a key you trust, or pin its fingerprint, and run again",
				k.Path, describeKey(fp, err), want)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", k.Path, err)
	}
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.FetchKey.Args(k.URL, install.Proxy(spec)), Idempotent: true})
	if err != nil {
		return fmt.Errorf("fetch repository key %s: %w", k.URL, err)
	}
	fp, err := pgpkey.Fingerprint(res.Stdout)
	if err != nil || fp != want {
		return fmt.Errorf("the repository key at %s is %s, not the pinned %s (install.packageRepositoryKeyFingerprint); nothing was installed. If the repository is signed by another key, pin its fingerprint or give the key as install.packageRepositoryKeyFile",
			k.URL, describeKey(fp, err), want)
	}
	_, err = h.Upload(ctx, manifests.File{Path: k.Path, Mode: 0o644, Content: res.Stdout})
	return err
}

func describeKey(fp string, err error) string {
	if err != nil {
		return "unreadable: " + err.Error()
	}
	return "key " + fp
}

// packagePlan is what the package phase must do on one host, decided from facts alone.
type packagePlan struct {
	Install []string // packages not at the wanted version, in install.KubePackages order
	Unhold  []string // held packages that must move (unhold, install, hold again)
	Hold    []string // packages to hold afterwards
}

// planPackages compares the wanted versions with the installed ones (facts from dpkg-query or rpm).
// same says whether an installed version is the wanted one (apt: equal; RPM: same upstream version,
// its release differs from the deb revision). Only the packages in want are considered, so a caller
// may ask for kubeadm alone.
func planPackages(want, have map[string]string, held []string, same func(have, want string) bool) packagePlan {
	var p packagePlan
	for _, n := range install.KubePackages {
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

// installPackages adds the Kubernetes package repository (files.Repository) and installs the
// packages of want that are not at their version (apt: held, so an unattended upgrade cannot move
// the cluster). want maps package names to versions ("1.34.10-1.1"): every package of the release
// (install.KubePackageVersions), or kubeadm alone for the upgrade's first step.
func installPackages(ctx context.Context, h *Host, spec *v1alpha1.ClusterSpec, files manifests.HostFiles, want map[string]string) error {
	if err := addRepository(ctx, h, spec, files); err != nil {
		return err
	}
	pm := h.Facts.OS.PackageManager
	if err := pm.Check(); err != nil {
		return err
	}
	if pm.Deb() {
		return installAptPackages(ctx, h, spec, want)
	}
	return installRPMPackages(ctx, h, spec, pm, want)
}

// installAptPackages does what the upstream install guide does by hand after adding the
// repository, skipping what is done: one apt-get update, the exact versions (held ones unheld
// first), apt-mark hold. A host already at the versions with the holds in place gets no apt command
// at all.
func installAptPackages(ctx context.Context, h *Host, spec *v1alpha1.ClusterSpec, want map[string]string) error {
	missing, err := missingPrerequisites(ctx, h)
	if err != nil {
		return err
	}
	now := h.now()
	plan := planPackages(want, now.Packages, now.HeldPackages, sameDeb)
	if len(plan.Install) > 0 || len(missing) > 0 {
		// A new or changed repository, or versions not seen yet: the index must be current first.
		if _, err := h.Exec(ctx, ssh.Cmd{Args: install.AptGet(spec, "update"), Idempotent: true}); err != nil {
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
		if _, err := h.Exec(ctx, ssh.Cmd{Args: install.AptGet(spec, args...), Idempotent: true}); err != nil {
			return aptError("install Kubernetes packages", err)
		}
	}
	if len(plan.Hold) > 0 {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: append([]string{"apt-mark", "hold"}, plan.Hold...)}); err != nil {
			return fmt.Errorf("hold %s: %w", strings.Join(plan.Hold, ", "), err)
		}
	}
	recordPackages(h, want, plan)
	return nil
}

// recordPackages notes an install for later steps of the same run (the upgrade's kubelet step after
// its kubeadm step).
func recordPackages(h *Host, want map[string]string, plan packagePlan) {
	h.record(func(c *hostChanges) {
		if len(plan.Install) > 0 && c.packages == nil {
			c.packages = map[string]string{}
		}
		for _, n := range plan.Install {
			c.packages[n] = want[n]
		}
		c.held = append(c.held, plan.Hold...)
	})
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
func missingPrerequisites(ctx context.Context, h *Host) ([]string, error) {
	state, err := installed(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("check prerequisites: %w", err)
	}
	return strings.Fields(state["missing"]), nil
}

// installRPMPackages is the same logic for dnf and yum after adding the repository, whose exclude=
// keeps a routine `dnf upgrade` from moving the cluster (the installer lifts it per call): only the
// packages whose upstream version differs are installed. Not lab-proven (the lab has no RPM hosts).
func installRPMPackages(ctx context.Context, h *Host, spec *v1alpha1.ClusterSpec, pm facts.PackageManager, want map[string]string) error {
	missing, err := missingPrerequisites(ctx, h)
	if err != nil {
		return err
	}
	plan := planPackages(want, h.now().Packages, nil, sameRPM)
	if len(plan.Install) == 0 && len(missing) == 0 {
		return nil
	}
	args := []string{"--disableexcludes=kubernetes", "install"}
	for _, n := range plan.Install {
		// RPM releases differ from the deb revision: pin the upstream version.
		args = append(args, n+"-"+upstreamVersion(want[n]))
	}
	args = append(args, missing...)
	if _, err := h.Exec(ctx, ssh.Cmd{Args: install.DNF(spec, pm, args...), Idempotent: true}); err != nil {
		return fmt.Errorf("install Kubernetes packages: %w", err)
	}
	// RPM hosts hold through exclude=, not apt-mark: record installs only.
	recordPackages(h, want, packagePlan{Install: plan.Install})
	return nil
}
