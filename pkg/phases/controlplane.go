package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/ssh"
)

// UploadPKI puts the installer-owned CAs and service-account keys on every control plane before
// kubeadm runs there; kubeadm adopts them, so no certificate key or --upload-certs is needed.
type UploadPKI struct{}

func (UploadPKI) Name() string { return "pki" }

func (UploadPKI) Run(ctx context.Context, r *Run) error {
	if r.PKI == nil {
		return errors.New("the cluster PKI was not loaded")
	}
	return ForEachHost(ctx, r.TargetsWithRole(v1alpha1.RoleControlPlane), r.Concurrency, func(ctx context.Context, h *Host) error {
		_, err := h.UploadAll(ctx, r.PKI.ControlPlaneFiles())
		return err
	})
}

// HAEndpoint writes the API load balancer's static pods and configuration on every control plane
// before its kubeadm init or join: the endpoint must answer before anything joins through it.
type HAEndpoint struct{}

func (HAEndpoint) Name() string { return "ha-endpoint" }

func (HAEndpoint) ShouldRun(r *Run) (bool, string) {
	switch r.Cluster.Spec.LoadBalancer.Type {
	case v1alpha1.LoadBalancerKeepalivedHAProxy, v1alpha1.LoadBalancerKubeVIP:
		return true, ""
	}
	return false, "no load balancer on the control planes (loadBalancer.type " + string(r.Cluster.Spec.LoadBalancer.Type) + ")"
}

func (HAEndpoint) Run(ctx context.Context, r *Run) error {
	return ForEachHost(ctx, r.TargetsWithRole(v1alpha1.RoleControlPlane), r.Concurrency, func(ctx context.Context, h *Host) error {
		files, err := h.hostFiles(groupHAEndpoint)
		if err != nil {
			return err
		}
		_, err = h.UploadAll(ctx, files)
		return err
	})
}

// firstControlPlane is the host that runs kubeadm init.
func (r *Run) firstControlPlane() (*Host, error) {
	cps := r.Cluster.Spec.ControlPlanes()
	if len(cps) == 0 {
		return nil, errors.New("the spec has no control plane")
	}
	h, ok := r.Hosts[cps[0].Name]
	if !ok {
		return nil, fmt.Errorf("control plane %s is not part of this run", cps[0].Name)
	}
	return h, nil
}

// kubeadmSucceeded checks that a previous `kubeadm init` ran to completion: its admin.conf exists
// early, but the kubeadm-config ConfigMap is uploaded only once the control plane is up.
const initCompleteScript = `kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout 5s -n kube-system get configmap kubeadm-config -o name`

// Init runs `kubeadm init` on the first control plane, unless the cluster is already initialised.
// An init that never completed (admin.conf present, no kubeadm-config) is reset and run again.
type Init struct{}

func (Init) Name() string { return "init" }

func (Init) Run(ctx context.Context, r *Run) error {
	h, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	if h.Facts.AdminConfPresent {
		if h.initComplete(ctx) {
			return nil
		}
		r.Log.Warn("kubeadm init did not complete on an earlier run; resetting the first control plane and initialising again", "host", h.Name())
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "reset", "-f"}}); err != nil {
			return fmt.Errorf("reset an incomplete init: %w", err)
		}
		if err := h.reuploadAfterReset(ctx); err != nil {
			return err
		}
	}
	token, err := kubeadm.GenerateToken()
	if err != nil {
		return err
	}
	f, err := kubeadm.File(kubeadm.Input{Spec: &r.Cluster.Spec, Host: h.Spec, Facts: h.Facts, Token: token})
	if err != nil {
		return err
	}
	if _, err := h.Upload(ctx, f); err != nil {
		return err
	}
	start := time.Now()
	_, err = h.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "init", "--config", kubeadm.ConfigPath, "--skip-token-print"}, Secrets: []string{token}})
	if err != nil {
		return fmt.Errorf("kubeadm init: %w", err)
	}
	r.Log.Info("kubeadm init done", "host", h.Name(), "seconds", time.Since(start).Seconds())
	r.Set(keyJoinToken, token)
	h.Facts.AdminConfPresent = true
	h.Facts.KubeletConfPresent = true
	if r.Cluster.Spec.LoadBalancer.Type == v1alpha1.LoadBalancerKubeVIP {
		// kube-vip used super-admin.conf while the cluster initialised (admin.conf has no rights
		// before init ends); from now on it runs with admin.conf.
		files, err := h.hostFiles(groupHAEndpoint)
		if err != nil {
			return err
		}
		if _, err := h.UploadAll(ctx, files); err != nil {
			return fmt.Errorf("switch kube-vip to admin.conf: %w", err)
		}
	}
	return nil
}

