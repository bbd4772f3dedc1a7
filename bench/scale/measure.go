package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"installer.dev/installer/pkg/ssh/sshtest"
)

// result is one client's run on one host count.
type result struct {
	Hosts  int           `json:"hosts"`
	Client string        `json:"client"`
	Mode   string        `json:"mode"` // cold or converged
	Wall   time.Duration `json:"wallNs"`
	// Changed is how many files the run replaced or created, seen on the hosts' side.
	Changed int `json:"filesWritten"`
	// Connections and Sessions are what the sshds logged during the run, summed over hosts;
	// MaxSessions is the most one host saw.
	Connections int `json:"connections"`
	Sessions    int `json:"sessions"`
	MaxSessions int `json:"maxSessionsOneHost"`
	// PeakRSSMB is the largest sum of resident memory over the client's processes, sampled
	// every 100 ms (Ansible's workers and ssh control masters included).
	PeakRSSMB float64 `json:"peakRSSMB"`
	// ControllerCPU is the user and system time of the client and the children it waited for
	// (Ansible's workers and ssh clients; not its control masters, which it never waits for).
	ControllerCPU time.Duration `json:"controllerCPUNs"`
	// PeakHeapMB and PeakGoroutines: the Go clients' own runtime figures (childResult).
	PeakHeapMB     float64 `json:"peakHeapMB,omitempty"`
	PeakGoroutines int     `json:"peakGoroutines,omitempty"`
}

func (r result) sessionsPerHost() float64 { return float64(r.Sessions) / float64(r.Hosts) }

// measure runs one client once and checks what it left on the hosts.
func measure(ctx context.Context, j *job, client, mode string) (result, error) {
	res := result{Hosts: len(j.Hosts), Client: client, Mode: mode}
	offsets := map[string]int64{}
	for _, h := range j.Hosts {
		if st, err := os.Stat(h.Log); err == nil {
			offsets[h.Name] = st.Size()
		}
	}
	before := j.fileIDs()
	var cmd *exec.Cmd
	var controlDir string
	switch client {
	case "installer", "floor":
		self, err := os.Executable()
		if err != nil {
			return res, err
		}
		kind := map[string]string{"installer": childEngine, "floor": childFloor}[client]
		cmd = exec.CommandContext(ctx, self, kind, filepath.Join(j.Dir, "job.json"))
	case "ansible":
		dir, cd, err := writeAnsible(j)
		if err != nil {
			return res, err
		}
		controlDir = cd
		cmd = exec.CommandContext(ctx, "ansible-playbook", "site.yml")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"), "ANSIBLE_NOCOLOR=1")
	default:
		return res, fmt.Errorf("unknown client %q (installer, floor, ansible)", client)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	var peak atomic.Int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if kb := treeRSS(cmd.Process.Pid, controlDir); kb > peak.Load() {
				peak.Store(kb)
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	res.Wall = time.Since(start)
	close(done)
	<-sampled
	if controlDir != "" {
		stopControlMasters(controlDir)
	}
	res.PeakRSSMB = float64(peak.Load()) / 1024
	if cmd.ProcessState != nil {
		res.ControllerCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		out := stdout.String() + stderr.String()
		if len(out) > 4000 {
			out = out[len(out)-4000:]
		}
		return res, fmt.Errorf("%v:\n%s", err, out)
	}
	if client != "ansible" {
		var child childResult
		if err := json.Unmarshal(stdout.Bytes(), &child); err != nil {
			return res, fmt.Errorf("child output %q: %w", stdout.String(), err)
		}
		res.PeakHeapMB, res.PeakGoroutines = child.PeakHeapMB, child.PeakGoroutines
	}
	counts, _, err := countLogs(j.Hosts, offsets)
	if err != nil {
		return res, err
	}
	for _, c := range counts {
		res.Connections += c.connections
		res.Sessions += c.sessions
		res.MaxSessions = max(res.MaxSessions, c.sessions)
	}
	after := j.fileIDs()
	for p, id := range after {
		if before[p] != id {
			res.Changed++
		}
	}
	if err := j.verify(); err != nil {
		return res, fmt.Errorf("after the run: %w", err)
	}
	want := 0
	if mode == "cold" {
		want = len(j.Hosts) * len(j.Files)
	}
	if res.Changed != want {
		return res, fmt.Errorf("%d files written, want %d for a %s run", res.Changed, want, mode)
	}
	return res, nil
}

// treeRSS sums the resident memory (kB) of pid and its descendants, plus any process whose command
// line names controlDir (OpenSSH control masters leave their parent's tree).
func treeRSS(pid int, controlDir string) int64 {
	counted := map[int]bool{pid: true}
	total := rssKB(pid)
	for _, p := range sshtest.Descendants(pid) {
		counted[p] = true
		total += rssKB(p)
	}
	if controlDir == "" {
		return total
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || counted[p] {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmdline, []byte(controlDir)) {
			total += rssKB(p)
		}
	}
	return total
}

func rssKB(pid int) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "statm"))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()) / 1024
}

// stopControlMasters ends the ssh control masters an Ansible run left (ControlPersist), so the
// next run connects afresh as a later re-run would.
func stopControlMasters(controlDir string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmdline, []byte(controlDir)) {
			_ = syscall.Kill(p, syscall.SIGTERM)
		}
	}
	sockets, _ := filepath.Glob(filepath.Join(controlDir, "*"))
	deadline := time.Now().Add(5 * time.Second)
	for len(sockets) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		sockets, _ = filepath.Glob(filepath.Join(controlDir, "*"))
	}
}

// formatTable is the results as one Markdown table per host count.
func formatTable(results []result) string {
	var b strings.Builder
	floor := map[string]time.Duration{}
	for _, r := range results {
		if r.Client == "floor" {
			floor[fmt.Sprintf("%d/%s", r.Hosts, r.Mode)] = r.Wall
		}
	}
	b.WriteString("| hosts | client | run | wall | × floor | sessions/host | connections/host | files written | controller CPU | peak RSS |\n")
	b.WriteString("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		ratio := "-"
		if f := floor[fmt.Sprintf("%d/%s", r.Hosts, r.Mode)]; f > 0 {
			ratio = fmt.Sprintf("%.2f", r.Wall.Seconds()/f.Seconds())
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %.1f s | %s | %.1f (max %d) | %.1f | %d | %.1f s | %.0f MB |\n",
			r.Hosts, r.Client, r.Mode, r.Wall.Seconds(), ratio, r.sessionsPerHost(), r.MaxSessions,
			float64(r.Connections)/float64(r.Hosts), r.Changed, r.ControllerCPU.Seconds(), r.PeakRSSMB)
	}
	return b.String()
}
