package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/term"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/phases"
	"installer.dev/installer/pkg/ssh"
	"installer.dev/installer/pkg/state"
)

// session is one command's run over hosts: the lock, the connections and the log files, released
// together.
type session struct {
	Run     *phases.Run
	local   *state.Local
	pool    *ssh.Pool
	lock    *state.Lock
	logs    []io.Closer
	LogDir  string
	started time.Time
}

func (s *session) Close() {
	if s.pool != nil {
		_ = s.pool.Close()
	}
	for _, l := range s.logs {
		_ = l.Close()
	}
	_ = s.lock.Release()
}

// startSession takes the state directory's lock and prepares everything a workflow needs that can
// be prepared locally: the PKI (generated in memory for a new cluster when generatePKI is set), the
// stable secrets, the renderers' inputs (local files, fetched and verified manifests, credentials),
// the SSH pool and one log file per host of the run. The run changes targets (every host of the
// spec when empty) and only reads from readOnly; hosts in neither are not part of it and get no log.
func (a *app) startSession(ctx context.Context, ls *loadedSpec, command string, targets, readOnly []string, dryRun, generatePKI bool) (*session, error) {
	lock, err := state.Acquire(ls.StateDir)
	if err != nil {
		return nil, err
	}
	s := &session{lock: lock, started: time.Now()}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	// Nothing is generated into the state directory here: a PKI or secret this run needs and the
	// directory lacks is made in memory, and saved only once the identity phase has proven the
	// hosts hold no other cluster.
	local, err := state.LoadLocal(ls.StateDir, generatePKI)
	if err != nil {
		return nil, err
	}
	inputs, err := loadInputs(ctx, ls, local, a.env.Getenv)
	if err != nil {
		return nil, err
	}

	r, err := phases.NewRun(ls.Cluster, targets, readOnly...)
	if err != nil {
		return nil, exitcode.New(exitcode.InvalidInput, err)
	}
	r.StateDir = ls.StateDir
	r.PKI, r.PKIGenerated, r.Local = local.PKI, local.PKIGenerated, local
	s.local = local
	r.Inputs = inputs
	r.DryRun = dryRun
	r.Concurrency = a.global.Concurrency
	r.Log = a.log
	if a.global.LogFormat == "json" {
		r.Progress = &phases.SlogProgress{Log: a.log}
	} else {
		r.Progress = phases.NewLineProgress(a.streams.Err, a.global.Verbose > 0)
	}

	opts := ssh.Options{Logger: a.log, Getenv: a.env.Getenv, Dial: a.env.Dial}
	if a.global.Verbose > 0 {
		opts.Output = a.streams.Err
	}
	if f, ok := a.streams.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		opts.Prompt = func(prompt string) (string, error) {
			fmt.Fprint(a.streams.Err, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(a.streams.Err)
			return string(b), err
		}
	}
	s.pool = ssh.NewPool(opts)
	spec := &ls.Cluster.Spec
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) {
		return s.pool.Get(ctx, sshConfig(spec, h, a.env.Getenv("SSH_AUTH_SOCK") != ""))
	}
	s.Run = r

	if s.LogDir, err = state.RunLogDir(ls.StateDir, command, s.started); err != nil {
		return nil, err
	}
	for _, h := range r.All() {
		f, err := os.OpenFile(filepath.Join(s.LogDir, h.Name()+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("host log: %w", err)
		}
		s.logs = append(s.logs, f)
		h.SetLog(f)
	}
	ok = true
	return s, nil
}

// runName is a run's name in its log directory and lock: the command, and "--dry-run" for a dry run.
func runName(command string, dryRun bool) string {
	if dryRun {
		return command + " --dry-run"
	}
	return command
}

// sshConfig fills the SSH client's configuration from the spec (spec.ssh merged with the host's).
// spec.ssh.agent means "use the agent when there is one": it defaults to true, so it must not fail
// on machines without SSH_AUTH_SOCK.
func sshConfig(spec *v1alpha1.ClusterSpec, h v1alpha1.Host, agentAvailable bool) ssh.Config {
	e := spec.EffectiveSSH(h)
	cfg := ssh.Config{
		Name: h.Name, Address: h.Address, Port: int(e.Port), User: e.User,
		KeyFile: e.KeyFile, PassphraseEnv: e.PassphraseEnv, PasswordEnv: e.PasswordEnv,
		Agent: e.Agent != nil && *e.Agent && agentAvailable, KnownHostsFile: e.KnownHostsFile, HostKeyPolicy: ssh.HostKeyPolicy(e.HostKeyPolicy),
	}
	if b := e.Bastion; b != nil {
		cfg.Bastion = &ssh.BastionConfig{Address: b.Address, Port: int(b.Port), User: b.User, KeyFile: b.KeyFile, PassphraseEnv: e.PassphraseEnv}
	}
	return cfg
}

// loadInputs prepares the renderers' inputs with the state's stable secrets: keepalived's VRRP
// password (generated in memory when missing) and the key of the static pods' config hash.
func loadInputs(ctx context.Context, ls *loadedSpec, local *state.Local, getenv func(string) string) (manifests.Inputs, error) {
	vrrp, err := local.Secret("vrrp-password", manifests.NewVRRPPassword)
	if err != nil {
		return manifests.Inputs{}, err
	}
	hashKey, err := configHashKey(local)
	if err != nil {
		return manifests.Inputs{}, err
	}
	inputs, err := manifests.LoadInputs(ctx, &ls.Cluster.Spec, manifests.LoadOptions{Getenv: getenv, VRRPPassword: vrrp, HashKey: hashKey})
	if err != nil {
		return manifests.Inputs{}, exitcode.New(exitcode.InvalidInput, err)
	}
	return inputs, nil
}

// configHashKey keys the static pods' config-hash annotations (manifests.Inputs.HashKey): the key a
// state directory of an earlier release kept in secrets/config-hash-key, else one derived from the
// cluster CA's key, which `state recover` brings back with the PKI so the annotations stay the same.
// Without a PKI (reset, kubeconfig: they render no pods) there is none.
func configHashKey(local *state.Local) ([]byte, error) {
	stored, ok, err := local.Stored(configHashKeySecret)
	if err != nil || ok {
		return []byte(stored), err
	}
	if local.PKI == nil {
		return nil, nil
	}
	return local.PKI.DeriveKey(configHashKeySecret), nil
}

const configHashKeySecret = "config-hash-key"

// execute runs a workflow and prints the closing summary. A lock held by another run is exit 1.
func (a *app) execute(ctx context.Context, s *session, list []phases.Phase) error {
	timings, err := phases.Execute(ctx, s.Run, list)
	phases.Summary(a.streams.Err, timings, time.Since(s.started))
	fmt.Fprintf(a.streams.Err, "host logs: %s\n", s.LogDir)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) && exitcode.Of(err) != exitcode.Interrupted {
		err = exitcode.New(exitcode.Interrupted, err)
	}
	return err
}
