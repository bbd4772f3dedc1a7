package phases

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/guard"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// EtcdRestoreDir is where etcd-restore.sh keeps a restore's files on each control plane, among them
// before/member: etcd's data as it was before the restore, which the installer never removes.
const EtcdRestoreDir = constants.InstallerDataDir + "/etcd-restore"

// EtcdRestore restores etcd on every control plane from one snapshot, the upstream procedure for a
// kubeadm cluster with stacked etcd: the snapshot is copied to each control plane and restored there
// into a new data directory (etcdutl from the etcd image, each member with its own name and peer URL
// in one initial cluster, the revision bumped and marked compacted so that every watcher lists
// again); while the cluster still runs, nothing else changes. Then every control plane's static pods
// stop, each swaps the restored data in (keeping the old data under EtcdRestoreDir), etcd starts
// everywhere and must be healthy with every member before the apiservers, controller-managers and
// schedulers start; the run ends when every apiserver is ready and every node Ready again. Workers
// are only waited for. An interrupted restore is resumed by a run with the same snapshot, and a run
// with another snapshot is refused while one is unfinished.
type EtcdRestore struct {
	// Snapshot is the snapshot's content and SHA-256 (hex), checked by the caller.
	Snapshot []byte
	SHA256   string
	// Timeout bounds each wait (containers stopping, etcd healthy, apiservers ready, nodes Ready).
	Timeout time.Duration
	// Report receives what was restored where.
	Report *RestoreReport
	// now stamps a new restore's ID (tests fix it).
	now func() time.Time
	// settle is how long the VIP must stay put at the end (vipSettle when 0; tests shorten it).
	settle time.Duration
}

// RestoreReport is what EtcdRestore did.
type RestoreReport struct {
	ID string
	// Resumed: an earlier, interrupted run of this snapshot's restore was finished.
	Resumed bool
	// Members are the restored members, "name=peer URL".
	Members []string
}

func (EtcdRestore) Name() string { return "etcd/restore" }

// restoreMember is one control plane's etcd member as its manifest defines it.
type restoreMember struct {
	host *Host
	name string
	peer string
}

