package hosts

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"installer.dev/installer/lab/aptcache"
	"installer.dev/installer/lab/labspec"
	"installer.dev/installer/lab/podman"
	"installer.dev/installer/lab/rootfs"
)

// MirrorHook starts the lab's mirror servers (lab/mirror: binary mirror, registries, lab CCM) bound to
// the public bridge address once the bridge exists, and stops them at Down. It keeps whatever it needs
// to stop them (PIDs) under dir, because Down may run in another process. nil: no mirror, and the
// spec carries only the apt cache.
type MirrorHook interface {
	Start(ctx context.Context, bindAddress, kubernetesVersion, dir string) (*labspec.Mirror, error)
	Stop(ctx context.Context, dir string) error
}

// Options configure a Lab.
type Options struct {
	Dir      string     // state directory, normally <repo>/.lab
	CacheDir string     // cache outside the clone; default rootfs.DefaultCacheDir()
	Mirror   MirrorHook // optional
	Log      io.Writer  // progress lines; nil: discarded
}

// Lab is one lab state directory and what runs from it.
type Lab struct {
	dir      string
	cacheDir string
	mirror   MirrorHook
	log      io.Writer
	pm       *podman.Podman
}

// New opens the lab in opts.Dir (created if missing).
func New(opts Options) (*Lab, error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("lab dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lab dir: %w", err)
	}
	cache := opts.CacheDir
	if cache == "" {
		if cache, err = rootfs.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	pm, err := podman.New(filepath.Join(dir, "podman"))
	if err != nil {
		return nil, err
	}
	w := opts.Log
	if w == nil {
		w = io.Discard
	}
	return &Lab{dir: dir, cacheDir: cache, mirror: opts.Mirror, log: w, pm: pm}, nil
}

// Dir is the lab's state directory.
func (l *Lab) Dir() string { return l.dir }

// Podman is the lab's podman (state in Dir()/podman).
func (l *Lab) Podman() *podman.Podman { return l.pm }

// KeyFile is the lab's private SSH key; KnownHostsFile holds every host's real keys.
func (l *Lab) KeyFile() string        { return filepath.Join(l.dir, "id_ed25519") }
func (l *Lab) KnownHostsFile() string { return filepath.Join(l.dir, "known_hosts") }

// SpecFile is the generated cluster spec; StateDir the installer's --state-dir for it.
func (l *Lab) SpecFile() string { return filepath.Join(l.dir, "cluster.yaml") }
func (l *Lab) StateDir() string { return filepath.Join(l.dir, "state") }

func (l *Lab) logf(format string, args ...any) { fmt.Fprintf(l.log, format+"\n", args...) }

// Up builds (cached) the host image, creates both networks, starts the hosts, the apt cache and the
// mirror hook, waits until every host answers SSH with the key it generated, and writes the spec.
// On failure everything created so far is removed again.
func (l *Lab) Up(ctx context.Context, topo Topology) (_ *State, err error) {
	topo = topo.withDefaults()
	if err := topo.validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(l.statePath()); err == nil {
		return nil, fmt.Errorf("a lab is already up in %s (run lab down first)", l.dir)
	}
	pub, priv := DefaultNetworks()
	for _, n := range []Network{pub, priv} {
		// Another lab (another state directory) would share the bridge: refuse rather than tangle.
		if exists("/sys/class/net/" + n.Bridge) {
			return nil, fmt.Errorf("bridge %s already exists: another lab is up on this machine", n.Bridge)
		}
	}
	if warning, err := diskWarning(l.dir); err != nil {
		return nil, err
	} else if warning != "" {
		l.logf("%s", warning)
	}
	base, err := recordBaseline()
	if err != nil {
		return nil, err
	}
	st := &State{Topology: topo, Public: pub, Private: priv, Hosts: topo.plan(pub, priv), Baseline: base}
	if err := l.saveState(st); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			if derr := l.Down(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup after failed up: %w", derr))
			}
		}
	}()
	if err := l.ensureKey(ctx); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if st.Image, err = EnsureImage(ctx, l.pm, l.cacheDir); err != nil {
		return nil, err
	}
	l.logf("host image %s ready (%s)", st.Image, time.Since(t0).Round(time.Millisecond))
	if err := l.saveState(st); err != nil {
		return nil, err
	}
	for _, n := range []Network{pub, priv} {
		if err := l.createNetwork(ctx, n); err != nil {
			return nil, err
		}
	}
	t1 := time.Now()
	for i, h := range st.Hosts {
		if err := l.runHost(ctx, st, h); err != nil {
			return nil, err
		}
		if i == 0 {
			// netavark creates the bridges with the first container: now the servers can bind to it.
			if err := l.startServers(ctx, st); err != nil {
				return nil, err
			}
		}
	}
	l.logf("%d hosts started (%s)", len(st.Hosts), time.Since(t1).Round(time.Millisecond))
	if err := l.waitReady(ctx, st, st.Hosts); err != nil {
		return nil, err
	}
	l.logf("%d hosts answer SSH (%s after the first podman run)", len(st.Hosts), time.Since(t1).Round(time.Millisecond))
	if err := l.writeSpec(st); err != nil {
		return nil, err
	}
	return st, l.saveState(st)
}

