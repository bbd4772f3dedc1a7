package phases

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// KubernetesBinaries installs kubeadm, kubelet, kubectl, crictl and the CNI plugins at the spec's
// versions (binary mirror, package repository or local bundle), the kubelet unit for binary
// installs, and enables the kubelet. Anything already at the wanted version is left alone.
type KubernetesBinaries struct{}

func (KubernetesBinaries) Name() string { return "kubernetes" }

func (KubernetesBinaries) Run(ctx context.Context, r *Run) error {
	s := &r.Cluster.Spec
	return ForEachHost(ctx, r.Targets(), r.Concurrency, func(ctx context.Context, h *Host) error {
		files, err := hostFiles(h, s, r.Inputs, h.Facts.AdminConfPresent)
		if err != nil {
			return err
		}
		if _, err := installKubernetes(ctx, h, s, r.Inputs, files, false); err != nil {
			return err
		}
		// The kubelet package creates it; workers' kubelets log an error every few seconds without.
		if _, err := h.Query(ctx, ssh.Cmd{Args: []string{"test", "-d", constants.StaticPodDir}}); err != nil {
			if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"mkdir", "-p", "-m", "0755", constants.StaticPodDir}}); err != nil {
				return err
			}
		}
		// kubeadm starts the kubelet; until then it restarts every 10 s by design, so only enable it.
		// is-enabled exits non-zero for a disabled unit: that is an answer; a command that did not
		// run (a lost connection) is an error.
		res, err := h.Query(ctx, ssh.Cmd{Args: []string{"systemctl", "is-enabled", "kubelet"}})
		var answered *ssh.CommandError
		if err != nil && !errors.As(err, &answered) {
			return fmt.Errorf("read whether the kubelet is enabled: %w", err)
		}
		if strings.TrimSpace(string(res.Stdout)) != "enabled" {
			if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "enable", "kubelet"}}); err != nil {
				return fmt.Errorf("enable kubelet: %w", err)
			}
		}
		return nil
	})
}

// installKubernetes is the step create and upgrade share: kubeadm, the kubelet, kubectl, crictl and
// the CNI plugins at the spec's versions (packages from the repository of files.Repository, else
// binaries from the mirrors or the bundle), then the kubelet's files (files.Kubelet). systemd
// re-reads its units when one of those files changed, or when reload says the kubelet itself moved.
// It reports whether a kubelet file changed.
func installKubernetes(ctx context.Context, h *Host, spec *v1alpha1.ClusterSpec, in manifests.Inputs, files manifests.HostFiles, reload bool) (bool, error) {
	switch spec.Install.Source {
	case v1alpha1.InstallPackage:
		want, err := install.KubePackageVersions(spec)
		if err != nil {
			return false, err
		}
		if err := installPackages(ctx, h, spec, files, want); err != nil {
			return false, err
		}
	default:
		rel, err := install.Release(spec)
		if err != nil {
			return false, err
		}
		d, err := newDownloader(spec, in)
		if err != nil {
			return false, err
		}
		if err := installBinaries(ctx, h, d, rel.CRITools, rel.CNIPlugins); err != nil {
			return false, err
		}
	}
	changed, err := h.UploadAll(ctx, files.Kubelet)
	if err != nil {
		return false, err
	}
	if changed > 0 || reload {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"systemctl", "daemon-reload"}}); err != nil {
			return false, err
		}
	}
	return changed > 0, nil
}

// installed reads what installed.sh reports beside the facts: "crictl" (its version), "cni" (the
// CNI plugins' version marker) and "missing" (the node prerequisites that are not installed,
// space-separated).
func installed(ctx context.Context, h *Host) (map[string]string, error) {
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.Installed.Args(append([]string{install.CNIVersionAt}, install.PrerequisiteArgs()...)...)})
	if err != nil {
		return nil, err
	}
	state := map[string]string{}
	for _, l := range strings.Split(string(res.Stdout), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			state[k] = strings.TrimSpace(v)
		}
	}
	return state, nil
}

// installBinaries downloads (or, for a bundle, uploads) what is not at the wanted version, and the
// node prerequisites the distribution's packages would otherwise have brought.
func installBinaries(ctx context.Context, h *Host, d downloader, crictlVersion, cniVersion string) error {
	s := d.spec
	pm, arch := h.Facts.OS.PackageManager, h.Facts.Arch
	state, err := installed(ctx, h)
	if err != nil {
		return fmt.Errorf("read installed versions: %w", err)
	}
	if missing := strings.Fields(state["missing"]); len(missing) > 0 {
		refresh, err := install.PackageRefresh(s, pm)
		if err != nil {
			return err
		}
		if _, err := h.Exec(ctx, ssh.Cmd{Args: refresh, Idempotent: true}); err != nil {
			return fmt.Errorf("refresh package index: %w", err)
		}
		argv, err := install.PackageInstall(s, pm, missing...)
		if err != nil {
			return err
		}
		if _, err := h.Exec(ctx, ssh.Cmd{Args: argv, Idempotent: true}); err != nil {
			return fmt.Errorf("install %s: %w", strings.Join(missing, ", "), err)
		}
	}
	now := h.now()
	installed := map[string]string{"kubeadm": now.KubeadmVersion, "kubelet": now.KubeletVersion, "kubectl": now.KubectlVersion}
	for _, t := range install.KubeTools(s, arch) {
		if installed[t.Name] == t.Version {
			continue
		}
		if err := d.binary(ctx, h, t.URL, t.Path); err != nil {
			return fmt.Errorf("install %s %s: %w", t.Name, t.Version, err)
		}
	}
	if state["crictl"] != crictlVersion {
		url := install.CrictlURL(s.Install.ArtifactMirror, crictlVersion, arch)
		if err := d.archive(ctx, h, url, filepath.Dir(install.CrictlPath), crictlVersion, ""); err != nil {
			return fmt.Errorf("install crictl %s: %w", crictlVersion, err)
		}
	}
	if state["cni"] != cniVersion {
		url := install.CNIPluginsURL(s.Install.ArtifactMirror, cniVersion, arch)
		if err := d.archive(ctx, h, url, install.CNIBinDir, cniVersion, install.CNIVersionAt); err != nil {
			return fmt.Errorf("install CNI plugins %s: %w", cniVersion, err)
		}
	}
	return nil
}
