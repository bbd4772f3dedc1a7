package phases

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/guard"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
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

// uploadHAEndpoint writes the load balancer's files and static pods on control plane h. initDone
// tells kube-vip which kubeconfig it may use (super-admin.conf until kubeadm init has completed).
func uploadHAEndpoint(ctx context.Context, h *Host, in *Input, initDone bool) error {
	files, err := hostFiles(h, &in.Cluster.Spec, in.Inputs, initDone)
	if err != nil {
		return err
	}
	_, err = h.UploadAll(ctx, files.HAEndpoint)
	return err
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
		return uploadHAEndpoint(ctx, h, &r.Input, h.Facts.AdminConfPresent)
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

// initCompleteCheck checks that a previous `kubeadm init` ran to completion: its admin.conf exists
// early, but the kubeadm-config ConfigMap is uploaded only once the control plane is up.
var initCompleteCheck = ssh.Cmd{Args: []string{"kubectl", "--kubeconfig", constants.AdminConf, "--request-timeout", "5s",
	"-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "name"}}

// initPlan is what InitCheck decided for Init in one create run.
type initPlan struct {
	action guard.InitAction
}

// InitCheck decides, before anything is changed, what Init may do on the first control plane: run
// kubeadm init, nothing (init completed), or reset and init again, which guard.Init allows only on
// the installer's own marker of an unfinished init. An initialised control plane whose API server
// does not answer stops the run here.
type InitCheck struct {
	plan *initPlan
	// apiWait is how long an initialised control plane's API server gets to answer (default a
	// minute: it may be restarting after a reboot or an upgrade).
	apiWait time.Duration
}

func (InitCheck) Name() string { return "init-check" }

func (c InitCheck) Run(ctx context.Context, r *Run) error {
	h, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	ev := guard.InitEvidence{Host: h.Name(), Files: h.Facts.Cluster}
	if h.Facts.AdminConfPresent {
		wait := c.apiWait
		if wait == 0 {
			wait = time.Minute
		}
		ev.Complete, ev.Check = h.initComplete(ctx, wait)
	}
	if !ev.Complete && h.Facts.Cluster.InitMarker != nil {
		for _, o := range r.All() {
			if o != h && o.Facts.KubeletConfPresent {
				ev.Nodes = append(ev.Nodes, o.Name())
			}
		}
		ev.EtcdMembers = h.etcdMemberNames(ctx)
	}
	action, err := guard.Init(r.identity(), ev)
	if err != nil {
		return err
	}
	c.plan.action = action
	if action == guard.InitRetry {
		r.Log.Warn("an earlier kubeadm init by the installer did not finish (its marker is there, no other host is a node): the init phase resets this host and initialises again", "host", h.Name())
	}
	return nil
}

// identity names the cluster this run acts for.
func (r *Run) identity() guard.Identity {
	id := guard.Identity{Cluster: r.Cluster.Metadata.Name}
	if r.PKI != nil {
		id.CAFingerprint = pki.Fingerprint(r.PKI.Cluster.Cert)
	}
	return id
}

// Init runs `kubeadm init` on the first control plane as InitCheck decided. A marker written
// before init and removed after it is the proof a later run needs to reset an init that never
// finished (guard.Init).
type Init struct {
	plan *initPlan
	join *joinState
}

func (Init) Name() string { return "init" }

func (i Init) Run(ctx context.Context, r *Run) error {
	h, err := r.firstControlPlane()
	if err != nil {
		return err
	}
	switch i.plan.action {
	case guard.InitDone:
		if h.Facts.Cluster.InitMarker != nil {
			return h.removeInitMarker(ctx)
		}
		return nil
	case guard.InitRetry:
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "reset", "-f"}}); err != nil {
			return fmt.Errorf("reset the unfinished init: %w", err)
		}
		if err := reuploadAfterReset(ctx, h, &r.Input); err != nil {
			return err
		}
	case guard.InitRun:
	default:
		return errors.New("phase init-check did not run")
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
	id := r.identity()
	marker := facts.Marker{Cluster: id.Cluster, CAFingerprint: id.CAFingerprint, Host: h.Name(), Started: time.Now().UTC().Format(time.RFC3339)}
	if _, err := h.Upload(ctx, manifests.File{Path: constants.InitMarker, Mode: 0o644, Content: marker.Render()}); err != nil {
		return err
	}
	start := time.Now()
	_, err = h.Exec(ctx, ssh.Cmd{Args: []string{"kubeadm", "init", "--config", kubeadm.ConfigPath, "--skip-token-print"}, Secrets: []string{token}})
	if err != nil {
		return fmt.Errorf("kubeadm init: %w", err)
	}
	r.fx.Done("kubeadm init", start, "host", h.Name())
	if err := h.removeInitMarker(ctx); err != nil {
		return err
	}
	i.join.set(token)
	if r.Cluster.Spec.LoadBalancer.Type == v1alpha1.LoadBalancerKubeVIP {
		// kube-vip used super-admin.conf while the cluster initialised (admin.conf has no rights
		// before init ends); from now on it runs with admin.conf.
		if err := uploadHAEndpoint(ctx, h, &r.Input, true); err != nil {
			return fmt.Errorf("switch kube-vip to admin.conf: %w", err)
		}
	}
	return nil
}

// removeInitMarker records that kubeadm init completed: from now on no run may reset this host.
func (h *Host) removeInitMarker(ctx context.Context) error {
	if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"rm", "-f", constants.InitMarker}}); err != nil {
		return fmt.Errorf("remove the init marker: %w", err)
	}
	return nil
}

