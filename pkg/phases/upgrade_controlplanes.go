package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/ssh"
)

// UpgradeControlPlanes moves the control planes' static pods with kubeadm: `upgrade plan` and
// `upgrade apply` on the first, then `upgrade node` on each other one at a time (in 1.35 the last
// one upgrades CoreDNS and kube-proxy). Each gets the new kubeadm first, and is out of the API's
// load balancer while kubeadm restarts its etcd and apiserver (apiLB).
type UpgradeControlPlanes struct {
	st *upgradeState
	// Timeout bounds each wait on a control plane (the VIP moving, its apiserver and etcd healthy).
	Timeout time.Duration
}

func (UpgradeControlPlanes) Name() string { return "upgrade/control-planes" }

func (u UpgradeControlPlanes) ShouldRun(*Run) (bool, string) {
	if why := u.st.doneReason(); why != "" {
		return false, why
	}
	return true, ""
}

func (u UpgradeControlPlanes) Run(ctx context.Context, r *Run) error {
	p := u.st
	if !p.checked {
		return errNotChecked
	}
	lb := newAPILB(r, "upgrade", u.Timeout)
	if lb != nil {
		if err := lb.finishLeftovers(ctx); err != nil {
			return err
		}
	}
	for i, h := range r.TargetsWithRole(v1alpha1.RoleControlPlane) {
		if p.controlPlaneDone(r, h) {
			continue
		}
		start := time.Now()
		if err := prepareKubeadm(ctx, h, &r.Cluster.Spec, r.Inputs); err != nil {
			return hostErr(h.Name(), err)
		}
		upgrade := []string{"kubeadm", "upgrade", "node", "--config", kubeadm.UpgradeConfigPath}
		if i == 0 {
			plan := []string{"kubeadm", "upgrade", "plan", "--config", kubeadm.UpgradeConfigPath}
			if _, err := h.Exec(ctx, ssh.Cmd{Args: plan}); err != nil {
				return hostErr(h.Name(), fmt.Errorf("kubeadm upgrade plan: %w", err))
			}
			upgrade = []string{"kubeadm", "upgrade", "apply", "--config", kubeadm.UpgradeConfigPath, "--yes"}
		}
		// kubeadm restarts etcd and the apiserver, not haproxy or keepalived: the VIP may stay.
		err := lb.outOfService(ctx, h, strings.Join(upgrade[:3], " "), false, func(ctx context.Context) error {
			kstart := time.Now()
			if _, err := h.Exec(ctx, ssh.Cmd{Args: upgrade, Stdout: newKubeadmProgress(r.Log, h.Name())}); err != nil {
				return hostErr(h.Name(), fmt.Errorf("%s: %w", strings.Join(upgrade[:3], " "), err))
			}
			r.fx.Done(strings.Join(upgrade[:3], " "), kstart, "host", h.Name())
			return nil
		})
		if err != nil {
			return err
		}
		p.Nodes[h.Name()].ControlPlane = p.Target
		if i == 0 {
			p.ClusterVersion = p.Target
		}
		// The last `upgrade apply/node` applied the add-ons; read what it left.
		err = r.fx.Observe(ctx, "kube-proxy's version", func(ctx context.Context) error {
			c, err := r.client(ctx)
			if err != nil {
				return err
			}
			// The apiserver kubeadm just replaced may still be settling: a short poll, not a failure.
			return kubeapi.Poll(ctx, 2*time.Second, 30*time.Second, "kube-proxy's version after upgrading "+h.Name(), func(ctx context.Context) (bool, string, error) {
				v, err := c.DaemonSetImageTag(ctx, "kube-system", "kube-proxy")
				if err != nil {
					return false, err.Error(), nil
				}
				p.AddonVersion = v
				return true, "", nil
			})
		})
		if err != nil {
			return err
		}
		r.fx.Done("upgrade of the control plane", start, "host", h.Name(), "version", p.Target)
	}
	return nil
}

// prepareKubeadm puts the UpgradeConfiguration and the target's kubeadm on the host.
func prepareKubeadm(ctx context.Context, h *Host, s *v1alpha1.ClusterSpec, inputs manifests.Inputs) error {
	f, err := kubeadm.UpgradeFile(s, s.KubernetesVersion)
	if err != nil {
		return err
	}
	if _, err := h.Upload(ctx, f); err != nil {
		return err
	}
	if h.now().KubeadmVersion == s.KubernetesVersion {
		return nil
	}
	if err := installKubeadm(ctx, h, s, inputs); err != nil {
		return fmt.Errorf("install kubeadm %s: %w", s.KubernetesVersion, err)
	}
	h.record(func(c *hostChanges) { c.kubeadm = s.KubernetesVersion })
	return nil
}

// installKubeadm installs only the target's kubeadm: the kubelet must wait until `kubeadm upgrade`
// has rewritten its flags (a 1.35 kubelet refuses the flags 1.34's kubeadm wrote).
func installKubeadm(ctx context.Context, h *Host, s *v1alpha1.ClusterSpec, inputs manifests.Inputs) error {
	if s.Install.Source == v1alpha1.InstallPackage {
		return installKubeadmPackage(ctx, h, s, inputs)
	}
	d, err := newDownloader(s, inputs)
	if err != nil {
		return err
	}
	for _, t := range install.KubeTools(s, h.Facts.Arch) {
		if t.Name == "kubeadm" {
			return d.binary(ctx, h, t.URL, t.Path)
		}
	}
	return errors.New("no kubeadm download")
}

// installKubeadmPackage installs only the target's kubeadm from the target minor's repository with
// the package phase's own code (which moves the repository to the spec's minor); the kubelet step
// installs the rest the same way.
func installKubeadmPackage(ctx context.Context, h *Host, s *v1alpha1.ClusterSpec, inputs manifests.Inputs) error {
	all, err := install.KubePackageVersions(s)
	if err != nil {
		return err
	}
	files, err := hostFiles(h, s, inputs, h.Facts.AdminConfPresent)
	if err != nil {
		return err
	}
	return installPackages(ctx, h, s, files, map[string]string{"kubeadm": all["kubeadm"]})
}
