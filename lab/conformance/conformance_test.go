package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func names(specs []Spec) []string {
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		out = append(out, s.Name)
	}
	return out
}

func TestParseJUnitSample(t *testing.T) {
	r, err := ParseJUnitFile("conformance-parallel", filepath.Join("testdata", "junit_sample.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Duration != 61250*time.Millisecond {
		t.Errorf("duration = %s, want 1m1.25s", r.Duration)
	}
	wantPassed := []string{
		"[sig-apps] Deployment deployment should support rollover [Conformance] [Conformance, sig-apps]",
		"[sig-node] Pods should get a host IP [NodeConformance] [Conformance] [NodeConformance, Conformance, sig-node]",
	}
	if got := names(r.Passed); strings.Join(got, "\n") != strings.Join(wantPassed, "\n") {
		t.Errorf("passed = %q, want %q (sorted, [It] prefix removed, suite nodes left out)", got, wantPassed)
	}
	if len(r.Passed) == 2 && r.Passed[1].Duration != 4250*time.Millisecond {
		t.Errorf("Pods spec duration = %s, want 4.25s", r.Passed[1].Duration)
	}
	if len(r.Failed) != 1 || !strings.HasPrefix(r.Failed[0].Name, "[sig-network] DNS should provide DNS") {
		t.Fatalf("failed = %+v, want the DNS spec alone", r.Failed)
	}
	if r.Failed[0].Message != "Timed out after 600s. …" || r.Failed[0].Duration != 40*time.Second {
		t.Errorf("failure = %+v, want the message's first line and 40s", r.Failed[0])
	}
	if len(r.Skipped) != 1 || r.Skipped[0].Message != "Only supported for providers [gce gke] (not skeleton)" {
		t.Errorf("run-time skips = %+v, want the ConfigMap spec with its reason", r.Skipped)
	}
	// Filtered-out specs (a bare "skipped") and pending specs are not selected, not skipped.
	if r.NotSelected != 3 {
		t.Errorf("not selected = %d, want 3", r.NotSelected)
	}
	if len(r.SetupFailures) != 0 || r.OK() || r.Run() != 3 {
		t.Errorf("setup failures %v, OK %v, run %d; want none, false, 3", r.SetupFailures, r.OK(), r.Run())
	}
}

func TestParseJUnitSetupFailureAndBadInput(t *testing.T) {
	doc := `<testsuites><testsuite name="E2EKubeadm suite" time="2">
<testcase name="[SynchronizedBeforeSuite]" status="failed" time="2"><failure message="Unable to connect to the server" type="failed"></failure></testcase>
<testcase name="[It] kubeadm-config ConfigMap should exist" status="skipped" time="0"><skipped message="skipped - Spec skipped because an earlier spec in an ordered container failed"></skipped></testcase>
</testsuite></testsuites>`
	r, err := ParseJUnit("kubeadm", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.SetupFailures) != 1 || r.SetupFailures[0].Name != "[SynchronizedBeforeSuite]" || r.SetupFailures[0].Message != "Unable to connect to the server" {
		t.Errorf("setup failures = %+v", r.SetupFailures)
	}
	if r.OK() {
		t.Error("a failed suite node must fail the run")
	}
	if len(r.Skipped) != 1 || r.Run() != 0 {
		t.Errorf("skipped %+v, run %d; want 1 and 0", r.Skipped, r.Run())
	}
	for _, bad := range []string{"", "<testsuites></testsuites>", "<nope", `<testsuites><testsuite><testcase name="[It] x" status="weird"/></testsuite></testsuites>`} {
		if _, err := ParseJUnit("x", []byte(bad)); err == nil {
			t.Errorf("ParseJUnit(%q) succeeded, want an error", bad)
		}
	}
}

func TestSummaryWrite(t *testing.T) {
	r, err := ParseJUnitFile("kubeadm", filepath.Join("testdata", "junit_sample.xml"))
	if err != nil {
		t.Fatal(err)
	}
	r.LabSkipped = labSkipped(SuiteKubeadm, r.notSelected)
	s := &Summary{Wall: 90 * time.Second, Results: []Result{r}}
	var b strings.Builder
	if err := s.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"kubeadm    3       2       1        1            1             2  1m1s",
		"total    3       2       1        1            1",
		"wall time 1m30s",
		"FAILED:\n  kubeadm: [sig-network] DNS should provide DNS",
		"skipped by the lab (docs/conformance.md):\n  kubeadm: kubeadm-certs [copy-certs] should be a Secret (0s)\n      the 3 kubeadm-certs specs",
		"\nFAIL\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestGinkgoArgs(t *testing.T) {
	o, err := withDefaults(Options{Kubeconfig: "/k/admin.conf", OutDir: "/out", Ginkgo: "/bin/ginkgo",
		E2ETest: "/bin/e2e.test", E2EKubeadmTest: "/bin/e2e_kubeadm.test", Kubectl: "/bin/kubectl", Focus: "Pods", Nodes: 4})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := plan(o)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, strings.Join(ginkgoArgs(o, r), " "))
	}
	want := []string{
		"--no-color --timeout=6h0m0s --output-dir=/out --junit-report=junit_kubeadm.xml --focus=Pods --skip=\\[copy-certs\\] /bin/e2e_kubeadm.test -- --kubeconfig=/k/admin.conf --provider=skeleton --e2e-output-dir=/out/kubeadm",
		"--no-color --timeout=6h0m0s --output-dir=/out --junit-report=junit_conformance-parallel.xml --procs=4 --label-filter=Conformance && !Serial --focus=Pods /bin/e2e.test -- --kubeconfig=/k/admin.conf --provider=skeleton --e2e-output-dir=/out/conformance-parallel --kubectl-path=/bin/kubectl",
		"--no-color --timeout=6h0m0s --output-dir=/out --junit-report=junit_conformance-serial.xml --label-filter=Conformance && Serial --focus=Pods /bin/e2e.test -- --kubeconfig=/k/admin.conf --provider=skeleton --e2e-output-dir=/out/conformance-serial --kubectl-path=/bin/kubectl",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ginkgo args:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := plan(Options{Suites: []string{"nope"}}); err == nil {
		t.Error("unknown suite accepted")
	}
	if _, err := withDefaults(Options{Kubeconfig: "k", OutDir: "o", Ginkgo: "g", Focus: "("}); err == nil {
		t.Error("invalid focus regexp accepted")
	}
}

// TestSkipsAreDocumented: every skip pattern the lab applies is in docs/conformance.md's table with
// its reason, so nothing is skipped quietly.
func TestSkipsAreDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "conformance.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range Skips {
		if _, err := regexp.Compile(s.Pattern); err != nil {
			t.Errorf("skip %q: %v", s.Pattern, err)
		}
		if !strings.Contains(string(doc), "`"+s.Pattern+"`") {
			t.Errorf("docs/conformance.md does not list the skip pattern `%s` (%s)", s.Pattern, s.Suite)
		}
		if s.Reason == "" || (s.Suite != SuiteKubeadm && s.Suite != SuiteConformance) {
			t.Errorf("skip %q: suite %q, reason %q", s.Pattern, s.Suite, s.Reason)
		}
	}
}