func (l *Lab) ensureKey(ctx context.Context) error {
	if _, err := os.Stat(l.KeyFile()); err == nil {
		return nil
	}
	out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "installer-lab",
		"-f", l.KeyFile()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("generate lab key: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (l *Lab) createNetwork(ctx context.Context, n Network) error {
	if _, err := l.pm.Run(ctx, "network", "create", "--internal", "--disable-dns",
		"--subnet", n.Subnet(), "--gateway", n.Gateway, n.Name); err != nil {
		return fmt.Errorf("create network %s: %w", n.Name, err)
	}
	// podman 4.3 has no flag for the bridge's name: set it in the network's JSON before first use.
	path := filepath.Join(l.pm.NetworkConfigDir(), n.Name+".json")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	cfg["network_interface"] = n.Bridge
	if data, err = json.MarshalIndent(cfg, "", "     "); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("network %s: %w", n.Name, err)
	}
	return nil
}

// hostLabel marks the lab's containers, so status and cleanup find exactly them.
const hostLabel = "installer.dev/lab-host"

func (l *Lab) runHost(ctx context.Context, st *State, h Host) error {
	vol := filepath.Join(l.dir, "volumes", h.Name, "containerd")
	if err := os.MkdirAll(vol, 0o700); err != nil {
		return fmt.Errorf("host %s: %w", h.Name, err)
	}
	aptProxy := fmt.Sprintf("http://%s:%d", st.Public.Gateway, aptcache.Port)
	args := []string{"run", "-d", "--name", h.Name, "--hostname", h.Name,
		"--label", hostLabel + "=" + h.Name,
		"--privileged", "--systemd=always", "--cgroupns=private",
		// No CAP_SYS_RESOURCE on this machine: higher limits fail.
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=20000:20000",
		// Interface names are explicit: podman otherwise orders a container's networks at random.
		"--network", fmt.Sprintf("%s:ip=%s,mac=%s,interface_name=%s", st.Public.Name, h.Address, h.PublicMAC, PublicInterface),
		"--network", fmt.Sprintf("%s:ip=%s,mac=%s,interface_name=%s", st.Private.Name, h.PrivateAddress, h.PrivateMAC, PrivateInterface),
		// Nothing answers DNS on the bridge: names outside the lab fail fast.
		"--dns", st.Public.Gateway,
		"--tmpfs", "/run", "--tmpfs", "/tmp",
		// containerd's overlayfs snapshotter cannot work on the container's own overlay root.
		"-v", vol + ":/var/lib/containerd",
		"-v", l.KeyFile() + ".pub:/home/" + User + "/.ssh/authorized_keys:ro",
		"-e", "LAB_GATEWAY=" + st.Public.Gateway,
		"-e", "LAB_APT_PROXY=" + aptProxy,
		st.Image}
	if _, err := l.pm.Run(ctx, args...); err != nil {
		return fmt.Errorf("start host %s: %w", h.Name, err)
	}
	return nil
}

func (l *Lab) startServers(ctx context.Context, st *State) error {
	srv, err := aptcache.Start(ctx, aptcache.Config{Dir: filepath.Join(l.dir, "aptcache"),
		CacheDir: filepath.Join(l.cacheDir, "apt-cacher-ng"), Address: st.Public.Gateway})
	if err != nil {
		return err
	}
	st.AptCachePID, st.AptCacheURL = srv.PID, srv.URL
	if err := l.saveState(st); err != nil {
		return err
	}
	l.logf("apt cache %s (pid %d)", srv.URL, srv.PID)
	if l.mirror != nil {
		st.MirrorStarted = true
		if err := l.saveState(st); err != nil {
			return err
		}
		m, err := l.mirror.Start(ctx, st.Public.Gateway, st.Topology.KubernetesVersion, filepath.Join(l.dir, "mirror"))
		if err != nil {
			return fmt.Errorf("start mirror: %w", err)
		}
		st.MirrorURL = m.BinaryMirror
		l.logf("mirror %s", st.MirrorURL)
		if err := l.writeMirrorInfo(m); err != nil {
			return err
		}
		return l.saveState(st)
	}
	return nil
}

func (l *Lab) mirrorInfoPath() string { return filepath.Join(l.dir, "mirror.json") }

