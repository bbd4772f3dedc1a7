// Command update-checksums writes pkg/versions/checksums.txt: the SHA-256 of every file the
// installer downloads, for every supported release and architecture, read from the checksum files
// upstream publishes beside its releases (dl.k8s.io's <file>.sha256, the GitHub releases'
// checksum files). Run it where dl.k8s.io and github.com are reachable (`make checksums`); review
// the diff like any other change of trust. With -verify it changes nothing and fails when the
// table misses a file of a supported release (the release build runs it).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/install"
	"installer.dev/installer/pkg/pins"
	"installer.dev/installer/pkg/versions"
)

func main() {
	var o options
	flag.StringVar(&o.binaryMirror, "binary-mirror", v1alpha1.DefaultBinaryMirror, "where kubeadm, kubelet and kubectl are published (dl.k8s.io's layout)")
	flag.StringVar(&o.artifactMirror, "artifact-mirror", v1alpha1.DefaultArtifactMirror, "where containerd, runc, crictl and the CNI plugins are published (GitHub's release layout)")
	flag.StringVar(&o.out, "o", "pkg/versions/checksums.txt", "the table to write (or, with -verify, to check)")
	arches := flag.String("arch", "amd64,arm64", "architectures, comma-separated")
	flag.BoolVar(&o.verify, "verify", false, "write nothing; fail if the table misses a file of a supported release")
	flag.Parse()
	o.arches = strings.Split(*arches, ",")
	if err := run(context.Background(), o, http.DefaultClient); err != nil {
		fmt.Fprintln(os.Stderr, "update-checksums:", err)
		os.Exit(1)
	}
}

type options struct {
	binaryMirror, artifactMirror, out string
	arches                            []string
	verify                            bool
}

// files lists every (path in upstream's layout, URL) the supported releases download.
func files(o options) ([][2]string, error) {
	var out [][2]string
	seen := map[string]bool{}
	for _, r := range versions.Releases() {
		s := &v1alpha1.ClusterSpec{KubernetesVersion: r.Kubernetes}
		s.Install = v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: o.binaryMirror, ArtifactMirror: o.artifactMirror}
		s.ContainerRuntime.Containerd = v1alpha1.Containerd{Source: v1alpha1.InstallBinary, Version: versions.Containerd().Containerd}
		for _, arch := range o.arches {
			urls, err := install.Downloads(s, arch)
			if err != nil {
				return nil, err
			}
			for _, u := range urls {
				p := install.ReleasePath(s, u)
				if !seen[p] {
					seen[p] = true
					out = append(out, [2]string{p, u})
				}
			}
		}
	}
	return out, nil
}

func run(ctx context.Context, o options, client *http.Client) error {
	want, err := files(o)
	if err != nil {
		return err
	}
	if o.verify {
		data, err := os.ReadFile(o.out)
		if err != nil {
			return err
		}
		table, err := pins.Parse(data)
		if err != nil {
			return fmt.Errorf("%s: %w", o.out, err)
		}
		var missing []string
		for _, f := range want {
			if _, ok := table[f[0]]; !ok {
				missing = append(missing, f[0])
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s pins %d of the %d files the supported releases download; missing (run make checksums where dl.k8s.io and github.com are reachable):\n  %s",
				o.out, len(want)-len(missing), len(want), strings.Join(missing, "\n  "))
		}
		return nil
	}
	table := pins.Table{}
	var errs []error
	for _, f := range want {
		digest, err := published(ctx, client, f[1])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		table[f[0]] = digest
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# SHA-256 of every file the installer downloads, per supported release and architecture, as\n")
	fmt.Fprintf(&b, "# \"<sha256>  <path in upstream's layout>\". Written by `make checksums` (go run ./hack/update-checksums)\n")
	fmt.Fprintf(&b, "# from the checksum files published at %s and %s; do not edit by hand.\n", o.binaryMirror, o.artifactMirror)
	fmt.Fprintf(&b, "# The installer trusts these, and install.checksumsFile, over anything a mirror serves.\n")
	b.Write(table.Format())
	return os.WriteFile(o.out, b.Bytes(), 0o644)
}

// published reads the digest upstream publishes for the file at url.
func published(ctx context.Context, client *http.Client, url string) (string, error) {
	sums := install.ChecksumURL(url)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, sums, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", sums, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("%s: %w", sums, err)
	}
	digest, err := install.PickChecksum(data, path.Base(url))
	if err != nil {
		return "", fmt.Errorf("%s: %w", sums, err)
	}
	return digest, nil
}
