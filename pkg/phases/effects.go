package phases

import (
	"context"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/ssh"
)

// Effects makes every change of a run: on hosts (commands, uploads), in the cluster API (apply,
// cordon, drain, uncordon, node deletion, a restart), and in the local state directory. A run has
// one of two implementations, chosen once: applyEffects makes the changes, recordEffects (plan and
// --dry-run) reads what it needs, records each change in the journal instead of making it, and
// skips what only a made change could show. Phases never ask which one they have.
type Effects interface {
	// Exec runs a command that changes h. A recorder plans it, as the command or as the lines of
	// describe when given (what the command would remove, say), and reports success.
	Exec(ctx context.Context, h *Host, cmd ssh.Cmd, describe ...string) (ssh.Result, error)
	// Upload writes a file on h when its content or mode differ, and reports whether it did.
	// Upload writes f unless it is already in place; observed, when not nil, is the file's state
	// read moments ago (UploadAll reads a group's in one round trip), so it is not read again.
	Upload(ctx context.Context, h *Host, f manifests.File, mode fs.FileMode, observed *ssh.FileState) (bool, error)
	// BootstrapToken creates a short-lived join token on h; a recorder returns a placeholder.
	BootstrapToken(ctx context.Context, h *Host) (string, error)

	// Apply server-side applies a rendered manifest and returns how many objects changed.
	Apply(ctx context.Context, api *clusterAPI, f manifests.File) (int, error)
	// Cordon marks a node unschedulable, naming why; Uncordon undoes the installer's cordon.
	Cordon(ctx context.Context, api *clusterAPI, node, by string) error
	Uncordon(ctx context.Context, api *clusterAPI, node string) error
	// Drain evicts a node's pods (kubeapi.Drain); a recorder lists them from kubeapi.PlanDrain.
	Drain(ctx context.Context, api *clusterAPI, node string, o kubeapi.DrainOptions) error
	// DeleteNode deletes a Node object (gone already is fine).
	DeleteNode(ctx context.Context, api *clusterAPI, node string) error
	// SetNodeMeta sets a node's labels and taints (kubeapi.SetNodeMeta); describe is what changes,
	// a line each, for the plan.
	SetNodeMeta(ctx context.Context, api *clusterAPI, node, resourceVersion string, m kubeapi.NodeMeta, removedLabels, describe []string) error
	// Restart restarts a Deployment's pods when its replicas share one node and reports whether
	// it did (kubeapi.SpreadDeployment).
	Spread(ctx context.Context, api *clusterAPI, namespace, name string) (bool, error)

	// SaveLocal writes what the run generated into the state directory, one change per path.
	SaveLocal(ls LocalState) error
	// WriteLocal writes a file of the state directory (0600, atomically) when its content differs.
	WriteLocal(path string, data []byte) error
	// RemoveLocal removes a file of the state directory when it exists.
	RemoveLocal(path string) error

	// Observe runs fn, which reads what the run's changes made true (a wait for nodes, a version
	// read back, a kubeconfig copied back). A recorder made none of them: it skips fn and logs what.
	Observe(ctx context.Context, what string, fn func(ctx context.Context) error) error
	// Then runs fn, a step on h whose work depends on what earlier changes produced; a recorder
	// plans what instead.
	Then(ctx context.Context, h *Host, what string, fn func(ctx context.Context) error) error
	// Done logs that a step finished (a recorder: that it would run), with its duration.
	Done(step string, start time.Time, kv ...any)

	// DryRun reports whether changes are only recorded.
	DryRun() bool
}

// journal is what a run changed, or would change, per phase: counts for the summary, actions for
// the plan.
type journal struct {
	mu      sync.Mutex
	phase   string
	changes map[string]int
	planned []PlannedAction
	// performed are the cluster-API and state-directory changes a real run made, described as a
	// dry run plans them (host changes are in the hosts' logs).
	performed []PlannedAction
}

func newJournal() *journal { return &journal{changes: map[string]int{}} }

func (j *journal) setPhase(p string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.phase = p
}

func (j *journal) change(n int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.changes[j.phase] += n
}

// plan records an action; counted tells whether it is a change (a step that depends on others'
// results is shown, not counted).
func (j *journal) plan(a PlannedAction, counted bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	a.Phase = j.phase
	j.planned = append(j.planned, a)
	if counted {
		j.changes[j.phase]++
	}
}

func (j *journal) did(a PlannedAction) {
	j.mu.Lock()
	defer j.mu.Unlock()
	a.Phase = j.phase
	j.performed = append(j.performed, a)
}

func (j *journal) changesOf(phase string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.changes[phase]
}

// LocalHost is the "host" of planned actions on the operator's machine (the state directory).
const LocalHost = "(state directory)"

// ClusterHost is the "host" of planned actions on the cluster API.
const ClusterHost = "cluster"

// clusterAPI is a run's connection to the cluster API, opened on first use.
type clusterAPI struct {
	mu      sync.Mutex
	client  *kubeapi.Client
	connect func(ctx context.Context) (*kubeapi.Client, error)
}

// get returns the client, connecting on the first call.
func (a *clusterAPI) get(ctx context.Context) (*kubeapi.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != nil {
		return a.client, nil
	}
	if a.connect == nil {
		return nil, fmt.Errorf("no way to reach the cluster API")
	}
	c, err := a.connect(ctx)
	if err != nil {
		return nil, err
	}
	a.client = c
	return c, nil
}

// connectedAPI wraps a client that is already connected.
func connectedAPI(c *kubeapi.Client) *clusterAPI { return &clusterAPI{client: c} }
