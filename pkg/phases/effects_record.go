package phases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/ssh"
)

// recordEffects is plan and --dry-run: it reads what it needs (a file's checksum, the pods a drain
// would evict) and records every change in the journal instead of making it.
type recordEffects struct {
	j   *journal
	log *slog.Logger
}

func (recordEffects) DryRun() bool { return true }

func (e recordEffects) Exec(_ context.Context, h *Host, cmd ssh.Cmd, describe ...string) (ssh.Result, error) {
	if h.conn == nil {
		return ssh.Result{}, errNotConnected
	}
	if len(describe) == 0 {
		describe = []string{ssh.ShowCommand(cmd)}
	}
	for _, d := range describe {
		e.j.plan(PlannedAction{Host: h.Name(), Command: d}, true)
	}
	return ssh.Result{}, nil
}

func (e recordEffects) Upload(ctx context.Context, h *Host, f manifests.File, mode fs.FileMode, observed *ssh.FileState) (bool, error) {
	var st ssh.FileState
	if observed != nil {
		st = *observed
	} else {
		var err error
		if st, err = h.fileState(ctx, f.Path); err != nil {
			return false, err
		}
	}
	if st.Exists && st.SHA256 == f.SHA256() && st.Mode == mode {
		return false, nil
	}
	if st.Exists && st.SHA256 != f.SHA256() && f.NoReplace {
		return false, exitcode.New(exitcode.Refused, &ssh.ReplaceRefusedError{Host: h.Name(), Path: f.Path})
	}
	e.j.plan(PlannedAction{Host: h.Name(), File: &PlannedFile{Path: f.Path, Mode: mode, SHA256: f.SHA256(), Display: f.Display(), Sensitive: f.Sensitive}}, true)
	return true, nil
}

func (e recordEffects) BootstrapToken(ctx context.Context, h *Host) (string, error) {
	if _, err := e.Exec(ctx, h, bootstrapTokenCmd, ssh.Quote(bootstrapTokenCmd.Args)); err != nil {
		return "", err
	}
	return manifests.PlaceholderToken, nil
}

func (e recordEffects) Apply(_ context.Context, _ *clusterAPI, f manifests.File) (int, error) {
	objs, err := kubeapi.Decode(f.Content)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Path, err)
	}
	e.j.plan(PlannedAction{Host: ClusterHost, Command: applyFile(f.Path, len(objs)),
		File: &PlannedFile{Path: "cluster/" + f.Path, Mode: f.Mode, SHA256: f.SHA256(), Display: f.Display(), Sensitive: f.Sensitive}}, true)
	return len(objs), nil
}

func (e recordEffects) Cordon(_ context.Context, _ *clusterAPI, node, _ string) error {
	e.j.plan(PlannedAction{Host: node, Command: cordonNode(node)}, true)
	return nil
}

func (e recordEffects) Uncordon(_ context.Context, _ *clusterAPI, node string) error {
	e.j.plan(PlannedAction{Host: node, Command: uncordonNode(node)}, true)
	return nil
}

// Drain lists the pods from kubeapi.PlanDrain, the classification the real drain acts on, and
// refuses where it would.
func (e recordEffects) Drain(ctx context.Context, api *clusterAPI, node string, o kubeapi.DrainOptions) error {
	c, err := api.get(ctx)
	if err != nil {
		return err
	}
	p, err := c.PlanDrain(ctx, node, o.Force)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	e.j.plan(PlannedAction{Host: node, Command: p.Describe(node, o.Timeout)}, true)
	return nil
}

func (e recordEffects) SetNodeMeta(_ context.Context, _ *clusterAPI, node, _ string, _ kubeapi.NodeMeta, _, describe []string) error {
	for _, d := range describe {
		e.j.plan(PlannedAction{Host: node, Command: "node " + node + ": " + d}, false)
	}
	e.j.change(1)
	return nil
}

func (e recordEffects) DeleteNode(_ context.Context, _ *clusterAPI, node string) error {
	e.j.plan(PlannedAction{Host: node, Command: deleteNode(node)}, true)
	return nil
}

func (e recordEffects) Spread(_ context.Context, _ *clusterAPI, namespace, name string) (bool, error) {
	e.j.plan(PlannedAction{Host: ClusterHost, Command: fmt.Sprintf("restart deployment %s/%s if its replicas share one node", namespace, name)}, true)
	return true, nil
}

func (e recordEffects) SaveLocal(ls LocalState) error {
	if ls == nil {
		return nil
	}
	for _, p := range ls.Pending() {
		e.j.plan(PlannedAction{Host: LocalHost, Command: writeLocal(p)}, true)
	}
	return nil
}

func (e recordEffects) WriteLocal(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	e.j.plan(PlannedAction{Host: LocalHost, Command: writeLocal(path)}, true)
	return nil
}

func (e recordEffects) RemoveLocal(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	e.j.plan(PlannedAction{Host: LocalHost, Command: removeLocal(path)}, true)
	return nil
}

func (e recordEffects) Observe(_ context.Context, what string, _ func(ctx context.Context) error) error {
	e.log.Debug("dry run: not observed (it depends on changes only recorded)", "step", what)
	return nil
}

func (e recordEffects) Then(_ context.Context, h *Host, what string, _ func(ctx context.Context) error) error {
	e.j.plan(PlannedAction{Host: h.Name(), Command: what}, false)
	return nil
}

func (e recordEffects) Done(step string, _ time.Time, kv ...any) {
	e.log.Info(step+" would run (dry run)", kv...)
}

// How the cluster-API and state-directory changes read in plans, logs and Run.Performed.
func cordonNode(node string) string   { return "cordon node " + node }
func uncordonNode(node string) string { return "uncordon node " + node }
func deleteNode(node string) string   { return "delete node " + node }
func applyFile(path string, objs int) string {
	return fmt.Sprintf("server-side apply cluster/%s (%d objects)", path, objs)
}
func writeLocal(path string) string  { return "write " + path }
func removeLocal(path string) string { return "remove " + path }
