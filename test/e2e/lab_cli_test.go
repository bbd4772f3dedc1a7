//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"installer.dev/installer/lab/images"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/versions"
)

// TestLabCLI drives the lab binary as a developer would: `lab up` with the mirror, status, ssh (exit
// codes pass through), cut/heal, and `lab down`, then the leak check.
func TestLabCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	l := openTestLab(t)
	bin := filepath.Join(t.TempDir(), "lab")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../../lab/cmd/lab").CombinedOutput(); err != nil {
		fatalf(t, "build lab: %v\n%s", err, out)
	}
	lab := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append(args, "--lab-dir", l.Dir())...)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		err := cmd.Run()
		if err != nil {
			t.Logf("lab %s stderr:\n%s", strings.Join(args, " "), stderr.String())
		}
		return out.String(), err
	}
	before := takeMachineSnapshot(t, l)
	start := time.Now()
	if out, err := lab("up", "-n", "2"); err != nil {
		fatalf(t, "lab up: %v\n%s", err, out)
	}
	t.Logf("MEASURE lab up -n 2 with the mirror (warm caches): %s", time.Since(start).Round(time.Millisecond))
	down := false
	t.Cleanup(func() {
		if !down {
			if _, err := lab("down"); err != nil {
				errorf(t, "lab down: %v", err)
			}
		}
	})

	c, err := v1alpha1.LoadFile(l.SpecFile())
	if err != nil {
		fatal(t, err)
	}
	c.ResolvePaths(filepath.Dir(l.SpecFile()), os.Getenv("HOME"))
	c.Default()
	if errs, _ := v1alpha1.Validate(c); len(errs) > 0 {
		fatalf(t, "spec with mirror does not validate: %v", errs.ToAggregate())
	}
	s := c.Spec
	mirrorURL := "http://172.30.0.1:5000"
	if s.Install.Source != v1alpha1.InstallBinary || s.Install.BinaryMirror != mirrorURL || s.Install.ArtifactMirror != mirrorURL {
		errorf(t, "spec install = %+v", s.Install)
	}
	for _, reg := range []string{"registry.k8s.io", "docker.io", "ghcr.io", "quay.io"} {
		if eps := s.Images.Mirrors[reg]; len(eps) != 1 || eps[0].URL != mirrorURL {
			errorf(t, "spec images.mirrors[%s] = %+v", reg, eps)
		}
	}
	if want := images.CCMImage(versions.Default().Kubernetes); s.CloudProvider.Name != v1alpha1.CloudCustom || s.CloudProvider.Image != want {
		errorf(t, "spec cloudProvider = %+v, want custom %s", s.CloudProvider, want)
	}

	out, err := lab("status")
	if err != nil || !strings.Contains(out, "cp1") || !strings.Contains(out, "w1") || strings.Count(out, "running") != 2 {
		errorf(t, "lab status: %v\n%s", err, out)
	}
	// The mirror answers on the bridge, reached from inside a host (registry and binary mirror).
	if out, err := lab("ssh", "w1", "curl -sf -o /dev/null -w '%{http_code}' "+mirrorURL+"/v2/"); err != nil || out != "200" {
		errorf(t, "registry from a host: %q %v", out, err)
	}
	if out, err := lab("ssh", "cp1", "sudo -n true && echo ok"); err != nil || strings.TrimSpace(out) != "ok" {
		errorf(t, "lab ssh cp1: %q %v", out, err)
	}
	_, err = lab("ssh", "cp1", "exit 3")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		errorf(t, "lab ssh exit status: %v, want 3", err)
	}
	if _, err := lab("hosts", "cut", "w1"); err != nil {
		fatal(t, err)
	}
	if out, _ := lab("status"); !strings.Contains(out, "cut") {
		errorf(t, "status after cut:\n%s", out)
	}
	if _, err := lab("ssh", "w1", "true"); err == nil {
		errorf(t, "w1 answers SSH while cut")
	}
	if _, err := lab("hosts", "heal", "w1"); err != nil {
		fatal(t, err)
	}
	if _, err := lab("ssh", "w1", "true"); err != nil {
		errorf(t, "w1 after heal: %v", err)
	}

	start = time.Now()
	if out, err := lab("down"); err != nil {
		fatalf(t, "lab down: %v\n%s", err, out)
	}
	down = true
	t.Logf("MEASURE lab down with the mirror: %s", time.Since(start).Round(time.Millisecond))
	if out, err := lab("status"); err != nil || !strings.Contains(out, "no lab is up") {
		errorf(t, "status after down: %v\n%s", err, out)
	}
	after := takeMachineSnapshot(t, l)
	checkLabStoreEmpty(t, l)
	compareMachineSnapshots(t, before, after)
}
