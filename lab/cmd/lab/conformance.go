package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/lab/conformance"
	"installer.dev/installer/lab/images"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/versions"
)

func newConformanceCmd() *cobra.Command {
	var (
		k8s, cacheDir, kubeconfig, registry, outDir string
		buildOnly, noPush, verbose                  bool
		opts                                        conformance.Options
	)
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "Run the kubeadm suite, then the [Conformance] tests, against the lab cluster",
		Long: `Builds (once, cached) e2e.test, e2e_kubeadm.test, ginkgo and the e2e test images for the
cluster's Kubernetes version, pushes the images into the lab registry, then runs through ginkgo
(--provider skeleton): the kubeadm suite, the [Conformance] specs in parallel (--nodes), and the
[Serial] ones alone. JUnit reports, ginkgo logs and summary.{txt,json} go to --out (default
.lab/conformance); the summary is printed; any failure exits non-zero.

Against another cluster: --kubeconfig FILE --no-push (its nodes pull the images from
registry.k8s.io) and --k8s its version.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			labDir, _ := cmd.Flags().GetString("lab-dir")
			if labDir == "" {
				root, err := repoRoot()
				if err != nil {
					return err
				}
				labDir = filepath.Join(root, ".lab")
			}
			var spec *v1alpha1.Cluster
			if s, err := v1alpha1.LoadFile(filepath.Join(labDir, "cluster.yaml")); err == nil {
				spec = s
			} else if !errors.Is(err, os.ErrNotExist) && !buildOnly {
				return fmt.Errorf("lab spec: %w", err)
			}
			if k8s == "" && spec != nil {
				k8s = spec.Spec.KubernetesVersion
			}
			if k8s == "" {
				k8s = versions.Default().Kubernetes
			}
			if registry == "" && spec != nil {
				if m := spec.Spec.Images.Mirrors["registry.k8s.io"]; len(m) > 0 {
					registry = m[0].URL
				}
			}
			log := cmd.ErrOrStderr()
			bins := build.New(build.Options{CacheDir: cacheDir, Log: log})
			start := time.Now()
			set, err := bins.TestBinaries(ctx, k8s)
			if err != nil {
				return err
			}
			kubectl, err := bins.Binary(ctx, "kubectl", k8s)
			if err != nil {
				return err
			}
			imgs := images.New(images.Options{CacheDir: cacheDir, Binaries: bins, Log: log})
			built, err := imgs.Conformance(ctx, k8s)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "conformance %s: %d binaries, %d test images in %s\n", k8s, len(set.Paths), len(built), time.Since(start).Round(time.Millisecond))
			if buildOnly {
				for _, n := range []string{build.E2ETest, build.E2EKubeadmTest, build.Ginkgo} {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", n, set.Path(n))
				}
				return nil
			}
			if !noPush {
				if registry == "" {
					return errors.New("no lab registry: the lab spec has no registry.k8s.io mirror; pass --registry URL or --no-push")
				}
				layoutDir, err := imgs.LayoutDir()
				if err != nil {
					return err
				}
				t := time.Now()
				if err := conformance.PushImages(ctx, layoutDir, registry, built); err != nil {
					return err
				}
				fmt.Fprintf(log, "conformance: %d test images pushed to %s in %s\n", len(built), registry, time.Since(t).Round(time.Millisecond))
			}
			if kubeconfig == "" {
				kubeconfig = filepath.Join(labDir, "state", "admin.conf")
			}
			if outDir == "" {
				outDir = filepath.Join(labDir, "conformance")
			}
			opts.Kubeconfig, opts.OutDir, opts.Log = kubeconfig, outDir, log
			opts.E2ETest, opts.E2EKubeadmTest, opts.Ginkgo, opts.Kubectl = set.Path(build.E2ETest), set.Path(build.E2EKubeadmTest), set.Path(build.Ginkgo), kubectl
			if verbose {
				opts.Output = log
			}
			sum, runErr := conformance.Run(ctx, opts)
			if sum != nil && len(sum.Results) > 0 {
				fmt.Fprintln(cmd.OutOrStdout())
				if err := sum.Write(cmd.OutOrStdout()); err != nil {
					return err
				}
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&k8s, "k8s", "", "Kubernetes version of the suites (default: the lab spec's, else "+versions.Default().Kubernetes+")")
	f.StringVar(&cacheDir, "cache-dir", "", "cache directory (default ~/.cache/installer-lab)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig of the cluster under test (default: <lab-dir>/state/admin.conf)")
	f.StringVar(&registry, "registry", "", "registry to push the test images to (default: the lab spec's registry.k8s.io mirror)")
	f.StringVar(&outDir, "out", "", "directory for JUnit reports, logs and the summary (default: <lab-dir>/conformance)")
	f.BoolVar(&buildOnly, "build-only", false, "build (or find cached) the binaries and test images, run nothing")
	f.BoolVar(&noPush, "no-push", false, "do not push the test images (a cluster that pulls from registry.k8s.io itself)")
	f.BoolVar(&verbose, "verbose", false, "stream ginkgo's output (it always goes to <out>/<run>.log)")
	f.StringSliceVar(&opts.Suites, "suites", nil, "suites to run, in order: kubeadm, conformance (default both)")
	f.StringVar(&opts.Focus, "focus", "", "only specs matching this regexp (ginkgo --focus), e.g. a quick run")
	f.StringVar(&opts.Skip, "skip", "", "also skip specs matching this regexp (ginkgo --skip)")
	f.IntVar(&opts.Nodes, "nodes", 3, "parallel ginkgo processes for the parallel conformance run")
	f.DurationVar(&opts.Timeout, "timeout", 6*time.Hour, "time limit of each ginkgo run")
	return addLabDirFlag(cmd)
}
