package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"installer.dev/installer/lab/mirror"
)

func newMirrorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "mirror", Short: "The lab's binary mirror and image registry"}
	cmd.AddCommand(newMirrorServeCmd())
	return cmd
}

func newMirrorServeCmd() *cobra.Command {
	var (
		opts               mirror.Options
		pidFile, readyFile string
		pinsFile           string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the binary mirror and the OCI registry on one address until stopped",
		Long: `Builds what is missing (cached: seconds), pushes every image into the registry, then listens on
--addr: /v2/ is the OCI registry, every other path the binary mirror (dl.k8s.io and GitHub release
layouts). --pins-file receives the SHA-256 of every file it serves (a lab spec's install.checksumsFile).
--ready-file is written once it listens, so a parent process can wait for it; SIGTERM stops it.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Log = cmd.ErrOrStderr()
			if err := mirror.WritePIDFile(pidFile); err != nil {
				return err
			}
			srv, err := mirror.Start(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if pinsFile != "" {
				if err := mirror.WritePins(pinsFile, srv.Content); err != nil {
					srv.Close()
					return err
				}
			}
			if readyFile != "" {
				if err := os.WriteFile(readyFile, []byte(srv.URL()+"\n"), 0o644); err != nil {
					srv.Close()
					return fmt.Errorf("ready file: %w", err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "serving on %s\n", srv.URL())
			return srv.Wait(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&opts.Addr, "addr", "127.0.0.1:5000", "listen address (the lab bridge address for hosts)")
	cmd.Flags().StringVar(&opts.CacheDir, "cache-dir", "", "cache directory (default ~/.cache/installer-lab)")
	cmd.Flags().StringSliceVar(&opts.Releases, "k8s", nil, "Kubernetes versions to serve (default: every supported release; lab up passes the lab's version and those after it)")
	cmd.Flags().StringVar(&pidFile, "pid-file", "", "write the process ID here")
	cmd.Flags().StringVar(&readyFile, "ready-file", "", "write the base URL here once listening")
	cmd.Flags().StringVar(&pinsFile, "pins-file", "", "write the SHA-256 pins of the served files here before listening is announced")
	return cmd
}
