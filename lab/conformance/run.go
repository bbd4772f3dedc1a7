package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"
)

// Suites.
const (
	// SuiteKubeadm is k8s.io/kubernetes/test/e2e_kubeadm: what a kubeadm cluster must hold.
	SuiteKubeadm = "kubeadm"
	// SuiteConformance is the [Conformance] specs of k8s.io/kubernetes/test/e2e, in two runs:
	// the parallel specs, then the [Serial] ones alone.
	SuiteConformance = "conformance"
)

// Options configure Run.
type Options struct {
	// Kubeconfig of the cluster under test (the lab's .lab/state/admin.conf).
	Kubeconfig string
	// OutDir receives the JUnit reports, the ginkgo logs and the summary (.lab/conformance).
	OutDir string
	// Binaries: the two suites, the ginkgo CLI and kubectl (the kubectl specs run it).
	E2ETest, E2EKubeadmTest, Ginkgo, Kubectl string
	// Suites to run, in this order; default both (kubeadm first).
	Suites []string
	// Focus and Skip are extra Ginkgo regular expressions applied to every run (a quick run).
	Focus, Skip string
	// Nodes is the number of parallel ginkgo processes of the parallel conformance run; default 3.
	Nodes int
	// Timeout bounds each run (ginkgo --timeout); default 6h.
	Timeout time.Duration
	// Output receives ginkgo's own output besides its log file; nil: the log file only.
	Output io.Writer
	// Log receives progress lines; default io.Discard.
	Log io.Writer
}

// Summary is the outcome of Run: one Result per ginkgo run.
type Summary struct {
	Start   time.Time     `json:"start"`
	Wall    time.Duration `json:"wall"`
	Focus   string        `json:"focus,omitempty"`
	Skip    string        `json:"skip,omitempty"`
	Results []Result      `json:"results"`
}

// OK reports whether every run passed.
func (s *Summary) OK() bool {
	for _, r := range s.Results {
		if !r.OK() {
			return false
		}
	}
	return true
}

// ErrFailed is returned (wrapped) by Run when a spec or a suite node failed.
var ErrFailed = errors.New("conformance: failures")

// run is one ginkgo invocation.
type run struct {
	name, suite, binary string
	labelFilter         string
	nodes               int
}

// plan lists the ginkgo runs of the suites, in order.
func plan(o Options) ([]run, error) {
	var runs []run
	for _, s := range o.Suites {
		switch s {
		case SuiteKubeadm:
			runs = append(runs, run{name: "kubeadm", suite: s, binary: o.E2EKubeadmTest, nodes: 1})
		case SuiteConformance:
			runs = append(runs,
				run{name: "conformance-parallel", suite: s, binary: o.E2ETest, labelFilter: "Conformance && !Serial", nodes: o.Nodes},
				run{name: "conformance-serial", suite: s, binary: o.E2ETest, labelFilter: "Conformance && Serial", nodes: 1})
		default:
			return nil, fmt.Errorf("conformance: unknown suite %q (want %s or %s)", s, SuiteKubeadm, SuiteConformance)
		}
	}
	return runs, nil
}

// ginkgoArgs are the ginkgo CLI's arguments for one run: its flags, the precompiled suite, then
// the suite's own flags after "--".
func ginkgoArgs(o Options, r run) []string {
	args := []string{
		"--no-color", "--timeout=" + o.Timeout.String(),
		"--output-dir=" + o.OutDir, "--junit-report=junit_" + r.name + ".xml",
	}
	if r.nodes > 1 {
		args = append(args, fmt.Sprintf("--procs=%d", r.nodes))
	}
	if r.labelFilter != "" {
		args = append(args, "--label-filter="+r.labelFilter)
	}
	if o.Focus != "" {
		args = append(args, "--focus="+o.Focus)
	}
	for _, p := range skipPatterns(r.suite) {
		args = append(args, "--skip="+p)
	}
	if o.Skip != "" {
		args = append(args, "--skip="+o.Skip)
	}
	args = append(args, r.binary, "--",
		"--kubeconfig="+o.Kubeconfig,
		"--provider=skeleton",
		"--e2e-output-dir="+filepath.Join(o.OutDir, r.name),
	)
	if r.suite == SuiteConformance {
		args = append(args, "--kubectl-path="+o.Kubectl)
	}
	return args
}

func withDefaults(o Options) (Options, error) {
	if len(o.Suites) == 0 {
		o.Suites = []string{SuiteKubeadm, SuiteConformance}
	}
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Timeout <= 0 {
		o.Timeout = 6 * time.Hour
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Kubeconfig == "" || o.OutDir == "" || o.Ginkgo == "" {
		return o, errors.New("conformance: Kubeconfig, OutDir and Ginkgo are required")
	}
	var err error
	if o.OutDir, err = filepath.Abs(o.OutDir); err != nil {
		return o, err
	}
	if o.Kubeconfig, err = filepath.Abs(o.Kubeconfig); err != nil {
		return o, err
	}
	for _, re := range []string{o.Focus, o.Skip} {
		if _, err := regexp.Compile(re); err != nil {
			return o, fmt.Errorf("conformance: focus/skip %q: %w", re, err)
		}
	}
	return o, nil
}

// Run runs the suites against the cluster, one ginkgo run after another, writes the JUnit reports,
// the ginkgo logs and summary.{txt,json} into OutDir, and returns the summary. The error wraps
// ErrFailed when a spec failed; other errors mean a run produced no report.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	o, err := withDefaults(opts)
	if err != nil {
		return nil, err
	}
	runs, err := plan(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("conformance: %w", err)
	}
	sum := &Summary{Start: time.Now(), Focus: o.Focus, Skip: o.Skip}
	for _, r := range runs {
		if r.binary == "" {
			return sum, fmt.Errorf("conformance: no test binary for run %s", r.name)
		}
		res, err := runOne(ctx, o, r)
		if err != nil {
			return sum, err
		}
		sum.Results = append(sum.Results, res)
		fmt.Fprintf(o.Log, "conformance: %s: %d passed, %d failed, %d skipped in %s\n",
			r.name, len(res.Passed), len(res.Failed), len(res.Skipped), res.Duration.Round(time.Second))
	}
	sum.Wall = time.Since(sum.Start).Round(time.Second)
	if err := writeSummary(o.OutDir, sum); err != nil {
		return sum, err
	}
	if !sum.OK() {
		return sum, fmt.Errorf("%w: see %s", ErrFailed, filepath.Join(o.OutDir, "summary.txt"))
	}
	return sum, nil
}