func (e EtcdRestore) Run(ctx context.Context, r *Run) error {
	if e.Timeout == 0 {
		e.Timeout = 5 * time.Minute
	}
	if e.now == nil {
		e.now = time.Now
	}
	cps := r.TargetsWithRole(v1alpha1.RoleControlPlane)
	if len(cps) == 0 {
		return fmt.Errorf("the spec has no control plane")
	}
	id, done, err := e.restoreID(ctx, cps)
	if err != nil {
		return err
	}
	e.Report.ID, e.Report.Resumed = id, done != nil
	members := make([]restoreMember, 0, len(cps))
	var cluster []string
	for _, h := range cps {
		m, err := manifestMember(ctx, h, id)
		if err != nil {
			return hostErr(h.Name(), err)
		}
		members = append(members, m)
		cluster = append(cluster, m.name+"="+m.peer)
	}
	e.Report.Members = cluster
	if err := checkMembership(ctx, r, members); err != nil {
		return err
	}
	initial := strings.Join(cluster, ",")
	for h := range done {
		if done[h] {
			// A control plane marks the restore done only once every apiserver was ready after it:
			// the rest only has to be marked too.
			return e.finish(ctx, r, members, id)
		}
	}
	token := "installer-restore-" + id
	// onEach runs one etcd-restore.sh step on every control plane at once (what describe returns is
	// what a plan shows) and returns when all are done.
	onEach := func(describe func(m restoreMember) string, args func(m restoreMember) []string) error {
		byHost := map[*Host]restoreMember{}
		for _, m := range members {
			byHost[m.host] = m
		}
		return ForEachHost(ctx, hostsOf(members), r.Concurrency, func(ctx context.Context, h *Host) error {
			m := byHost[h]
			_, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.EtcdRestore.Args(args(m)...)}, []string{describe(m)})
			return err
		})
	}
	same := func(args ...string) func(restoreMember) []string { return func(restoreMember) []string { return args } }
	dir := EtcdRestoreDir + "/" + id

	// While the cluster runs: the snapshot on every control plane, restored beside etcd's data.
	err = ForEachHost(ctx, hostsOf(members), r.Concurrency, func(ctx context.Context, h *Host) error {
		_, err := h.ExecDescribed(ctx, ssh.Cmd{Args: scripts.EtcdRestore.Args("receive", id, e.SHA256), Stdin: e.Snapshot},
			[]string{fmt.Sprintf("copy the snapshot (%d bytes, sha256 %s) to %s/snapshot.db", len(e.Snapshot), short16(e.SHA256), dir)})
		if err != nil {
			return fmt.Errorf("copy the snapshot: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = onEach(func(m restoreMember) string {
		return "restore it into " + dir + "/data as member " + m.name + " (" + m.peer + ") of " + initial
	}, func(m restoreMember) []string { return []string{"prepare", id, m.name, initial, m.peer, token} })
	if err != nil {
		return err
	}
	// From here the API is down until every apiserver is back.
	timeout := strconv.Itoa(int(e.Timeout.Seconds()))
	if !r.DryRun {
		r.Log.Warn("etcd restore: stopping the control plane on every control plane; the API is down until the restore completes", "id", id)
	}
	err = onEach(func(restoreMember) string {
		return "stop the kubelet, etcd, kube-apiserver, kube-controller-manager and kube-scheduler (their manifests moved to " + dir + "/manifests)"
	}, same("stop", id, timeout))
	if err != nil {
		return e.interrupted(err, id)
	}
	err = onEach(func(restoreMember) string {
		return "move " + constants.EtcdDataDir + "/member to " + dir + "/before/ (kept) and the restored data in"
	}, same("swap", id))
	if err != nil {
		return e.interrupted(err, id)
	}
	if err := onEach(func(restoreMember) string { return "start etcd and the kubelet" }, same("start", id, "etcd")); err != nil {
		return e.interrupted(err, id)
	}
	err = r.fx.Observe(ctx, "every etcd member healthy", func(ctx context.Context) error {
		for _, m := range members {
			if _, err := m.host.etcdMembersHealthyN(ctx, e.Timeout, len(members)); err != nil {
				return hostErr(m.host.Name(), err)
			}
		}
		return nil
	})
	if err != nil {
		return e.interrupted(err, id)
	}
	if err := onEach(func(restoreMember) string { return "start kube-apiserver, kube-controller-manager and kube-scheduler" }, same("start", id, "rest")); err != nil {
		return e.interrupted(err, id)
	}
	err = r.fx.Observe(ctx, "every apiserver ready", func(ctx context.Context) error {
		for _, m := range members {
			if err := m.host.waitReadyz(ctx, 2*time.Second, e.Timeout); err != nil {
				return hostErr(m.host.Name(), err)
			}
		}
		return nil
	})
	if err != nil {
		return e.interrupted(err, id)
	}
	// Every apiserver was down: with keepalived-haproxy the VIP may move a few times as they
	// come back.
	if lb := newAPILB(r, "etcd restore", e.Timeout); lb != nil {
		if err := lb.settled(ctx, e.settle); err != nil {
			return e.interrupted(err, id)
		}
	}
	return e.finish(ctx, r, members, id)
}

// finish marks the restore done on every control plane and waits for every node to be Ready.
func (e EtcdRestore) finish(ctx context.Context, r *Run, members []restoreMember, id string) error {
	for _, m := range members {
		_, err := m.host.ExecDescribed(ctx, ssh.Cmd{Args: scripts.EtcdRestore.Args("finish", id)}, []string{"mark the restore done, remove its copy of the snapshot"})
		if err != nil {
			return hostErr(m.host.Name(), err)
		}
	}
	return r.fx.Observe(ctx, "every node Ready", func(ctx context.Context) error {
		c, err := r.client(ctx)
		if err != nil {
			return err
		}
		// The hosts that are nodes (a kubelet.conf): a host of the spec never joined is not waited for.
		var nodes []string
		for _, h := range r.All() {
			if slices.Contains(h.Facts.Cluster.Present, constants.KubeletConf) {
				nodes = append(nodes, h.Name())
			}
		}
		return c.NodesReady(ctx, nodes, false, e.Timeout)
	})
}

// interrupted adds to an error after the control plane stopped how to finish the restore.
func (e EtcdRestore) interrupted(err error, id string) error {
	return fmt.Errorf("%w (the restore %s stopped half-way and the API may be down: run etcd restore again with the same snapshot to finish it)", err, id)
}

// restoreID returns the ID of this snapshot's unfinished restore when a control plane has one (to
// resume it, with the control planes that finished it already), else a new one. An unfinished
// restore of another snapshot is refused.
func (e EtcdRestore) restoreID(ctx context.Context, cps []*Host) (string, map[string]bool, error) {
	suffix := "-" + short16(e.SHA256)
	steps := map[string]map[string]string{} // ID -> host -> step
	for _, h := range cps {
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.EtcdRestore.Args("status")})
		if err != nil {
			return "", nil, hostErr(h.Name(), fmt.Errorf("look for unfinished restores: %w", err))
		}
		for _, line := range strings.Split(strings.TrimSpace(string(res.Stdout)), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				if steps[f[0]] == nil {
					steps[f[0]] = map[string]string{}
				}
				steps[f[0]][h.Name()] = f[1]
			}
		}
	}
	var ours, others []string
	for _, id := range slices.Sorted(maps.Keys(steps)) {
		unfinished := false
		for _, step := range steps[id] {
			unfinished = unfinished || step != "done"
		}
		switch {
		case !unfinished:
		case strings.HasSuffix(id, suffix):
			ours = append(ours, id)
		default:
			for _, h := range slices.Sorted(maps.Keys(steps[id])) {
				others = append(others, fmt.Sprintf("%s on %s (%s)", id, h, steps[id][h]))
			}
		}
	}
	switch {
	case len(others) > 0:
		return "", nil, &guard.Refusal{Reason: "an unfinished restore of another snapshot is on the control planes: " + strings.Join(others, "; "),
			Fix: "Finish it first: run etcd restore with the snapshot whose SHA-256 starts with that ID's last part"}
	case len(ours) > 1:
		return "", nil, &guard.Refusal{Reason: "several unfinished restores of this snapshot: " + strings.Join(ours, ", "),
			Fix: "Look at " + EtcdRestoreDir + " on the control planes and keep one"}
	case len(ours) == 1:
		done := map[string]bool{}
		for h, step := range steps[ours[0]] {
			done[h] = step == "done"
		}
		return ours[0], done, nil
	}
	return e.now().UTC().Format("20060102T150405Z") + suffix, nil, nil
}

