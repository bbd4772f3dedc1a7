package phases

import (
	"bytes"
	"log/slog"
	"regexp"
	"sync"
	"time"
)

// kubeadmProgress turns the output of `kubeadm upgrade apply/node` into one log line per component
// as kubeadm finishes it, with kubeadm's own time for it (from its "Preparing for" line to its
// "upgraded successfully" line): minutes of silence become progress, and the times can be set
// against the installer's own steps.
type kubeadmProgress struct {
	log  *slog.Logger
	host string
	now  func() time.Time

	mu      sync.Mutex
	partial []byte
	started map[string]time.Time
}

func newKubeadmProgress(log *slog.Logger, host string) *kubeadmProgress {
	return &kubeadmProgress{log: log, host: host, now: time.Now, started: map[string]time.Time{}}
}

var (
	kubeadmPreparing = regexp.MustCompile(`^\[upgrade/staticpods\] Preparing for "([^"]+)" upgrade`)
	kubeadmUpgraded  = regexp.MustCompile(`^\[upgrade/staticpods\] Component "([^"]+)" upgraded successfully`)
	kubeadmUnchanged = regexp.MustCompile(`^\[upgrade/staticpods\] Current and new manifests of (\S+) are equal, skipping upgrade`)
	kubeadmAddon     = regexp.MustCompile(`^\[addons\] Applied essential addon: (\S+)`)
)

func (p *kubeadmProgress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.line(string(bytes.TrimRight(p.partial[:i], "\r")))
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

func (p *kubeadmProgress) line(l string) {
	switch {
	case kubeadmPreparing.MatchString(l):
		p.started[kubeadmPreparing.FindStringSubmatch(l)[1]] = p.now()
	case kubeadmUpgraded.MatchString(l):
		c := kubeadmUpgraded.FindStringSubmatch(l)[1]
		kv := []any{"host", p.host, "component", c}
		if t, ok := p.started[c]; ok {
			kv = append(kv, "seconds", p.now().Sub(t).Seconds())
		}
		p.log.Info("upgrade: kubeadm upgraded a component", kv...)
	case kubeadmUnchanged.MatchString(l):
		p.log.Info("upgrade: kubeadm left a component unchanged", "host", p.host, "component", kubeadmUnchanged.FindStringSubmatch(l)[1])
	case kubeadmAddon.MatchString(l):
		p.log.Info("upgrade: kubeadm applied an add-on", "host", p.host, "addon", kubeadmAddon.FindStringSubmatch(l)[1])
	}
}
