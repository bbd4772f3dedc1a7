package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/lab/mirror"
	"installer.dev/installer/pkg/versions"
)

func newBuildCmd() *cobra.Command {
	var (
		k8s      []string
		cacheDir string
		binOnly  bool
		only     []string
		parallel int
	)
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Build (or find cached) every lab binary and image of the pinned Kubernetes releases",
		Long: `Builds the lab's components from Go modules into the cache (default ~/.cache/installer-lab):
the Kubernetes commands, etcd, CoreDNS, crictl, CNI plugins, flannel, runc, the lab CCM and stand-ins,
then the images and the binary mirror's files. Cached results return in seconds.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case len(k8s) == 0:
				// What `make lab` needs: the default release's set.
				k8s = []string{versions.Default().Kubernetes}
			case len(k8s) == 1 && k8s[0] == "all":
				k8s = nil
				for _, r := range versions.Releases() {
					k8s = append(k8s, r.Kubernetes)
				}
			}
			b := build.New(build.Options{CacheDir: cacheDir, Parallel: parallel, Log: cmd.ErrOrStderr()})
			if len(only) > 0 {
				// What unit tests need (make test): just these binaries, nothing else.
				for _, v := range k8s {
					for _, n := range only {
						p, err := b.Binary(cmd.Context(), n, v)
						if err != nil {
							return err
						}
						fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", v, n, p)
					}
				}
				return nil
			}
			for _, v := range k8s {
				start := time.Now()
				set, err := b.Set(cmd.Context(), v)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "binaries %s: %d in %s\n", v, len(set.Paths), time.Since(start).Round(time.Millisecond))
			}
			if binOnly {
				return nil
			}
			// Debian's containerd, unpacked: the e2e checks run it privately to pull through hosts.toml.
			if _, err := b.DebianPackage(cmd.Context(), "containerd"); err != nil {
				return err
			}
			return buildArtifacts(cmd, cacheDir, k8s)
		},
	}
	cmd.Flags().StringSliceVar(&k8s, "k8s", nil, "Kubernetes versions to build, or all (default: the default release, "+versions.Default().Kubernetes+")")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "cache directory (default ~/.cache/installer-lab)")
	cmd.Flags().StringSliceVar(&only, "only", nil, "build only these binaries (e.g. kubeadm,etcd,kube-apiserver) and print their paths")
	cmd.Flags().BoolVar(&binOnly, "binaries-only", false, "build binaries only, no images or mirror files")
	cmd.Flags().IntVarP(&parallel, "parallel", "p", 2, "go build -p")
	return cmd
}

// buildArtifacts builds the images and the binary mirror's files on top of the binaries.
func buildArtifacts(cmd *cobra.Command, cacheDir string, k8s []string) error {
	start := time.Now()
	c, err := mirror.Prepare(cmd.Context(), mirror.Options{CacheDir: cacheDir, Releases: k8s, Log: cmd.ErrOrStderr()})
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "images: %d, mirror files: %d in %s\nimage layout: %s\nmirror files: %s\n",
		len(c.Images), len(c.Files), time.Since(start).Round(time.Millisecond), c.LayoutDir, c.FilesDir)
	return nil
}