func (l *Lab) writeMirrorInfo(m *labspec.Mirror) error {
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("mirror info: %w", err)
	}
	return os.WriteFile(l.mirrorInfoPath(), data, 0o600)
}

func (l *Lab) readMirrorInfo() (*labspec.Mirror, error) {
	data, err := os.ReadFile(l.mirrorInfoPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mirror info: %w", err)
	}
	var m labspec.Mirror
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("mirror info: %w", err)
	}
	return &m, nil
}

// waitReady waits, for every host at once, until its SSH host keys exist (read out of band through
// podman, never over the network) and its sshd answers, then rewrites known_hosts for all hosts.
func (l *Lab) waitReady(ctx context.Context, st *State, hosts []Host) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.waitHost(ctx, h); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("host %s: %w", h.Name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return l.writeKnownHosts(ctx, st)
}

// waitHost waits for sshd's banner (cheap to poll: sshd starts only after ssh-keygen made the host
// keys), then reads the keys once through podman.
func (l *Lab) waitHost(ctx context.Context, h Host) error {
	for sshBanner(h.Address) != nil {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("sshd on %s does not answer: %w", h.Address, err)
		}
	}
	_, err := l.hostKeys(ctx, h)
	return err
}

// hostKeyTypes are the keys each host makes at first boot; known_hosts lists both.
func hostKeyTypes() []string { return []string{"ed25519", "ecdsa"} }

// hostKeys reads the host's public SSH host keys from inside the container (out of band: never
// trusting what the network says).
func (l *Lab) hostKeys(ctx context.Context, h Host) ([]ssh.PublicKey, error) {
	argv := []string{"cat"}
	for _, t := range hostKeyTypes() {
		argv = append(argv, "/etc/ssh/ssh_host_"+t+"_key.pub")
	}
	out, err := l.pm.Exec(ctx, h.Name, argv...)
	if err != nil {
		return nil, err
	}
	var keys []ssh.PublicKey
	rest := []byte(out)
	for len(strings.TrimSpace(string(rest))) > 0 {
		k, _, _, r, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return nil, fmt.Errorf("host keys of %s: %w", h.Name, err)
		}
		keys, rest = append(keys, k), r
	}
	if len(keys) != len(hostKeyTypes()) {
		return nil, fmt.Errorf("host keys of %s: got %d, want %d", h.Name, len(keys), len(hostKeyTypes()))
	}
	return keys, nil
}

func (l *Lab) writeKnownHosts(ctx context.Context, st *State) error {
	var b strings.Builder
	for _, h := range st.Hosts {
		keys, err := l.hostKeys(ctx, h)
		if err != nil {
			if state, _ := l.pm.State(ctx, h.Name); state != "running" {
				continue // a stopped host keeps its keys; written again when it starts
			}
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		for _, k := range keys {
			fmt.Fprintf(&b, "%s,%s %s", h.Address, h.PrivateAddress, ssh.MarshalAuthorizedKey(k))
		}
	}
	tmp := l.KnownHostsFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	return os.Rename(tmp, l.KnownHostsFile())
}

func sshBanner(addr string) error {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "22"), 300*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SSH-2.0-") {
		return fmt.Errorf("unexpected banner %q", line)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (l *Lab) writeSpec(st *State) error {
	in := labspec.Input{
		Name:              "lab",
		KubernetesVersion: st.Topology.KubernetesVersion,
		User:              User,
		KeyFile:           filepath.Base(l.KeyFile()), // relative to the spec's directory
		KnownHostsFile:    filepath.Base(l.KnownHostsFile()),
		PackageProxy:      st.AptCacheURL,
		LoadBalancer:      st.Topology.LoadBalancer,
		Install:           st.Topology.Install,
	}
	if in.LoadBalancer != "none" {
		in.VIP = st.Private.address(vipOctet)
		in.VIPInterface = PrivateInterface
	}
	for _, h := range st.Hosts {
		in.Hosts = append(in.Hosts, labspec.Host{Name: h.Name, Address: h.Address,
			PrivateAddress: h.PrivateAddress, Role: h.Role})
	}
	m, err := l.readMirrorInfo()
	if err != nil {
		return err
	}
	if m != nil {
		// Spec paths are relative to the spec's directory when the file lives in the lab.
		for _, p := range []*string{&m.PackageRepositoryKeyFile, &m.ChecksumsFile} {
			if *p == "" {
				continue
			}
			if rel, err := filepath.Rel(l.dir, *p); err == nil && !strings.HasPrefix(rel, "..") {
				*p = rel
			}
		}
	}
	in.Mirror = m
	data, err := labspec.Marshal(in)
	if err != nil {
		return err
	}
	header := "# Generated by `lab up`; describes the running lab. Regenerated on every up.\n"
	return os.WriteFile(l.SpecFile(), append([]byte(header), data...), 0o644)
}
