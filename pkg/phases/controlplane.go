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
// an etcd member), workers in parallel. A control plane's join is bracketed by the installer's join
// marker: one whose marker is still there (power lost, the installer killed) is resumed.
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
		if h == first || (h.Facts.KubeletConfPresent && !unfinishedJoin(h)) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// unfinishedJoin reports whether a control plane holds the marker of a kubeadm join the installer
// started and did not see complete.
func unfinishedJoin(h *Host) bool {
	return h.Spec.Role == v1alpha1.RoleControlPlane && h.Facts.Cluster.JoinMarker != nil
}

func (j Join) Run(ctx context.Context, r *Run) error {
	hosts := j.pending(r)
	token, err := j.join.get(ctx, r)
	if err != nil {
		return err
	}
	join := func(ctx context.Context, h *Host) error { return j.joinHost(ctx, r, h, token) }
	if j.Role != v1alpha1.RoleControlPlane {
		return ForEachHost(ctx, hosts, r.Concurrency, join)
	}
	// One control plane at a time, and none after one failed: etcd takes one learner at a time, and a
	// member that did not start must be dealt with before another is added.
	for i, h := range hosts {
		if err := ForEachHost(ctx, []*Host{h}, 1, join); err != nil {
			if rest := hosts[i+1:]; len(rest) > 0 {
				names := make([]string, 0, len(rest))
				for _, n := range rest {
					names = append(names, n.Name())
				}
				return fmt.Errorf("%w (not started after it: %s)", err, strings.Join(names, ", "))
			}
			return err
		}
	}
	return nil
}

// joinHost runs kubeadm join on h. On a control plane the join marker goes first; a marker of this
// cluster and host already there means an earlier join of the installer's stopped mid-way, and once
// kubeadm has passed its preflight (admin.conf written) the join resumes without it: the preflight
// would refuse the files kubeadm itself wrote, and every later phase is safe to repeat (the etcd
// member is added only when its peer URL is not there yet, then promoted). kubelet-start, which
// refuses a node that is already Ready, is left out once kubelet.conf is there.
func (j Join) joinHost(ctx context.Context, r *Run, h *Host, token string) error {
	f, err := kubeadm.File(kubeadm.Input{Spec: &r.Cluster.Spec, Host: h.Spec, Facts: h.Facts, Token: token,
		CACertHashes: []string{r.PKI.DiscoveryHash()}})
	if err != nil {
		return err
	}
	if _, err := h.Upload(ctx, f); err != nil {
		return err
	}
	args := []string{"kubeadm", "join", "--config", kubeadm.ConfigPath}
	cp := h.Spec.Role == v1alpha1.RoleControlPlane
	if cp {
		id := r.identity()
		switch m := h.Facts.Cluster.JoinMarker; {
		case m == nil:
			marker := facts.Marker{Cluster: id.Cluster, CAFingerprint: id.CAFingerprint, Host: h.Name(), Started: time.Now().UTC().Format(time.RFC3339)}
			if _, err := h.Upload(ctx, manifests.File{Path: constants.JoinMarker, Mode: 0o644, Content: marker.Render()}); err != nil {
				return err
			}
		case m.Cluster != id.Cluster || m.CAFingerprint != id.CAFingerprint || m.Host != h.Name():
			return fmt.Errorf("%s records a join of cluster %q (CA %s) on host %q, not this one; nothing was changed: check the host, and remove the file only if that join is not to be finished", constants.JoinMarker, m.Cluster, m.CAFingerprint, m.Host)
		case h.Facts.AdminConfPresent:
			skip := "preflight"
			if h.Facts.KubeletConfPresent {
				skip += ",kubelet-start"
			}
			args = append(args, "--skip-phases", skip)
			r.Log.Warn("an earlier kubeadm join of this control plane did not finish (its marker is there): resuming it", "host", h.Name(), "started", m.Started, "skipped phases", skip)
		}
	}
	start := time.Now()
	if _, err := h.Exec(ctx, ssh.Cmd{Args: args, Secrets: []string{token}}); err != nil {
		return fmt.Errorf("kubeadm join: %w", err)
	}
	r.fx.Done("kubeadm join", start, "host", h.Name())
	if cp {
		if _, err := h.Exec(ctx, ssh.Cmd{Args: []string{"rm", "-f", constants.JoinMarker}}); err != nil {
			return fmt.Errorf("remove the join marker: %w", err)
		}
	}
	return nil
}
