package kubeadm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	kubeadmv1beta4 "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/v1beta4"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/lab/build"
	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/drift"
	"installer.dev/installer/pkg/facts"
	"installer.dev/installer/pkg/versions"
)

// TestRealKubeadmRendersExtraVolumes: kubeadm (the real binary of every supported release, built by
// the lab builder; never skipped) renders the static pods of a spec with extra volumes on all three
// components (`kubeadm init phase control-plane all --dry-run`). drift.Mounts, which apply uses,
// finds each volume in kubeadm's pod exactly as the spec renders it, a changed one as changed and a
// dropped one as still there. Every volume kubeadm adds of its own is a name validation refuses.
func TestRealKubeadmRendersExtraVolumes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Minute)
	defer cancel()
	for _, r := range versions.Releases() {
		t.Run(r.Kubernetes, func(t *testing.T) {
			bin, err := build.New(build.Options{}).Binary(ctx, "kubeadm", r.Kubernetes)
			if err != nil {
				t.Fatalf("build kubeadm %s: %v", r.Kubernetes, err)
			}
			c, err := v1alpha1.LoadFile("testdata/specs/lone-control-plane.yaml")
			if err != nil {
				t.Fatal(err)
			}
			c.Default()
			s := &c.Spec
			s.KubernetesVersion = r.Kubernetes
			token, err := GenerateToken()
			if err != nil {
				t.Fatal(err)
			}
			h := s.ControlPlanes()[0]
			cfg, err := Render(Input{Spec: s, Host: h, Facts: facts.Assumed(s, h), Token: token})
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			cfgPath, out := filepath.Join(dir, "kubeadm.yaml"), filepath.Join(dir, "manifests")
			if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, bin, "init", "phase", "control-plane", "all", "--config", cfgPath, "--dry-run")
			cmd.Env = append(os.Environ(), "KUBEADM_INIT_DRYRUN_DIR="+out)
			if o, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kubeadm init phase control-plane all --dry-run: %v\n%s", err, o)
			}
			want, err := ClusterConfiguration(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, comp := range []struct {
				pod, field string
				vols       []kubeadmv1beta4.HostPathMount
			}{
				{"kube-apiserver", "apiServer", want.APIServer.ExtraVolumes},
				{"kube-controller-manager", "controllerManager", want.ControllerManager.ExtraVolumes},
				{"kube-scheduler", "scheduler", want.Scheduler.ExtraVolumes},
			} {
				if len(comp.vols) == 0 {
					t.Fatalf("the spec gives %s no extra volume", comp.field)
				}
				data, err := os.ReadFile(filepath.Join(out, comp.pod+".yaml"))
				if err != nil {
					t.Fatal(err)
				}
				var pod corev1.Pod
				if err := yaml.Unmarshal(data, &pod); err != nil {
					t.Fatalf("%s: %v", comp.pod, err)
				}
				if lines := drift.Mounts(comp.vols, comp.vols, &pod); len(lines) != 0 {
					t.Errorf("%s: kubeadm's pod differs from the spec's volumes: %q\n%s", comp.pod, lines, data)
				}
				changed := append([]kubeadmv1beta4.HostPathMount(nil), comp.vols...)
				changed[0].ReadOnly = !changed[0].ReadOnly
				if lines := drift.Mounts(changed, nil, &pod); len(lines) != 1 || !strings.HasPrefix(lines[0], "~ volume "+changed[0].Name+" ") {
					t.Errorf("%s: a changed volume: %q", comp.pod, lines)
				}
				if lines := drift.Mounts(nil, comp.vols, &pod); len(lines) != len(comp.vols) || !strings.HasPrefix(lines[0], "- volume ") {
					t.Errorf("%s: dropped volumes: %q", comp.pod, lines)
				}
				// kubeadm's own volumes: each name is refused as an extra volume of the component.
				own := &v1alpha1.Cluster{APIVersion: v1alpha1.APIVersion, Kind: v1alpha1.Kind, Metadata: c.Metadata, Spec: *s}
				own.Spec.APIServer.ExtraVolumes, own.Spec.ControllerManager.ExtraVolumes, own.Spec.Scheduler.ExtraVolumes = nil, nil, nil
				var named []v1alpha1.HostPathMount
				for i, v := range pod.Spec.Volumes {
					if slices.ContainsFunc(comp.vols, func(m kubeadmv1beta4.HostPathMount) bool { return m.Name == v.Name }) {
						continue
					}
					named = append(named, v1alpha1.HostPathMount{Name: v.Name, HostPath: "/srv/x", MountPath: fmt.Sprintf("/srv/x%d", i)})
				}
				if len(named) == 0 {
					t.Fatalf("%s: kubeadm rendered no volume of its own", comp.pod)
				}
				switch comp.field {
				case "apiServer":
					own.Spec.APIServer.ExtraVolumes = named
				case "controllerManager":
					own.Spec.ControllerManager.ExtraVolumes = named
				case "scheduler":
					own.Spec.Scheduler.ExtraVolumes = named
				}
				var names []string
				for _, v := range named {
					names = append(names, v.Name)
				}
				t.Logf("%s: kubeadm's own volumes %v", comp.pod, names)
				errs, _ := v1alpha1.Validate(own)
				var got []string
				for _, e := range errs {
					got = append(got, e.Error())
				}
				for i, v := range named {
					w := fmt.Sprintf(`spec.%s.extraVolumes[%d].name: Invalid value: %q: kubeadm gives the component a volume of this name; choose another`, comp.field, i, v.Name)
					if !slices.Contains(got, w) {
						t.Errorf("%s: kubeadm's own volume %s is not refused; validation says:\n%s", comp.pod, v.Name, strings.Join(got, "\n"))
					}
				}
			}
		})
	}
}
