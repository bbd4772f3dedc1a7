package conformance

import (
	"encoding/xml"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// junitSuites is the part of a Ginkgo v2 JUnit report (reporters.JUnitTestSuites) the summary reads.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name  string      `xml:"name,attr"`
	Time  float64     `xml:"time,attr"`
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name    string        `xml:"name,attr"`
	Status  string        `xml:"status,attr"`
	Time    float64       `xml:"time,attr"`
	Skipped *junitMessage `xml:"skipped"`
	Failure *junitMessage `xml:"failure"`
	Error   *junitMessage `xml:"error"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
}

// Result is one run of a suite (one ginkgo invocation) read from its JUnit report.
type Result struct {
	Name     string        `json:"name"`     // the run, e.g. "kubeadm", "conformance-parallel"
	Duration time.Duration `json:"duration"` // the suite's run time as Ginkgo measured it
	Passed   []Spec        `json:"passed"`
	Failed   []Spec        `json:"failed"`
	// Skipped are specs that were selected but skipped themselves at run time (e2eskipper), with
	// the reason they gave.
	Skipped []Spec `json:"skipped"`
	// NotSelected counts the specs the focus, skip and label filters left out; LabSkipped are
	// those of them a lab skip pattern (Skips) matched, with its reason.
	NotSelected int    `json:"notSelected"`
	LabSkipped  []Spec `json:"labSkipped,omitempty"`
	notSelected []string
	// SetupFailures are failed suite nodes ([SynchronizedBeforeSuite] and the like): no spec could
	// run properly after them.
	SetupFailures []Spec `json:"setupFailures,omitempty"`
}

// Spec is one test case.
type Spec struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
	// Message is the failure message or the skip reason.
	Message string `json:"message,omitempty"`
}

// Run counts the specs that ran (passed or failed).
func (r Result) Run() int { return len(r.Passed) + len(r.Failed) }

// OK reports whether nothing failed.
func (r Result) OK() bool { return len(r.Failed) == 0 && len(r.SetupFailures) == 0 }

// ParseJUnit reads a Ginkgo JUnit report into a Result. Only [It] specs count as tests; a failed
// suite node counts as a setup failure. A spec is skipped at run time when its skip message carries
// a reason ("skipped - REASON"); a bare "skipped" is a spec the filters did not select.
func ParseJUnit(name string, data []byte) (Result, error) {
	var doc junitSuites
	if err := xml.Unmarshal(data, &doc); err != nil {
		return Result{}, fmt.Errorf("junit report %s: %w", name, err)
	}
	if len(doc.Suites) == 0 {
		return Result{}, fmt.Errorf("junit report %s: no test suite", name)
	}
	r := Result{Name: name}
	for _, s := range doc.Suites {
		r.Duration += seconds(s.Time)
		for _, c := range s.Cases {
			spec := Spec{Name: strings.TrimSpace(strings.TrimPrefix(c.Name, "[It]")), Duration: seconds(c.Time)}
			isIt := strings.HasPrefix(c.Name, "[It]")
			failed := c.Failure != nil || c.Error != nil
			switch {
			case failed && !isIt:
				spec.Name = c.Name
				spec.Message = message(c)
				r.SetupFailures = append(r.SetupFailures, spec)
			case !isIt:
				// A suite node that passed or did not run: not a test.
			case failed:
				spec.Message = message(c)
				r.Failed = append(r.Failed, spec)
			case c.Skipped != nil:
				reason, runtime := strings.CutPrefix(c.Skipped.Message, "skipped - ")
				if !runtime || c.Status == "pending" {
					r.NotSelected++
					r.notSelected = append(r.notSelected, spec.Name)
					continue
				}
				spec.Message = reason
				r.Skipped = append(r.Skipped, spec)
			case c.Status == "passed":
				r.Passed = append(r.Passed, spec)
			default:
				return Result{}, fmt.Errorf("junit report %s: spec %q has status %q and no outcome", name, c.Name, c.Status)
			}
		}
	}
	for _, l := range [][]Spec{r.Passed, r.Failed, r.Skipped, r.SetupFailures} {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	return r, nil
}

// ParseJUnitFile is ParseJUnit of a file.
func ParseJUnitFile(name, path string) (Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Result{}, fmt.Errorf("junit report %s: %w", name, err)
	}
	return ParseJUnit(name, data)
}

func message(c junitCase) string {
	m := ""
	switch {
	case c.Failure != nil:
		m = c.Failure.Message
		if m == "" {
			m = c.Failure.Type
		}
	case c.Error != nil:
		m = c.Error.Message
		if m == "" {
			m = c.Error.Type
		}
	}
	return firstLine(m)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}

func seconds(f float64) time.Duration {
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond)
}