func runOne(ctx context.Context, o Options, r run) (Result, error) {
	report := filepath.Join(o.OutDir, "junit_"+r.name+".xml")
	logPath := filepath.Join(o.OutDir, r.name+".log")
	_ = os.Remove(report)
	if err := os.MkdirAll(filepath.Join(o.OutDir, r.name), 0o755); err != nil {
		return Result{}, fmt.Errorf("conformance: %w", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return Result{}, fmt.Errorf("conformance: %w", err)
	}
	defer logf.Close()
	args := ginkgoArgs(o, r)
	fmt.Fprintf(o.Log, "conformance: %s: ginkgo %s (log %s)\n", r.name, strings.Join(args, " "), logPath)
	cmd := exec.CommandContext(ctx, o.Ginkgo, args...)
	cmd.Dir = o.OutDir
	// The suites read KUBECONFIG too; never let the caller's point elsewhere.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+o.Kubeconfig)
	var out io.Writer = logf
	if o.Output != nil {
		out = io.MultiWriter(logf, o.Output)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Ctrl-C or a cancelled context interrupts ginkgo, which still writes its report.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 2 * time.Minute
	runErr := cmd.Run()
	if _, err := os.Stat(report); err != nil {
		return Result{}, fmt.Errorf("conformance: %s wrote no report (%v); see %s", r.name, runErr, logPath)
	}
	res, err := ParseJUnitFile(r.name, report)
	if err != nil {
		return Result{}, err
	}
	res.LabSkipped = labSkipped(r.suite, res.notSelected)
	if runErr != nil && res.OK() {
		// ginkgo failed without a failed spec in the report (e.g. a suite-level error).
		res.SetupFailures = append(res.SetupFailures, Spec{Name: "ginkgo", Message: fmt.Sprintf("%v; see %s", runErr, logPath)})
	}
	return res, nil
}

// labSkipped picks the specs a lab skip pattern of the suite left out.
func labSkipped(suite string, notSelected []string) []Spec {
	var out []Spec
	for _, s := range Skips {
		if s.Suite != suite {
			continue
		}
		re := regexp.MustCompile(s.Pattern)
		for _, n := range notSelected {
			if re.MatchString(n) {
				out = append(out, Spec{Name: n, Message: s.Reason})
			}
		}
	}
	return out
}

func writeSummary(dir string, s *Summary) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	var b strings.Builder
	if err := s.Write(&b); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("conformance: %w", err)
	}
	return nil
}

// Write prints the summary: a table of the runs, then every failure and every skip with its reason.
func (s *Summary) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tran\tpassed\tfailed\tskipped\tlab-skipped\tnot selected\ttime\t")
	var tot Result
	var totTime time.Duration
	for _, r := range s.Results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", r.Name, r.Run(), len(r.Passed), len(r.Failed)+len(r.SetupFailures),
			len(r.Skipped), len(r.LabSkipped), r.NotSelected-len(r.LabSkipped), r.Duration.Round(time.Second))
		tot.Passed = append(tot.Passed, r.Passed...)
		tot.Failed = append(tot.Failed, r.Failed...)
		tot.SetupFailures = append(tot.SetupFailures, r.SetupFailures...)
		tot.Skipped = append(tot.Skipped, r.Skipped...)
		tot.LabSkipped = append(tot.LabSkipped, r.LabSkipped...)
		totTime += r.Duration
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t\t%s\t\n", tot.Run(), len(tot.Passed), len(tot.Failed)+len(tot.SetupFailures),
		len(tot.Skipped), len(tot.LabSkipped), totTime.Round(time.Second))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "wall time %s", s.Wall)
	if s.Focus != "" || s.Skip != "" {
		fmt.Fprintf(w, " (focus %q, skip %q)", s.Focus, s.Skip)
	}
	fmt.Fprintln(w)
	section := func(title string, pick func(Result) []Spec) {
		first := true
		for _, r := range s.Results {
			for _, sp := range pick(r) {
				if first {
					fmt.Fprintf(w, "\n%s:\n", title)
					first = false
				}
				fmt.Fprintf(w, "  %s: %s (%s)\n", r.Name, sp.Name, sp.Duration.Round(time.Second))
				if sp.Message != "" {
					fmt.Fprintf(w, "      %s\n", sp.Message)
				}
			}
		}
	}
	section("FAILED", func(r Result) []Spec { return append(append([]Spec{}, r.SetupFailures...), r.Failed...) })
	section("skipped at run time (the test's own reason)", func(r Result) []Spec { return r.Skipped })
	section("skipped by the lab (docs/conformance.md)", func(r Result) []Spec { return r.LabSkipped })
	if s.OK() {
		fmt.Fprintln(w, "\nPASS")
	} else {
		fmt.Fprintln(w, "\nFAIL")
	}
	return nil
}