func (h *Host) initComplete(ctx context.Context) bool {
	if h.run.DryRun {
		return true
	}
	// The apiserver may be restarting (a reboot, an upgrade): give it a minute before concluding.
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := h.Query(ctx, ssh.Cmd{Args: []string{"sh", "-c", initCompleteScript}}); err == nil {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(2 * time.Second):
		}
	}
}

// reuploadAfterReset lays down again what `kubeadm reset` deletes: the PKI and the static pods of
// the HA endpoint (reset empties /etc/kubernetes/manifests and /etc/kubernetes/pki).
func (h *Host) reuploadAfterReset(ctx context.Context) error {
	if _, err := h.UploadAll(ctx, h.run.PKI.ControlPlaneFiles()); err != nil {
		return err
	}
	files, err := h.hostFiles(groupHAEndpoint)
	if err != nil {
		return err
	}
	_, err = h.UploadAll(ctx, files)
	return err
}

const keyJoinToken = "join-token"

// joinToken returns a bootstrap token for joins: the one init just created, or a fresh one with a
// short TTL made on the first control plane.
func (r *Run) joinToken(ctx context.Context) (string, error) {
	if v, ok := r.Get(keyJoinToken); ok {
		return v.(string), nil
	}
	if r.DryRun {
		return "abcdef.0123456789abcdef", nil
	}
	cp, err := r.firstControlPlane()
	if err != nil {
		return "", err
	}
	// kubeadm generates the token and prints it: it never appears in a command line on the host.
	res, err := cp.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "token", "create", "--ttl", "30m", "--description", "installer join"},
		Sensitive: true})
	if err != nil {
		return "", fmt.Errorf("create a bootstrap token on %s: %w", cp.Name(), err)
	}
	token := strings.TrimSpace(string(res.Stdout))
	if err := kubeadm.ValidateToken(token); err != nil {
		return "", fmt.Errorf("kubeadm token create on %s printed no valid token", cp.Name())
	}
	r.Set(keyJoinToken, token)
	return token, nil
}

// Join runs `kubeadm join` on hosts that are not nodes yet: control planes one at a time (each adds
// an etcd member), workers in parallel.
type Join struct {
	Role v1alpha1.Role
}

func (j Join) Name() string {
	if j.Role == v1alpha1.RoleControlPlane {
		return "join/control-planes"
	}
	return "join/workers"
}

func (j Join) ShouldRun(r *Run) (bool, string) {
	if len(j.pending(r)) == 0 {
		return false, "every host is a node already"
	}
	return true, ""
}

func (j Join) pending(r *Run) []*Host {
	first, _ := r.firstControlPlane()
	var out []*Host
	for _, h := range r.TargetsWithRole(j.Role) {
		if h == first || h.Facts.KubeletConfPresent {
			continue
		}
		out = append(out, h)
	}
	return out
}

func (j Join) Run(ctx context.Context, r *Run) error {
	hosts := j.pending(r)
	token, err := r.joinToken(ctx)
	if err != nil {
		return err
	}
	limit := r.Concurrency
	if j.Role == v1alpha1.RoleControlPlane {
		limit = 1
	}
	return ForEachHost(ctx, hosts, limit, func(ctx context.Context, h *Host) error {
		f, err := kubeadm.File(kubeadm.Input{Spec: &r.Cluster.Spec, Host: h.Spec, Facts: h.Facts, Token: token,
			CACertHashes: []string{r.PKI.DiscoveryHash()}})
		if err != nil {
			return err
		}
		if _, err := h.Upload(ctx, f); err != nil {
			return err
		}
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "join", "--config", kubeadm.ConfigPath}, Secrets: []string{token}}); err != nil {
			return fmt.Errorf("kubeadm join: %w", lastLines(err))
		}
		h.Facts.KubeletConfPresent = true
		return nil
	})
}

// lastLines keeps kubeadm's error readable: the command error already carries a redacted stderr tail.
func lastLines(err error) error {
	var ce *ssh.CommandError
	if errors.As(err, &ce) && strings.Count(ce.Stderr, "\n") > 10 {
		lines := strings.Split(ce.Stderr, "\n")
		ce.Stderr = strings.Join(lines[len(lines)-10:], "\n")
	}
	return err
}
