// Package phases runs a command's workflow: a literal list of small phases executed in order by a
// manager, each acting on hosts through a bounded fan-out. Phases are thin adapters: what to write
// comes from the pure renderers (pkg/kubeadm, pkg/manifests), what is true of a host from pkg/facts.
//
// Dry runs: every change (a host's commands and uploads, the cluster API's apply, cordon, drain,
// uncordon and node deletion, the state directory's files) goes through one Effects boundary. A
// dry run (plan, --dry-run) gets the recording implementation, so it runs the real code path:
// phases never test whether they are in one.
package phases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
)

// Phase is one step of a workflow. Names are hierarchical ("runtime/install").
type Phase interface {
	Name() string
	Run(ctx context.Context, r *Run) error
}

// Skipper is implemented by phases that can tell up front that they have nothing to do; the
// manager then reports the reason instead of running them.
type Skipper interface {
	ShouldRun(r *Run) (run bool, reason string)
}

// Input is what a run reads and never changes: the spec (not quite the file as validated:
// upgrade --to replaces spec.kubernetesVersion before the run is made), the state directory, the
// installer-owned PKI and the renderers' other inputs.
type Input struct {
	Cluster  *v1alpha1.Cluster
	StateDir state.Dir
	// PKI is the installer-owned cluster PKI: the state directory's, or (PKIGenerated) one made in
	// memory for a cluster that does not exist yet; nil when the state directory has none.
	PKI          *pki.Bundle
	PKIGenerated bool
	// Local saves what the run generated into the state directory once ClusterIdentity allows it.
	Local LocalState
	// Inputs are the renderers' inputs besides spec and facts: local file contents, fetched
	// manifests, secrets (VRRP password, cloud credentials).
	Inputs manifests.Inputs
}

// Run is one command invocation: its read-only Input, the hosts it acts on with their connections
// and facts, and the effects boundary every change goes through. What phases hand each other is
// not kept here: each workflow's constructor makes its own typed state (initPlan, joinState,
// upgradeState, resetState) and gives it to the phases that need it.
type Run struct {
	Input
	// Hosts are the hosts of the spec this run acts on, in spec order, by name.
	Hosts map[string]*Host
	order []string
	// targets are the hosts this command changes; the others (NewRun's readOnly) are only read from.
	targets map[string]bool
	// settled are hosts the command was asked to change but found done and leaves alone
	// (Settle); they are still waited for.
	settled []string
	// Concurrency bounds ForEachHost.
	Concurrency int
	// DryRun selects the recording effects (plan, --dry-run) when Execute starts.
	DryRun   bool
	Log      *slog.Logger
	Progress Progress
	// Connect opens a host's connection; the connect phase calls it.
	Connect Connector

	fx  Effects
	j   *journal
	api *clusterAPI
	mu  sync.Mutex
	// leftoverInterval and leftoverWait pace the wait for a kubeadm an earlier run left (0: 2 s and
	// leftoverWait; tests shorten them).
	leftoverInterval, leftoverWait time.Duration
}

// NewRun prepares a run that changes the named hosts of the spec (every host when targets is
// empty) and only reads from the readOnly ones: join node reads a bootstrap token and the cluster
// API from the first control plane, reset --host reaches the cluster through the control planes
// that stay. A host named in both is a target. The run's hosts are fixed here, in spec order, so
// whoever sets the run up (logs, connections) sees every host the run will use.
func NewRun(c *v1alpha1.Cluster, targets []string, readOnly ...string) (*Run, error) {
	r := &Run{Input: Input{Cluster: c}, Hosts: map[string]*Host{}, Concurrency: 32, Log: slog.New(slog.DiscardHandler),
		Progress: discardProgress{}, j: newJournal(), targets: map[string]bool{}}
	r.api = &clusterAPI{connect: r.connectAPI}
	want, read := map[string]bool{}, map[string]bool{}
	for _, n := range targets {
		want[n] = true
	}
	for _, n := range readOnly {
		read[n] = true
	}
	for _, h := range c.Spec.Hosts {
		target := len(targets) == 0 || want[h.Name]
		if !target && !read[h.Name] {
			continue
		}
		r.Hosts[h.Name] = &Host{Spec: h}
		r.order = append(r.order, h.Name)
		if target {
			r.targets[h.Name] = true
		}
	}
	for _, n := range append(append([]string(nil), targets...), readOnly...) {
		if _, ok := r.Hosts[n]; !ok {
			return nil, fmt.Errorf("host %s is not in the spec", n)
		}
	}
	r.useEffects()
	return r, nil
}

// useEffects picks the effects boundary from DryRun, once per Execute: the only place a run's
// dry-run setting is read.
func (r *Run) useEffects() {
	if r.DryRun {
		r.fx = recordEffects{j: r.j, log: r.Log}
	} else {
		r.fx = applyEffects{j: r.j, log: r.Log}
	}
	for _, h := range r.Hosts {
		h.fx, h.progress = r.fx, r.Progress
	}
}

// All returns the run's hosts in spec order.
func (r *Run) All() []*Host {
	out := make([]*Host, 0, len(r.order))
	for _, n := range r.order {
		out = append(out, r.Hosts[n])
	}
	return out
}

