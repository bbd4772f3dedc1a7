package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/exitcode"
	"installer.dev/installer/pkg/kubeadm"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/state"
)

// loadedSpec is a spec that passed every check that needs no network: strict decoding, defaults,
// validation and the local-inputs check.
type loadedSpec struct {
	Cluster  *v1alpha1.Cluster
	Path     string
	StateDir state.Dir
}

// loadSpec runs the whole offline pipeline. Every problem is reported at once, warnings go to stderr
// as "warning: <path>: <text>", and invalid input is exit code 2.
func (a *app) loadSpec() (*loadedSpec, error) { return a.loadSpecChecking(v1alpha1.CheckLocalInputs) }

// loadSpecChecking runs the pipeline with a chosen local-inputs check (render needs no SSH files).
func (a *app) loadSpecChecking(checkLocal func(*v1alpha1.Cluster) field.ErrorList) (*loadedSpec, error) {
	path := a.global.File
	c, err := v1alpha1.LoadFile(path)
	if err != nil {
		return nil, exitcode.New(exitcode.InvalidInput, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, exitcode.New(exitcode.InvalidInput, fmt.Errorf("spec path: %w", err))
	}
	c.Default()
	c.ResolvePaths(filepath.Dir(abs), a.env.Home)
	errs, warnings := v1alpha1.Validate(c)
	for _, w := range warnings {
		fmt.Fprintln(a.streams.Err, w.String())
	}
	if len(errs) == 0 {
		// What kubeadm or the kubelet would refuse (unknown keys in kubelet.config, ...), by spec path.
		errs = kubeadm.CheckSpec(&c.Spec)
	}
	if len(errs) == 0 {
		unused, err := manifests.UnusedOverrides(&c.Spec)
		if err != nil {
			return nil, exitcode.New(exitcode.InvalidInput, err)
		}
		for _, k := range unused {
			fmt.Fprintln(a.streams.Err, v1alpha1.Warning{Field: fmt.Sprintf("spec.images.overrides[%q]", k),
				Message: "names no image of Kubernetes " + c.Spec.KubernetesVersion + ", so it changes nothing (docs/versions.md lists each release's images)"}.String())
		}
	}
	if len(errs) == 0 {
		errs = checkLocal(c)
	}
	if len(errs) > 0 {
		return nil, exitcode.New(exitcode.InvalidInput, &specErrors{path: path, errs: errs})
	}
	dir := state.Dir(a.global.StateDir)
	if dir == "" {
		if dir, err = state.DefaultDir(c.Metadata.Name, a.env.Getenv, a.env.Home); err != nil {
			return nil, exitcode.New(exitcode.InvalidInput, err)
		}
	}
	return &loadedSpec{Cluster: c, Path: path, StateDir: dir}, nil
}

// loadSpecForHosts additionally checks what a command that connects needs from the environment
// (password and cloud credential variables). A host marked remove is apply's alone: every other
// connecting command refuses the spec before dialing anything.
func (a *app) loadSpecForHosts() (*loadedSpec, error) {
	ls, err := a.loadSpecForApply()
	if err != nil {
		return nil, err
	}
	var errs field.ErrorList
	for i, h := range ls.Cluster.Spec.Hosts {
		if h.Remove {
			errs = append(errs, field.Invalid(field.NewPath("spec", "hosts").Index(i).Child("remove"), true,
				fmt.Sprintf("host %s is to be removed: `installer apply` removes it; then delete its entry", h.Name)))
		}
	}
	if len(errs) > 0 {
		return nil, exitcode.New(exitcode.InvalidInput, &specErrors{path: ls.Path, errs: errs})
	}
	return ls, nil
}

// loadSpecForApply is loadSpecForHosts accepting hosts marked remove.
func (a *app) loadSpecForApply() (*loadedSpec, error) {
	ls, err := a.loadSpec()
	if err != nil {
		return nil, err
	}
	if err := a.checkEnvironment(ls); err != nil {
		return nil, err
	}
	return ls, nil
}

// checkEnvironment verifies the environment variables a connecting command needs.
func (a *app) checkEnvironment(ls *loadedSpec) error {
	if errs := v1alpha1.CheckEnvironment(ls.Cluster, a.env.Getenv); len(errs) > 0 {
		return exitcode.New(exitcode.InvalidInput, &specErrors{path: ls.Path, errs: errs})
	}
	return nil
}

// specErrors prints one problem per line, as `spec.hosts[2].address: Invalid value: "x": reason`.
type specErrors struct {
	path string
	errs field.ErrorList
}

func (e *specErrors) Error() string {
	lines := make([]string, 0, len(e.errs)+1)
	for _, fe := range e.errs {
		lines = append(lines, fe.Error())
	}
	noun := "problems"
	if len(e.errs) == 1 {
		noun = "problem"
	}
	lines = append(lines, fmt.Sprintf("%s: %d %s; nothing was changed", e.path, len(e.errs), noun))
	return strings.Join(lines, "\n")
}
