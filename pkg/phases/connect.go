package phases

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/preflight"
	"installer.dev/installer/pkg/ssh"
)

// Connect opens one connection per host (bounded fan-out). Any host that cannot be reached or
// authenticated fails the run with exit code 4 before anything is changed anywhere.
type Connect struct{}

func (Connect) Name() string { return "connect" }

func (Connect) Run(ctx context.Context, r *Run) error {
	if r.Connect == nil {
		return errors.New("no connector configured")
	}
	return connectHosts(ctx, r, nil)
}

// connectHosts connects every host of the run. When leaveOut is set, it is asked about each host
// that cannot be reached or logged into (never about a local credential problem): true leaves the
// host out of the run's connected hosts instead of failing it.
func connectHosts(ctx context.Context, r *Run, leaveOut func(h *Host, err error) bool) error {
	err := ForEachHost(ctx, r.All(), r.Concurrency, func(ctx context.Context, h *Host) error {
		if h.Connected() {
			return nil
		}
		conn, err := r.Connect(ctx, h.Spec)
		if err == nil {
			h.SetConnection(conn)
			return nil
		}
		var cred *ssh.CredentialsError
		if leaveOut == nil || errors.As(err, &cred) || !ssh.IsHostAccess(err) || !leaveOut(h, err) {
			return err
		}
		return nil
	})
	return classifyConnect(err)
}

// ConnectReachable connects every host it can; a host that cannot be reached is logged and left
// out, and its name kept in Unreachable (state recover works from the hosts that answer).
type ConnectReachable struct {
	Unreachable *[]string
}

func (ConnectReachable) Name() string { return "connect" }

func (p ConnectReachable) Run(ctx context.Context, r *Run) error {
	if r.Connect == nil {
		return errors.New("no connector configured")
	}
	var mu sync.Mutex
	err := connectHosts(ctx, r, func(h *Host, err error) bool {
		r.Log.Warn("host unreachable: left out", "host", h.Name(), "error", err)
		mu.Lock()
		*p.Unreachable = append(*p.Unreachable, h.Name())
		mu.Unlock()
		return true
	})
	slices.Sort(*p.Unreachable)
	return err
}

// classifyConnect maps connection problems to exit codes: a host that cannot be reached or logged
// into is 4; a local credential problem (key passphrase, password variable) is invalid input, 2.
func classifyConnect(err error) error {
	var cred *ssh.CredentialsError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &cred):
		return exitcode.New(exitcode.InvalidInput, err)
	case ssh.IsHostAccess(err):
		return exitcode.New(exitcode.Unreachable, err)
	}
	return err
}

// GatherFacts reads every connected host's facts in one round trip each (reset goes on without
// hosts it cannot reach; every other workflow stops at connect when one is missing). Facts read
// while a kubeadm left by an earlier run still changed the host are read again once it is done.
type GatherFacts struct{}

func (GatherFacts) Name() string { return "facts" }

func (GatherFacts) Run(ctx context.Context, r *Run) error {
	err := ForEachHost(ctx, connected(r.All()), r.Concurrency, func(ctx context.Context, h *Host) error {
		f, err := facts.Gather(ctx, h.Runner())
		if err != nil {
			return err
		}
		if f.KubeadmRunning {
			if err := waitForLeftoverKubeadm(ctx, r, h); err != nil {
				return err
			}
			if f, err = facts.Gather(ctx, h.Runner()); err != nil {
				return err
			}
		}
		f.Name = h.Name()
		h.Facts = f
		return nil
	})
	return classifyConnect(err)
}

// Preflight runs the installer's own checks on the gathered facts. Every finding is printed; any
// blocking one stops the run with exit code 5 before anything is changed.
type Preflight struct{}

func (Preflight) Name() string { return "preflight" }

func (Preflight) ShouldRun(r *Run) (bool, string) {
	if len(r.Targets()) == 0 {
		return false, "no host to change"
	}
	return true, ""
}

func (Preflight) Run(ctx context.Context, r *Run) error {
	all := map[string]facts.Host{}
	for _, h := range r.All() {
		all[h.Name()] = h.Facts
	}
	var targets []string
	for _, h := range r.Targets() {
		targets = append(targets, h.Name())
	}
	findings := preflight.Check(r.Cluster, all, targets)
	var blocking []string
	for _, f := range findings {
		if f.Blocking {
			blocking = append(blocking, f.String())
		} else {
			r.Log.Warn(f.String())
		}
	}
	if err := checkDownloads(r); err != nil {
		blocking = append(blocking, "download: "+err.Error())
	}
	if len(blocking) > 0 {
		sort.Strings(blocking)
		return exitcode.New(exitcode.Preflight, fmt.Errorf("%d blocking problem(s); nothing was changed:\n%s", len(blocking), strings.Join(blocking, "\n")))
	}
	return nil
}