// Targets returns the hosts this command changes, in spec order.
func (r *Run) Targets() []*Host {
	var out []*Host
	for _, h := range r.All() {
		if r.targets[h.Name()] {
			out = append(out, h)
		}
	}
	return out
}

// TargetsWithRole returns the targets of one role in spec order.
func (r *Run) TargetsWithRole(role v1alpha1.Role) []*Host {
	var out []*Host
	for _, h := range r.Targets() {
		if h.Spec.Role == role {
			out = append(out, h)
		}
	}
	return out
}

// Settle takes h out of the targets: the command was asked to change it, found it done and leaves
// it alone. Phases that check the outcome (WaitReady) still include it.
func (r *Run) Settle(h *Host, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.targets[h.Name()] {
		delete(r.targets, h.Name())
		r.settled = append(r.settled, h.Name())
	}
	r.Log.Info("host "+h.Name()+" "+why, "host", h.Name())
}

// Settled returns the hosts Settle took out of the targets, in the order it did.
func (r *Run) Settled() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.settled...)
}

// IsTarget reports whether the command may change host h.
func (r *Run) IsTarget(h *Host) bool { return r.targets[h.Name()] }

// Changes returns how many remote changes each phase made (or, in a dry run, would make).
func (r *Run) Changes() map[string]int {
	r.j.mu.Lock()
	defer r.j.mu.Unlock()
	out := make(map[string]int, len(r.j.changes))
	for k, v := range r.j.changes {
		out[k] = v
	}
	return out
}

// Timing is how long one phase took and what it changed.
type Timing struct {
	Phase    string
	Duration time.Duration
	Changes  int
	Skipped  string
}

// Execute runs the phases in order. It stops at the first failing phase (wrapping its error with the
// phase name) and between phases when ctx is cancelled (exit code 130).
func Execute(ctx context.Context, r *Run, list []Phase) ([]Timing, error) {
	var timings []Timing
	r.useEffects()
	for _, p := range list {
		if err := ctx.Err(); err != nil {
			return timings, exitcode.New(exitcode.Interrupted, fmt.Errorf("interrupted before phase %s: %w", p.Name(), err))
		}
		r.j.setPhase(p.Name())
		if s, ok := p.(Skipper); ok {
			if run, why := s.ShouldRun(r); !run {
				r.Progress.PhaseSkipped(p.Name(), why)
				timings = append(timings, Timing{Phase: p.Name(), Skipped: why})
				continue
			}
		}
		r.Progress.PhaseStarted(p.Name())
		start := time.Now()
		err := p.Run(ctx, r)
		t := Timing{Phase: p.Name(), Duration: time.Since(start), Changes: r.j.changesOf(p.Name())}
		timings = append(timings, t)
		r.Progress.PhaseDone(p.Name(), t.Duration, t.Changes, r.DryRun, err)
		if err != nil {
			switch {
			case exitcode.Of(err) != exitcode.Failure:
			case ctx.Err() != nil:
				err = exitcode.New(exitcode.Interrupted, err)
			case ssh.IsHostAccess(err):
				// A host lost in the middle of a phase is as unreachable as one lost at connect.
				err = exitcode.New(exitcode.Unreachable, err)
			}
			return timings, fmt.Errorf("phase %s: %w", p.Name(), err)
		}
	}
	return timings, nil
}

// ForEachHost runs fn on every host with at most limit running at once. It returns every host's
// error, each wrapped as "host <name>: ...", joined. Hosts not yet started when ctx is cancelled
// are not started.
func ForEachHost(ctx context.Context, hosts []*Host, limit int, fn func(ctx context.Context, h *Host) error) error {
	if limit < 1 {
		limit = 1
	}
	sem := make(chan struct{}, limit)
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		// Checked first: select picks at random when a slot is free as well.
		if ctx.Err() != nil {
			errs[i] = fmt.Errorf("host %s: not started: %w", h.Name(), ctx.Err())
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = fmt.Errorf("host %s: not started: %w", h.Name(), ctx.Err())
			continue
		}
		wg.Add(1)
		go func(i int, h *Host) {
			defer wg.Done()
			defer func() { <-sem }()
			h.progress.HostStarted(h.Name())
			start := time.Now()
			err := fn(ctx, h)
			h.progress.HostDone(h.Name(), time.Since(start), err)
			if err != nil {
				errs[i] = &hostError{host: h.Name(), err: err}
			}
		}(i, h)
	}
	wg.Wait()
	return errors.Join(errs...)
}

// hostError names the host an error happened on, once: SSH errors deep in the chain name it
// too ("install runc: host w2: command ... exited"), and the message drops those repeats.
type hostError struct {
	host string
	err  error
}

func (e *hostError) Error() string {
	prefix := "host " + e.host + ": "
	return prefix + strings.ReplaceAll(e.err.Error(), prefix, "")
}

func (e *hostError) Unwrap() error { return e.err }

// hostErr names the host err happened on (once, however deep other mentions are).
func hostErr(host string, err error) error { return &hostError{host: host, err: err} }

// roleStep names a phase that acts on the hosts of one role: "<prefix>/control-planes" or
// "<prefix>/workers".
func roleStep(prefix string, role v1alpha1.Role) string {
	if role == v1alpha1.RoleControlPlane {
		return prefix + "/control-planes"
	}
	return prefix + "/workers"
}
