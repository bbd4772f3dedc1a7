package phases

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/kubeapi"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/ssh"
)

// applyEffects makes the changes and counts them in the journal.
type applyEffects struct {
	j   *journal
	log *slog.Logger
}

func (applyEffects) DryRun() bool { return false }

func (e applyEffects) Exec(ctx context.Context, h *Host, cmd ssh.Cmd, _ ...string) (ssh.Result, error) {
	if h.conn == nil {
		return ssh.Result{}, errNotConnected
	}
	cmd.Sudo = true
	e.j.change(1)
	res, err := h.conn.Run(ctx, cmd)
	h.logCommand("exec", cmd, res, err)
	return res, err
}

func (e applyEffects) Upload(ctx context.Context, h *Host, f manifests.File, mode fs.FileMode, observed *ssh.FileState) (bool, error) {
	if h.conn == nil {
		return false, errNotConnected
	}
	changed, err := h.conn.WriteFile(ctx, ssh.File{Path: f.Path, Content: f.Content, Mode: mode, Owner: "root:root", Sudo: true, Sensitive: f.Sensitive, NoReplace: f.NoReplace, Observed: observed})
	if changed {
		e.j.change(1)
	}
	// No hash of a secret file: a short secret in a known template could be recovered from it.
	sum := "sha256 " + f.SHA256()[:12]
	if f.Sensitive {
		sum = "secret"
	}
	h.logf("upload %s (mode %04o, %s): changed=%v err=%v", f.Path, mode, sum, changed, err)
	var refused *ssh.ReplaceRefusedError
	if errors.As(err, &refused) {
		return false, exitcode.New(exitcode.Refused, err)
	}
	if err != nil {
		return false, fmt.Errorf("upload %s: %w", f.Path, err)
	}
	return changed, nil
}

// bootstrapTokenCmd makes kubeadm generate the token and print it: it never appears in a command
// line on the host.
var bootstrapTokenCmd = ssh.Cmd{Args: []string{"kubeadm", "token", "create", "--ttl", "30m", "--description", "installer join"}, Sensitive: true}

func (e applyEffects) BootstrapToken(ctx context.Context, h *Host) (string, error) {
	res, err := e.Exec(ctx, h, bootstrapTokenCmd)
	if err != nil {
		return "", fmt.Errorf("create a bootstrap token on %s: %w", h.Name(), err)
	}
	token := strings.TrimSpace(string(res.Stdout))
	if err := kubeadm.ValidateToken(token); err != nil {
		return "", fmt.Errorf("kubeadm token create on %s printed no valid token", h.Name())
	}
	return token, nil
}

func (e applyEffects) Apply(ctx context.Context, api *clusterAPI, f manifests.File) (int, error) {
	c, err := api.get(ctx)
	if err != nil {
		return 0, err
	}
	objs, err := kubeapi.Decode(f.Content)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Path, err)
	}
	n, err := c.Apply(ctx, f.Content)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", f.Path, err)
	}
	e.j.change(n)
	e.j.did(PlannedAction{Host: ClusterHost, Command: applyFile(f.Path, len(objs))})
	e.log.Debug("applied", "file", f.Path, "changed objects", n)
	return n, nil
}

func (e applyEffects) Cordon(ctx context.Context, api *clusterAPI, node, by string) error {
	c, err := api.get(ctx)
	if err != nil {
		return err
	}
	e.j.change(1)
	if err := c.Cordon(ctx, node, by); err != nil {
		return err
	}
	e.performed(node, cordonNode(node))
	return nil
}

func (e applyEffects) Uncordon(ctx context.Context, api *clusterAPI, node string) error {
	c, err := api.get(ctx)
	if err != nil {
		return err
	}
	e.j.change(1)
	if err := c.Uncordon(ctx, node); err != nil {
		return err
	}
	e.performed(node, uncordonNode(node))
	return nil
}

func (e applyEffects) Drain(ctx context.Context, api *clusterAPI, node string, o kubeapi.DrainOptions) error {
	c, err := api.get(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	plan, err := c.Drain(ctx, node, o)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	e.j.change(1)
	e.performed(node, plan.Describe(node, o.Timeout), "seconds", time.Since(start).Seconds())
	return nil
}

func (e applyEffects) SetNodeMeta(ctx context.Context, api *clusterAPI, node, resourceVersion string, m kubeapi.NodeMeta, removedLabels, describe []string) error {
	c, err := api.get(ctx)
	if err != nil {
		return err
	}
	e.j.change(1)
	if err := c.SetNodeMeta(ctx, node, resourceVersion, m, removedLabels); err != nil {
		return err
	}
	for _, d := range describe {
		e.performed(node, "node "+node+": "+d)
	}
	return nil
}

func (e applyEffects) DeleteNode(ctx context.Context, api *clusterAPI, node string) error {
	c, err := api.get(ctx)
	if err != nil {
		return err
	}
	e.j.change(1)
	if err := c.DeleteNode(ctx, node); err != nil {
		return err
	}
	e.performed(node, deleteNode(node))
	return nil
}

func (e applyEffects) Spread(ctx context.Context, api *clusterAPI, namespace, name string) (bool, error) {
	c, err := api.get(ctx)
	if err != nil {
		return false, err
	}
	restarted, err := c.SpreadDeployment(ctx, namespace, name)
	if restarted {
		e.j.change(1)
	}
	return restarted, err
}

func (e applyEffects) SaveLocal(ls LocalState) error {
	if ls == nil {
		return nil
	}
	pending := ls.Pending()
	if len(pending) == 0 {
		return nil
	}
	e.j.change(len(pending))
	if err := ls.Save(); err != nil {
		return err
	}
	for _, p := range pending {
		e.performed(LocalHost, writeLocal(p))
	}
	return nil
}

func (e applyEffects) WriteLocal(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := writePrivate(path, data, true); err != nil {
		return err
	}
	e.j.change(1)
	e.performed(LocalHost, writeLocal(path))
	return nil
}

func (e applyEffects) RemoveLocal(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	e.j.change(1)
	if err := os.Remove(path); err != nil {
		return err
	}
	e.performed(LocalHost, removeLocal(path))
	return nil
}

// performed logs a cluster-API or state-directory change as a dry run plans it, and keeps it for
// Run.Performed.
func (e applyEffects) performed(host, what string, kv ...any) {
	e.j.did(PlannedAction{Host: host, Command: what})
	e.log.Info(what, append([]any{"host", host}, kv...)...)
}

func (applyEffects) Observe(ctx context.Context, _ string, fn func(ctx context.Context) error) error {
	return fn(ctx)
}

func (applyEffects) Then(ctx context.Context, _ *Host, _ string, fn func(ctx context.Context) error) error {
	return fn(ctx)
}

func (e applyEffects) Done(step string, start time.Time, kv ...any) {
	e.log.Info(step+" done", append(kv, "seconds", time.Since(start).Seconds())...)
}
