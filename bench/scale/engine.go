package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/phases"
	"installer.dev/installer/pkg/ssh"
)

const (
	childEngine = "engine"
	childFloor  = "floor"
)

// childResult is what a child client prints on stdout when it is done.
type childResult struct {
	Changed int `json:"changed"` // files it wrote (its own count; the orchestrator counts too)
	// PeakHeapMB and PeakGoroutines are the Go runtime's own view, sampled every 50 ms: what of
	// the process's resident memory is live heap.
	PeakHeapMB     float64 `json:"peakHeapMB"`
	PeakGoroutines int     `json:"peakGoroutines"`
}

func runChild(kind string, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: scale %s JOB.json", kind)
	}
	data, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var j job
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	ctx := context.Background()
	var heap, goroutines atomic.Int64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			heap.Store(max(heap.Load(), int64(ms.HeapInuse)))
			goroutines.Store(max(goroutines.Load(), int64(runtime.NumGoroutine())))
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var res childResult
	switch kind {
	case childEngine:
		res, err = runEngine(ctx, &j)
	case childFloor:
		res, err = runFloor(ctx, &j)
	}
	close(done)
	if err != nil {
		return err
	}
	res.PeakHeapMB, res.PeakGoroutines = float64(heap.Load())/(1<<20), int(goroutines.Load())
	return json.NewEncoder(os.Stdout).Encode(res)
}

// runEngine is the installer's own engine on its real code path: the spec loaded and validated,
// one pooled pkg/ssh connection per host, the connect and facts phases, the node files rendered
// from each host's gathered facts and uploaded (Host.UploadAll), and the command when one changed.
func runEngine(ctx context.Context, j *job) (childResult, error) {
	c, err := loadSpec(j.Spec)
	if err != nil {
		return childResult{}, err
	}
	in, err := inputs(ctx, c)
	if err != nil {
		return childResult{}, err
	}
	pool := ssh.NewPool(ssh.Options{})
	defer func() { _ = pool.Close() }()
	r, err := phases.NewRun(c, nil)
	if err != nil {
		return childResult{}, err
	}
	r.Inputs, r.Concurrency = in, j.Concurrency
	r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) {
		e := c.Spec.EffectiveSSH(h)
		return pool.Get(ctx, ssh.Config{Name: h.Name, Address: h.Address, Port: int(e.Port), User: e.User,
			KeyFile: e.KeyFile, KnownHostsFile: e.KnownHostsFile})
	}
	roots := map[string]string{}
	for _, h := range j.Hosts {
		roots[h.Name] = h.Root
	}
	files := &nodeFiles{roots: roots}
	if _, err := phases.Execute(ctx, r, []phases.Phase{phases.Connect{}, phases.GatherFacts{}, files}); err != nil {
		return childResult{}, err
	}
	return childResult{Changed: files.changed}, nil
}

// nodeFiles is the bench's one phase of its own: what the installer's prepare, runtime and
// kubernetes phases upload, under each host's root, then the command when anything changed.
type nodeFiles struct {
	roots   map[string]string
	changed int
}

func (*nodeFiles) Name() string { return "node-files" }

func (p *nodeFiles) Run(ctx context.Context, r *phases.Run) error {
	counts := make(chan int, len(r.All()))
	err := phases.ForEachHost(ctx, r.All(), r.Concurrency, func(ctx context.Context, h *phases.Host) error {
		files, err := renderFiles(r.Cluster, r.Inputs, h.Spec, h.Facts, p.roots[h.Name()])
		if err != nil {
			return err
		}
		n, err := h.UploadAll(ctx, files)
		if err != nil {
			return err
		}
		counts <- n
		if n == 0 {
			return nil
		}
		_, err = h.Exec(ctx, ssh.Cmd{Args: commandLine(p.roots[h.Name()]), Sudo: true})
		return err
	})
	close(counts)
	for n := range counts {
		p.changed += n
	}
	return err
}