// initComplete reports whether kubeadm's configuration can be read from the cluster through the
// host's admin.conf within wait, and when not, what the last attempt said.
func (h *Host) initComplete(ctx context.Context, wait time.Duration) (bool, string) {
	deadline := time.Now().Add(wait)
	for {
		_, err := h.Query(ctx, initCompleteCheck)
		if err == nil {
			return true, ""
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, kubectlSaid(err)
		}
		select {
		case <-ctx.Done():
			return false, kubectlSaid(err)
		case <-time.After(2 * time.Second):
		}
	}
}

// kubectlSaid is the gist of a failed kubectl call: the last line of its stderr (kubectl repeats
// client-side retries before it), or the whole error when it did not run.
func kubectlSaid(err error) string {
	var ce *ssh.CommandError
	if !errors.As(err, &ce) || ce.Stderr == "" {
		return err.Error()
	}
	parts := strings.Split(ce.Stderr, " | ")
	return "kubectl on " + ce.Host + ": " + strings.TrimSpace(parts[len(parts)-1])
}

// etcdMemberNames lists etcd's members through the host's etcd container; nil when etcd does not
// answer (no container, no quorum).
func (h *Host) etcdMemberNames(ctx context.Context) []string {
	res, err := h.Query(ctx, ssh.Cmd{Args: scripts.Etcd.Args("member-list")})
	if err != nil {
		return nil
	}
	members, err := parseEtcdMembers(string(res.Stdout))
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(members))
	for _, m := range members {
		names = append(names, m.Name)
	}
	return names
}

// reuploadAfterReset lays down again what `kubeadm reset` deletes: the PKI and the static pods of
// the HA endpoint (reset empties /etc/kubernetes/manifests and /etc/kubernetes/pki). The init to
// come has not completed, whatever an earlier attempt left.
func reuploadAfterReset(ctx context.Context, h *Host, in *Input) error {
	if _, err := h.UploadAll(ctx, in.PKI.ControlPlaneFiles()); err != nil {
		return err
	}
	return uploadHAEndpoint(ctx, h, in, false)
}

// joinState is the bootstrap token the joins of one run use: the one Init created, or one made
// on the first control plane for the first join that needs it.
type joinState struct {
	mu    sync.Mutex
	token string
}

func (j *joinState) set(token string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.token = token
}

// get returns the run's token, creating a short-lived one on the first control plane when init
// made none.
func (j *joinState) get(ctx context.Context, r *Run) (string, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.token != "" {
		return j.token, nil
	}
	cp, err := r.firstControlPlane()
	if err != nil {
		return "", err
	}
	token, err := r.fx.BootstrapToken(ctx, cp)
	if err != nil {
		return "", err
	}
	j.token = token
	return token, nil
}

// Join runs `kubeadm join` on hosts that are not nodes yet: control planes one at a time (each adds
// an etcd member), workers in parallel.
type Join struct {
	Role v1alpha1.Role
	join *joinState
}

func (j Join) Name() string { return roleStep("join", j.Role) }

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
	token, err := j.join.get(ctx, r)
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
			return fmt.Errorf("kubeadm join: %w", err)
		}
		return nil
	})
}
