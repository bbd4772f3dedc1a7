package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/render"
	"installer.dev/installer/pkg/state"
)

func (a *app) newRenderCommand() *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "render -o DIR",
		Short: "Write every file the installer would put on each host, offline",
		Long: `Works from the spec alone (host facts are assumed from the spec and defaults; plan uses real facts) and
touches no host. Writes DIR/hosts/<host>/kubeadm.yaml (kubeadm's documents for that host),
DIR/hosts/<host>/rootfs/<path> (every other file at its real path on the host) and DIR/cluster/
(what is applied to the cluster). Reads the PKI from the state directory and writes nothing there
(without one, the files show a throw-away PKI). Secrets are
masked: the bootstrap token shows as abcdef.0123456789abcdef, passwords and keys as <redacted>.`,
		Example: `  installer render -f cluster.yaml -o out/`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ls, err := a.loadSpecChecking(v1alpha1.CheckRenderInputs)
			if err != nil {
				return err
			}
			// Hosts marked remove are on their way out: the files are the cluster's without them.
			ls.Cluster = ls.Cluster.WithoutRemoved()
			return a.render(cmd.Context(), ls, outDir)
		},
	}
	cmd.Flags().StringVarP(&outDir, "output", "o", "", "output directory")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func (a *app) render(ctx context.Context, ls *loadedSpec, outDir string) error {
	spec := &ls.Cluster.Spec
	// What kubeadm and the kubelet would refuse is invalid input too, found before anything is written.
	if errs := kubeadm.CheckSpec(spec); len(errs) > 0 {
		return exitcode.New(exitcode.InvalidInput, &specErrors{path: ls.Path, errs: errs})
	}
	// render writes nothing into the state directory: without a PKI there, the files show a
	// throw-away one (the discovery hash and CA files then differ from what create will make). It
	// reads under the shared lock, so never a PKI that a running create is still writing.
	lock, err := state.AcquireShared(ls.StateDir)
	if err != nil {
		return err
	}
	defer func() { _ = lock.Release() }()
	local, err := state.LoadLocal(ls.StateDir, false)
	if err != nil {
		return err
	}
	bundle := local.PKI
	if bundle == nil {
		if bundle, err = pki.Generate(pki.Options{}); err != nil {
			return err
		}
		fmt.Fprintf(a.streams.Err, "note: %s has no PKI; rendered with a throw-away PKI (create generates the cluster's own)\n", local.Dir.PKI())
	}
	// A real token, as create would make: the files on disk show the placeholder instead (Display).
	token, err := kubeadm.GenerateToken()
	if err != nil {
		return err
	}
	inputs, err := loadInputs(ctx, ls, local, a.env.Getenv)
	if err != nil {
		return err
	}
	in := render.Input{Cluster: ls.Cluster, Facts: map[string]facts.Host{}, Token: token, CACertHashes: []string{bundle.DiscoveryHash()},
		Inputs: inputs, PKI: bundle}
	for _, h := range spec.Hosts {
		in.Facts[h.Name] = facts.Assumed(spec, h)
	}
	out, err := render.Render(in)
	if err != nil {
		return err
	}
	if err := render.Write(outDir, out); err != nil {
		return err
	}
	fmt.Fprintf(a.streams.Out, "rendered %d hosts into %s (secrets masked)\n", len(spec.Hosts), outDir)
	return nil
}