// checkMembership refuses a restore that would drop an etcd member: the restored cluster is made of
// the spec's control planes, so a member running elsewhere (etcd is asked on the first control plane
// that answers) must be one of them. When no etcd answers (the disaster a restore is for) there is
// nothing to compare, and the spec is the cluster.
func checkMembership(ctx context.Context, r *Run, members []restoreMember) error {
	for _, m := range members {
		res, err := m.host.Query(ctx, ssh.Cmd{Args: scripts.Etcd.Args("member-list")})
		if err != nil {
			continue
		}
		running, err := parseEtcdMembers(string(res.Stdout))
		if err != nil {
			continue
		}
		var foreign []string
		for _, rm := range running {
			found := false
			for _, want := range members {
				found = found || rm.Name == want.name || slices.Contains(rm.PeerURLs, want.peer)
			}
			if !found {
				foreign = append(foreign, fmt.Sprintf("%s (%s)", rm.Name, strings.Join(rm.PeerURLs, ",")))
			}
		}
		if len(foreign) > 0 {
			return &guard.Refusal{Reason: fmt.Sprintf("etcd (asked on %s) has members that are not control planes of the spec: %s; the restored cluster would drop them", m.host.Name(), strings.Join(foreign, "; ")),
				Fix: "Add those hosts to the spec as control planes, or remove the members (etcdctl member remove) if they are gone for good"}
		}
		return nil
	}
	r.Log.Warn("etcd restore: no etcd answers, so its members cannot be compared with the spec's control planes")
	return nil
}

// manifestMember reads the member's name and peer URL from h's etcd manifest: in the static pod
// directory, or in the restore's own directory once an interrupted run stopped h.
func manifestMember(ctx context.Context, h *Host, id string) (restoreMember, error) {
	var data []byte
	var err error
	for _, p := range []string{constants.EtcdManifest, EtcdRestoreDir + "/" + id + "/manifests/etcd.yaml"} {
		if data, err = h.ReadFile(ctx, p); err == nil {
			break
		}
	}
	if err != nil {
		return restoreMember{}, fmt.Errorf("no etcd manifest (%s): this control plane has no local etcd member to restore", constants.EtcdManifest)
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(data, &pod); err != nil || len(pod.Spec.Containers) == 0 {
		return restoreMember{}, fmt.Errorf("etcd manifest does not parse: %v", err)
	}
	m := restoreMember{host: h}
	for _, arg := range pod.Spec.Containers[0].Command {
		if v, ok := strings.CutPrefix(arg, "--name="); ok {
			m.name = v
		}
		if v, ok := strings.CutPrefix(arg, "--initial-advertise-peer-urls="); ok {
			m.peer = v
		}
	}
	if m.name == "" || m.peer == "" || strings.ContainsAny(m.name+m.peer, ", =") {
		return restoreMember{}, fmt.Errorf("etcd manifest: no usable --name (%q) and --initial-advertise-peer-urls (%q)", m.name, m.peer)
	}
	return m, nil
}

func hostsOf(members []restoreMember) []*Host {
	out := make([]*Host, len(members))
	for i, m := range members {
		out[i] = m.host
	}
	return out
}

// short16 is the first 16 hex digits of a SHA-256: a restore's ID ends with it.
func short16(sum string) string {
	if len(sum) < 16 {
		return sum
	}
	if _, err := hex.DecodeString(sum[:16]); err != nil {
		return sum
	}
	return sum[:16]
}
