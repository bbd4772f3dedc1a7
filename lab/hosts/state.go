package hosts

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// State is what a running lab recorded about itself, in .lab/lab.json; Down works from it alone.
type State struct {
	Topology Topology
	Image    string
	Public   Network
	Private  Network
	Hosts    []Host
	// Cut lists hosts whose traffic is currently dropped (host-side veth names per host).
	Cut map[string][]string `json:",omitempty"`
	// AptCachePID is apt-cacher-ng's PID; AptCacheURL where hosts reach it.
	AptCachePID int
	AptCacheURL string
	// MirrorStarted tells Down to call the mirror hook's Stop; MirrorURL is where it serves.
	MirrorStarted bool
	MirrorURL     string `json:",omitempty"`
	Baseline      Baseline
}

// Baseline is the machine as the lab found it, so Down restores exactly that.
type Baseline struct {
	IPForward string
	// Existed tells, for each path the lab's tools may create outside .lab, whether it was there before.
	Existed map[string]bool
}

// Host returns the named host.
func (s *State) Host(name string) (Host, error) {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return Host{}, fmt.Errorf("no lab host %q", name)
}

func (l *Lab) statePath() string { return filepath.Join(l.dir, "lab.json") }

// LoadState reads the recorded state; os.ErrNotExist when no lab is up.
func (l *Lab) LoadState() (*State, error) {
	data, err := os.ReadFile(l.statePath())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no lab state in %s: %w", l.dir, os.ErrNotExist)
		}
		return nil, fmt.Errorf("read lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read lab state %s: %w", l.statePath(), err)
	}
	return &s, nil
}

func (l *Lab) saveState(s *State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	tmp := l.statePath() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if err := os.Rename(tmp, l.statePath()); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}
