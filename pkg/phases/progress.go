package phases

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Progress receives what the manager and ForEachHost do, for people (lines) or machines (JSON).
type Progress interface {
	PhaseStarted(phase string)
	PhaseSkipped(phase, reason string)
	PhaseDone(phase string, d time.Duration, changes int, dryRun bool, err error)
	HostStarted(host string)
	HostDone(host string, d time.Duration, err error)
}

type discardProgress struct{}

func (discardProgress) PhaseStarted(string)                               {}
func (discardProgress) PhaseSkipped(string, string)                       {}
func (discardProgress) PhaseDone(string, time.Duration, int, bool, error) {}
func (discardProgress) HostStarted(string)                                {}
func (discardProgress) HostDone(string, time.Duration, error)             {}

// LineProgress writes one plain line per phase and per host: readable on a terminal and in a log.
type LineProgress struct {
	mu    sync.Mutex
	w     io.Writer
	phase string
	// Hosts prints a line per host as well (with -v, or when a phase fans out over few hosts).
	Hosts bool
}

// NewLineProgress writes to w.
func NewLineProgress(w io.Writer, hosts bool) *LineProgress { return &LineProgress{w: w, Hosts: hosts} }

func (p *LineProgress) PhaseStarted(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = phase
}

func (p *LineProgress) PhaseSkipped(phase, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%-28s skipped: %s\n", phase, reason)
}

func (p *LineProgress) PhaseDone(phase string, d time.Duration, changes int, dryRun bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil:
		fmt.Fprintf(p.w, "%-28s FAILED after %s\n", phase, round(d))
	case changes == 0:
		fmt.Fprintf(p.w, "%-28s nothing to do (%s)\n", phase, round(d))
	case dryRun:
		fmt.Fprintf(p.w, "%-28s would make %d change(s) (%s)\n", phase, changes, round(d))
	default:
		fmt.Fprintf(p.w, "%-28s done, %d change(s) (%s)\n", phase, changes, round(d))
	}
}

func (p *LineProgress) HostStarted(string) {}

func (p *LineProgress) HostDone(host string, d time.Duration, err error) {
	if !p.Hosts {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	status := "ok"
	if err != nil {
		status = "failed"
	}
	fmt.Fprintf(p.w, "  %-26s %s %s (%s)\n", p.phase, host, status, round(d))
}

// SlogProgress emits one structured record per event (with --log-format json: JSON lines).
type SlogProgress struct {
	Log   *slog.Logger
	mu    sync.Mutex
	phase string
}

func (p *SlogProgress) PhaseStarted(phase string) {
	p.mu.Lock()
	p.phase = phase
	p.mu.Unlock()
	p.Log.Info("phase started", "phase", phase)
}

func (p *SlogProgress) PhaseSkipped(phase, reason string) {
	p.Log.Info("phase skipped", "phase", phase, "reason", reason)
}

func (p *SlogProgress) PhaseDone(phase string, d time.Duration, changes int, dryRun bool, err error) {
	if err != nil {
		p.Log.Error("phase failed", "phase", phase, "seconds", d.Seconds(), "error", err.Error())
		return
	}
	p.Log.Info("phase done", "phase", phase, "seconds", d.Seconds(), "changes", changes, "dryRun", dryRun)
}

func (p *SlogProgress) HostStarted(host string) {
	p.mu.Lock()
	phase := p.phase
	p.mu.Unlock()
	p.Log.Debug("host started", "phase", phase, "host", host)
}

func (p *SlogProgress) HostDone(host string, d time.Duration, err error) {
	p.mu.Lock()
	phase := p.phase
	p.mu.Unlock()
	if err != nil {
		p.Log.Error("host failed", "phase", phase, "host", host, "seconds", d.Seconds(), "error", err.Error())
		return
	}
	p.Log.Info("host done", "phase", phase, "host", host, "seconds", d.Seconds())
}

func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// Summary prints the time per phase after a run.
func Summary(w io.Writer, timings []Timing, total time.Duration) {
	fmt.Fprintln(w, "\ntime per phase:")
	for _, t := range timings {
		if t.Skipped != "" {
			fmt.Fprintf(w, "  %-28s skipped\n", t.Phase)
			continue
		}
		fmt.Fprintf(w, "  %-28s %8s  %d change(s)\n", t.Phase, round(t.Duration), t.Changes)
	}
	fmt.Fprintf(w, "  %-28s %8s\n", "total", round(total))
}
