package phases

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/manifests"
	"installer.dev/installer/pkg/phases/internal/simhost"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/ssh"
)

// BenchmarkCreate1000Hosts runs the create workflow's host phases over 1,000 simulated hosts whose
// every remote call takes a fixed latency, and compares the wall time with the ideal of a perfect
// bounded fan-out: for each phase, ceil(N / concurrency) rounds of the slowest host's calls.
// Reported: ideal-s, wall-s, overhead (wall/ideal) and peak-heap-MB.
func BenchmarkCreate1000Hosts(b *testing.B) {
	const (
		n           = 1000
		concurrency = 32
		latency     = 2 * time.Millisecond
	)
	c := &v1alpha1.Cluster{Metadata: v1alpha1.ObjectMeta{Name: "bench"}, Spec: v1alpha1.ClusterSpec{
		KubernetesVersion: "v1.36.5",
		Install:           v1alpha1.Install{Source: v1alpha1.InstallBinary, BinaryMirror: "http://m", ArtifactMirror: "http://m"},
	}}
	for i := 0; i < n; i++ {
		role := v1alpha1.RoleWorker
		if i == 0 {
			role = v1alpha1.RoleControlPlane
		}
		c.Spec.Hosts = append(c.Spec.Hosts, v1alpha1.Host{Name: fmt.Sprintf("h%04d", i), Address: fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256+1), Role: role})
	}
	c.Default()
	c.Spec.Install.ChecksumsFile = simPins(b, &c.Spec) // preflight refuses unpinned downloads
	bundle, err := pki.LoadOrGenerate(filepath.Join(b.TempDir(), "pki"), pki.Options{})
	if err != nil {
		b.Fatal(err)
	}
	in, err := manifests.LoadInputs(context.Background(), &c.Spec, manifests.LoadOptions{VRRPPassword: "x", HashKey: []byte("k")})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		hosts := simhost.NewCluster()
		for _, h := range c.Spec.Hosts {
			hosts.Add(h.Name, h.Address, h.Role == v1alpha1.RoleControlPlane).SetLatency(latency)
		}
		r, _ := NewRun(c, nil)
		r.PKI, r.Inputs, r.Concurrency = bundle, in, concurrency
		counts := &phaseCounts{run: r, perHost: map[string]map[string]int{}}
		r.Connect = func(ctx context.Context, h v1alpha1.Host) (ssh.Runner, error) {
			return &countingRunner{Runner: hosts.Host(h.Name), counts: counts}, nil
		}

		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // sample the heap while the run goes on
			defer wg.Done()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		start := time.Now()
		timings, err := Execute(context.Background(), r, hostPhases())
		wall := time.Since(start)
		close(stop)
		wg.Wait()
		if err != nil {
			b.Fatal(err)
		}

		// Ideal: per phase, ceil(hosts in it / concurrency) rounds, each as long as the busiest
		// host's calls in that phase (measured) times the latency.
		var ideal time.Duration
		for _, t := range timings {
			hostsIn, most := counts.phase(t.Phase)
			rounds := (hostsIn + concurrency - 1) / concurrency
			ideal += time.Duration(rounds*most) * latency
		}
		b.ReportMetric(ideal.Seconds(), "ideal-s")
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(wall.Seconds()/ideal.Seconds(), "overhead")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
	}
}

// countingRunner counts every remote call per phase and host on its way to the simulated host (it
// is no host of its own: the phase it counts under is the run's, which only this package sees).
type countingRunner struct {
	ssh.Runner
	counts *phaseCounts
}

type phaseCounts struct {
	run     *Run
	mu      sync.Mutex
	perHost map[string]map[string]int // phase -> host -> calls
}

func (p *phaseCounts) add(host string) {
	p.run.j.mu.Lock()
	phase := p.run.j.phase
	p.run.j.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.perHost[phase] == nil {
		p.perHost[phase] = map[string]int{}
	}
	p.perHost[phase][host]++
}

// phase returns how many hosts a phase touched and the most calls one of them got.
func (p *phaseCounts) phase(name string) (hosts, most int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.perHost[name] {
		hosts++
		if n > most {
			most = n
		}
	}
	return hosts, most
}

func (c *countingRunner) Run(ctx context.Context, cmd ssh.Cmd) (ssh.Result, error) {
	c.counts.add(c.Host())
	return c.Runner.Run(ctx, cmd)
}

func (c *countingRunner) WriteFile(ctx context.Context, f ssh.File) (bool, error) {
	c.counts.add(c.Host())
	return c.Runner.WriteFile(ctx, f)
}
