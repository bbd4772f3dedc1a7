// Command scale measures the installer's remote engine on N real OpenSSH servers on loopback,
// side by side with the same remote steps as an Ansible playbook and with a bare x/crypto/ssh client
// (the floor), cold and converged (docs/performance.md).
//
//	go run ./bench/scale -n 10,50,200
//
// Each "host" is its own sshd on a loopback address (127.0.1.1, 127.0.1.2, ...) with its own host key, verified through a collected
// known_hosts by every client. The steps per host: read the facts (the installer's facts script),
// put the node files the installer renders for that host in place (under a per-host root directory,
// since every host is this machine), and run one command when a file changed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == childEngine || os.Args[1] == childFloor) {
		// A child run: the orchestrator starts each client as its own process, so its memory and
		// only its memory is measured.
		if err := runChild(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var sizes string
	flag.StringVar(&sizes, "n", "10,50,200", "comma-separated host counts, each measured in turn")
	flag.StringVar(&o.dir, "dir", ".bench-scale", "working directory (host keys, logs, rendered files, results)")
	flag.StringVar(&o.clients, "clients", "installer,floor,ansible", "comma-separated clients to measure")
	flag.IntVar(&o.concurrency, "concurrency", 32, "hosts handled at once by the installer and the floor (the installer's --concurrency default)")
	flag.IntVar(&o.port, "port", 2222, "port every sshd listens on, each on its own 127.0.1.x address")
	flag.StringVar(&o.modes, "modes", "cold,converged", "runs per client: cold (every host's files removed first), converged (a re-run)")
	flag.IntVar(&o.ansibleMax, "ansible-max", 200, "largest host count Ansible is run on (forks = hosts: each fork is a Python process of ~40 MB)")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 2000 {
			fmt.Fprintf(os.Stderr, "scale: -n: %q is not a host count from 1 to 2000\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
	fmt.Print(formatTable(results))
}

type options struct {
	sizes       []int
	dir         string
	clients     string
	concurrency int
	port        int
	ansibleMax  int
	modes       string
}

// run measures every client on every host count and writes the results under o.dir.
func run(ctx context.Context, o options) ([]result, error) {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return nil, err
	}
	largest := 0
	for _, n := range o.sizes {
		largest = max(largest, n)
	}
	fleet, err := startFleet(ctx, dir, largest, o.port)
	if err != nil {
		return nil, err
	}
	defer fleet.stop()
	var results []result
	for _, n := range o.sizes {
		hosts := fleet.hosts[:n]
		job, err := prepareJob(ctx, dir, hosts, fleet, o.concurrency)
		if err != nil {
			return nil, err
		}
		for _, client := range strings.Split(o.clients, ",") {
			if client == "ansible" && o.ansibleMax > 0 && n > o.ansibleMax {
				fmt.Fprintf(os.Stderr, "N=%d ansible: not run (above -ansible-max %d)\n", n, o.ansibleMax)
				continue
			}
			for _, mode := range strings.Split(o.modes, ",") {
				if mode != "cold" && mode != "converged" {
					return nil, fmt.Errorf("-modes: %q is neither cold nor converged", mode)
				}
				if mode == "cold" {
					if err := job.clearRoots(); err != nil {
						return nil, err
					}
				}
				fmt.Fprintf(os.Stderr, "N=%d %s %s ...\n", n, client, mode)
				res, err := measure(ctx, job, client, mode)
				if err != nil {
					return nil, fmt.Errorf("%d hosts, %s, %s run: %w", n, client, mode, err)
				}
				fmt.Fprintf(os.Stderr, "N=%d %s %s: %.1fs, %d files changed, %.1f sessions/host (max %d), %.1f connections/host, controller CPU %.1fs, peak RSS %.0f MB (Go heap %.0f MB, %d goroutines)\n",
					n, client, mode, res.Wall.Seconds(), res.Changed, res.sessionsPerHost(), res.MaxSessions,
					float64(res.Connections)/float64(res.Hosts), res.ControllerCPU.Seconds(), res.PeakRSSMB, res.PeakHeapMB, res.PeakGoroutines)
				results = append(results, res)
			}
		}
	}
	data, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "results.json"), data, 0o644); err != nil {
		return nil, err
	}
	return results, os.WriteFile(filepath.Join(dir, "results.md"), []byte(formatTable(results)), 0o644)
}
