package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Client is a Runner for one host over one SSH connection, dialled lazily
// and dialled again after it drops.
type Client struct {
	cfg  Config
	opts Options
	log  *slog.Logger
	out  io.Writer // locked, shared by a Pool's clients; nil without -v

	keys      *keyCache // shared by a Pool's clients
	hostKeys  *hostKeys
	bastionHK *hostKeys

	// sessions caps concurrent sessions on the connection.
	sessions chan struct{}

	mu     sync.Mutex // guards conn and closed; held while dialling
	conn   *conn
	closed bool

	sudoMu sync.Mutex
	sudoOK bool
}

var _ Runner = (*Client)(nil)

// conn is one established connection (and its bastion hop, if any).
type conn struct {
	ssh     *gossh.Client
	bastion *gossh.Client
	done    chan struct{} // closed when the connection has ended
	dead    atomic.Bool   // set as soon as we give up on it
	noSFTP  atomic.Bool   // the server refused the sftp subsystem
	// lostKeepalives: closed because keepalives went unanswered (the host or the path to it is gone).
	lostKeepalives atomic.Bool
}

func (cn *conn) alive() bool {
	if cn.dead.Load() {
		return false
	}
	select {
	case <-cn.done:
		return false
	default:
		return true
	}
}

func (cn *conn) close() {
	cn.dead.Store(true)
	_ = cn.ssh.Close()
	if cn.bastion != nil {
		_ = cn.bastion.Close()
	}
}

// ping sends an OpenSSH keepalive; any answer, even a refusal, means the
// connection still works.
func (cn *conn) ping(timeout time.Duration) bool {
	res := make(chan error, 1)
	go func() {
		_, _, err := cn.ssh.SendRequest("keepalive@openssh.com", true, nil)
		res <- err
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-res:
		return err == nil
	case <-t.C:
		return false
	case <-cn.done:
		return false
	}
}

// New checks cfg and returns a Client that dials on first use.
func New(cfg Config, opts Options) (*Client, error) {
	return newClient(cfg, opts, &keyCache{})
}

func newClient(cfg Config, opts Options, keys *keyCache) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	c := &Client{
		cfg:      cfg,
		opts:     opts,
		keys:     keys,
		log:      opts.Logger.With("host", cfg.Name),
		sessions: make(chan struct{}, opts.MaxSessions),
		hostKeys: &hostKeys{host: cfg.Name, file: cfg.KnownHostsFile, policy: cfg.HostKeyPolicy, log: opts.Logger},
	}
	if opts.Output != nil {
		c.out = &lockedWriter{w: opts.Output}
	}
	if b := cfg.Bastion; b != nil {
		c.bastionHK = &hostKeys{host: c.bastionLabel(), file: cfg.KnownHostsFile, policy: cfg.HostKeyPolicy, log: opts.Logger}
	}
	return c, nil
}

// Dial returns a connected Client.
func Dial(ctx context.Context, cfg Config, opts Options) (*Client, error) {
	c, err := New(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Host returns the host's name.
func (c *Client) Host() string { return c.cfg.Name }

// Connect dials now unless a live connection exists, so that access
// problems show up before any work starts.
func (c *Client) Connect(ctx context.Context) error {
	_, err := c.connect(ctx)
	return err
}

// Close ends the connection; the Client cannot be used afterwards.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		c.conn.close()
		c.conn = nil
	}
	return nil
}

func (c *Client) connect(ctx context.Context) (*conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("host %s: client is closed", c.cfg.Name)
	}
	if c.conn != nil && c.conn.alive() {
		return c.conn, nil
	}
	redial := false
	if c.conn != nil {
		redial = c.conn.lostKeepalives.Load()
		c.conn.close()
		c.conn = nil
	}
	cn, err := c.dial(ctx, redial)
	if err != nil {
		return nil, err
	}
	c.conn = cn
	return cn, nil
}

func (c *Client) bastionLabel() string {
	return fmt.Sprintf("%s (bastion %s)", c.cfg.Name, c.cfg.Bastion.addr())
}

// dial connects and logs in. redial: it replaces a connection whose keepalives went unanswered, so
// the TCP connect gets only ReconnectTimeout (a host cut off drops the SYN; a live one answers
// within a second).
func (c *Client) dial(ctx context.Context, redial bool) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	tcpDial := c.opts.Dial
	if redial {
		tcpDial = func(ctx context.Context, network, address string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, c.opts.ReconnectTimeout)
			defer cancel()
			return c.opts.Dial(ctx, network, address)
		}
	}
	// Credentials first: a local problem must not look like a host problem.
	hostLogin, err := c.keys.login(loginSpec{
		user: c.cfg.User, keyFile: c.cfg.KeyFile, passphraseEnv: c.cfg.PassphraseEnv,
		passwordEnv: c.cfg.PasswordEnv, agent: c.cfg.Agent,
	}, c.opts)
	if err != nil {
		return nil, err
	}
	defer hostLogin.close()

	target := c.cfg.addr()
	start := time.Now()
	cn := &conn{done: make(chan struct{})}
	var netConn net.Conn
	if b := c.cfg.Bastion; b != nil {
		bastionLogin, err := c.keys.login(loginSpec{
			user: b.User, keyFile: b.KeyFile, passphraseEnv: b.PassphraseEnv, agent: c.cfg.Agent,
		}, c.opts)
		if err != nil {
			return nil, err
		}
		defer bastionLogin.close()
		bconn, err := tcpDial(ctx, "tcp", b.addr())
		if err != nil {
			return nil, &UnreachableError{Host: c.bastionLabel(), Address: b.addr(), Err: err}
		}
		if cn.bastion, err = handshake(ctx, bconn, b.addr(), c.bastionLabel(), bastionLogin, c.bastionHK); err != nil {
			return nil, err
		}
		if netConn, err = cn.bastion.DialContext(ctx, "tcp", target); err != nil {
			_ = cn.bastion.Close()
			return nil, &UnreachableError{Host: c.cfg.Name, Address: target, Via: b.addr(), Err: err}
		}
	} else {
		if netConn, err = tcpDial(ctx, "tcp", target); err != nil {
			return nil, &UnreachableError{Host: c.cfg.Name, Address: target, Err: err}
		}
	}
	if cn.ssh, err = handshake(ctx, netConn, target, c.cfg.Name, hostLogin, c.hostKeys); err != nil {
		if cn.bastion != nil {
			_ = cn.bastion.Close()
		}
		return nil, err
	}
	go func() {
		_ = cn.ssh.Wait()
		if cn.bastion != nil {
			_ = cn.bastion.Close()
		}
		close(cn.done)
	}()
	go c.keepAlive(cn)
	c.log.Debug("connected", "address", target, "user", c.cfg.User, "took", time.Since(start))
	return cn, nil
}

// keepAlive closes a connection that stops answering, so that the commands on it fail and the next
// call dials again instead of hanging on a dead TCP connection. A keepalive goes out every
// KeepAlive, one at a time; the connection is dead once none was answered for DeadAfter.
func (c *Client) keepAlive(cn *conn) {
	t := time.NewTicker(c.opts.KeepAlive)
	defer t.Stop()
	answered := make(chan struct{}, 1)
	last, waiting := time.Now(), false // the last answer; whether a keepalive is out
	for {
		select {
		case <-cn.done:
			return
		case <-answered:
			last, waiting = time.Now(), false
		case now := <-t.C:
			// An answer that arrived with this tick counts first.
			select {
			case <-answered:
				last, waiting = now, false
			default:
			}
			if silent := now.Sub(last); silent >= c.opts.DeadAfter {
				c.log.Warn("connection stopped answering keepalives; closing it", "silent", silent.Round(time.Second))
				cn.lostKeepalives.Store(true)
				cn.close()
				return
			}
			if waiting {
				continue
			}
			waiting = true
			go func() {
				// Any answer, even a refusal, means the server is there.
				if _, _, err := cn.ssh.SendRequest("keepalive@openssh.com", true, nil); err == nil {
					answered <- struct{}{}
				}
			}()
		}
	}
}

// handshake runs the SSH handshake on netConn, bounded by ctx (a bastion's
// channel has no deadlines, so the connection is closed instead).
func handshake(ctx context.Context, netConn net.Conn, addr, label string, l *login, hk *hostKeys) (*gossh.Client, error) {
	check, algos, err := hk.prepare(addr)
	if err != nil {
		_ = netConn.Close()
		return nil, fmt.Errorf("host %s: %w", label, err)
	}
	cfg := &gossh.ClientConfig{User: l.user, Auth: l.methods, HostKeyCallback: check, HostKeyAlgorithms: algos}
	type result struct {
		conn  gossh.Conn
		chans <-chan gossh.NewChannel
		reqs  <-chan *gossh.Request
		err   error
	}
	done := make(chan result, 1)
	go func() {
		c, chans, reqs, err := gossh.NewClientConn(netConn, addr, cfg)
		done <- result{c, chans, reqs, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		_ = netConn.Close()
		if r = <-done; r.err == nil {
			_ = r.conn.Close()
		}
		return nil, &UnreachableError{Host: label, Address: addr, Err: fmt.Errorf("SSH handshake: %w", ctx.Err())}
	}
	if r.err != nil {
		return nil, classifyHandshake(r.err, addr, label, l, hk, algos)
	}
	return gossh.NewClient(r.conn, r.chans, r.reqs), nil
}

func classifyHandshake(err error, addr, label string, l *login, hk *hostKeys, algos []string) error {
	var (
		keyErr *HostKeyError
		negErr *gossh.AlgorithmNegotiationError
	)
	switch {
	case errors.As(err, &keyErr):
		return keyErr
	case errors.As(err, &negErr) && negErr.What == "host key" && len(algos) > 0:
		// We asked only for the key types known_hosts has for this host
		// and the host has none of them any more.
		return &HostKeyError{
			Host: label, Address: addr, Problem: HostKeyChanged, KnownHostsFile: hk.file,
			KeyType: "only " + strings.Join(negErr.RequestedAlgorithms, ","), Fingerprint: "(not negotiated)",
			Known: []string{"key types " + strings.Join(algos, ",")}, Err: err,
		}
	case strings.Contains(err.Error(), "unable to authenticate"):
		return &AuthError{Host: label, Address: addr, User: l.user, Offered: l.offered, Err: err}
	}
	return &UnreachableError{Host: label, Address: addr, Err: err}
}

// withConn runs op on a live connection. When op fails because the
// connection dropped, the error becomes a ConnectionLostError, and op runs
// once more on a fresh connection if retry is set.
func (c *Client) withConn(ctx context.Context, retry bool, op func(*conn) error) error {
	for attempt := 0; ; attempt++ {
		cn, err := c.connect(ctx)
		if err != nil {
			return err
		}
		err = op(cn)
		if !c.lost(ctx, cn, err) {
			return err
		}
		lostErr := &ConnectionLostError{Host: c.cfg.Name, Err: err}
		if !retry || attempt > 0 {
			return lostErr
		}
		c.log.Warn("connection lost; dialling again", "error", err)
	}
}

// lost tells whether err came from the connection going away rather than
// from the remote side answering.
func (c *Client) lost(ctx context.Context, cn *conn, err error) bool {
	var exitErr *gossh.ExitError
	if err == nil || ctx.Err() != nil || errors.As(err, &exitErr) {
		return false
	}
	if !cn.alive() {
		return true
	}
	if !cn.ping(5 * time.Second) {
		cn.close()
		return true
	}
	return false
}

// acquire takes a session slot, waiting while MaxSessions are in use.
func (c *Client) acquire(ctx context.Context) (release func(), err error) {
	select {
	case c.sessions <- struct{}{}:
		return func() { <-c.sessions }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// newSession opens a session, retrying briefly when the server refuses
// the channel: OpenSSH frees a session's MaxSessions slot a moment after
// the session closes, so a slot we just released may still count there.
func (c *Client) newSession(ctx context.Context, cn *conn) (*gossh.Session, error) {
	delay := 5 * time.Millisecond
	deadline := time.Now().Add(3 * time.Second)
	for {
		s, err := cn.ssh.NewSession()
		if err == nil {
			return s, nil
		}
		var refused *gossh.OpenChannelError
		if !errors.As(err, &refused) || time.Now().After(deadline) {
			return nil, fmt.Errorf("open session: %w", err)
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// exec runs one command line in a session. The error is the library's:
// nil, *gossh.ExitError, or a transport error.
func (c *Client) exec(ctx context.Context, cn *conn, line string, stdin []byte, stdout, stderr io.Writer) error {
	release, err := c.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	s, err := c.newSession(ctx, cn)
	if err != nil {
		return err
	}
	defer func() { _ = s.Close() }()
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	s.Stdout, s.Stderr = stdout, stderr
	if err := s.Start(line); err != nil {
		return fmt.Errorf("start command: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = s.Signal(gossh.SIGKILL)
		_ = s.Close()
		<-done
		return ctx.Err()
	}
}

// Run implements Runner.
func (c *Client) Run(ctx context.Context, cmd Cmd) (Result, error) {
	if len(cmd.Args) == 0 {
		return Result{}, fmt.Errorf("host %s: empty command", c.cfg.Name)
	}
	sudo := cmd.Sudo && c.cfg.User != "root"
	if sudo {
		if err := c.ensureSudo(ctx); err != nil {
			return Result{}, err
		}
	}
	shown := ShowCommand(cmd)
	line := CommandLine(cmd.Args, sudo)
	start := time.Now()
	var res Result
	err := c.withConn(ctx, cmd.Idempotent, func(cn *conn) error {
		var stdout, stderr bytes.Buffer
		outW, flushOut := c.streams(&stdout, cmd.Stdout, cmd)
		errW, flushErr := c.streams(&stderr, cmd.Stderr, cmd)
		err := c.exec(ctx, cn, line, cmd.Stdin, outW, errW)
		flushOut()
		flushErr()
		res = Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
		return err
	})
	var (
		exitErr    *gossh.ExitError
		missingErr *gossh.ExitMissingError
	)
	switch {
	case err == nil:
		c.log.Debug("ran", "cmd", shown, "sudo", sudo, "took", time.Since(start))
		return res, nil
	case IsHostAccess(err):
		// Before the exit checks: a ConnectionLostError wraps the
		// library's ExitMissingError.
		return res, err
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitStatus()
		signal := exitErr.Signal()
		if signal != "" {
			res.ExitCode = -1
		}
		c.log.Debug("failed", "cmd", shown, "sudo", sudo, "exit", res.ExitCode, "signal", signal, "took", time.Since(start))
		return res, c.commandError(cmd, shown, res, signal)
	case errors.As(err, &missingErr):
		res.ExitCode = -1
		return res, c.commandError(cmd, shown, res, "(none reported)")
	}
	if cmd.Sensitive {
		return res, fmt.Errorf("host %s: run a sensitive command: %w", c.cfg.Name, err)
	}
	return res, fmt.Errorf("host %s: run %q: %w", c.cfg.Name, shown, err)
}

func (c *Client) commandError(cmd Cmd, shown string, res Result, signal string) *CommandError {
	e := &CommandError{Host: c.cfg.Name, ExitCode: res.ExitCode, Signal: signal, Sensitive: cmd.Sensitive}
	if !cmd.Sensitive {
		e.Command = shown
		e.Stderr = tail(redact(string(res.Stderr), cmd.Secrets), stderrTailLines, stderrTailBytes)
	}
	return e
}

// ShowCommand is the command as logs, plans and errors may show it: secrets redacted, a sensitive
// command not at all, and a script run as `sh -c BODY NAME ARGS...` as `NAME ARGS...` (the body is
// constant text of the installer, and its lines would bury the arguments and the error).
func ShowCommand(cmd Cmd) string {
	if cmd.Sensitive {
		return "<sensitive>"
	}
	args := cmd.Args
	if len(args) >= 4 && args[0] == "sh" && args[1] == "-c" && strings.Contains(args[2], "\n") {
		args = args[3:]
	}
	return redact(Quote(args), cmd.Secrets)
}

// streams builds the writer a command's output goes to: the capture
// buffer, the caller's writer, and the -v output unless sensitive.
func (c *Client) streams(capture *bytes.Buffer, extra io.Writer, cmd Cmd) (io.Writer, func()) {
	ws := []io.Writer{capture}
	if extra != nil {
		ws = append(ws, extra)
	}
	flush := func() {}
	if c.out != nil && !cmd.Sensitive {
		p := &linePrefixer{w: c.out, prefix: "[" + c.cfg.Name + "] ", secrets: cmd.Secrets}
		ws = append(ws, p)
		flush = p.flush
	}
	return io.MultiWriter(ws...), flush
}

// ensureSudo checks once per Client that sudo works without a password,
// so a host that asks for one fails with a clear message before any work.
func (c *Client) ensureSudo(ctx context.Context) error {
	c.sudoMu.Lock()
	defer c.sudoMu.Unlock()
	if c.sudoOK {
		return nil
	}
	var stderr bytes.Buffer
	err := c.withConn(ctx, true, func(cn *conn) error {
		stderr.Reset()
		return c.exec(ctx, cn, Quote([]string{"sudo", "-n", "true"}), nil, io.Discard, &stderr)
	})
	var exitErr *gossh.ExitError
	switch {
	case err == nil:
		c.sudoOK = true
		return nil
	case errors.As(err, &exitErr):
		msg := strings.TrimSpace(stderr.String())
		return &SudoError{
			Host: c.cfg.Name, User: c.cfg.User,
			NeedsPassword: strings.Contains(msg, "password is required") || strings.Contains(msg, "terminal is required"),
			Detail:        tail(msg, 1, 200),
		}
	}
	return err
}

// DialContext implements Runner: the host opens the TCP connection
// (direct-tcpip), so addresses like 127.0.0.1 are the host's own.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nc net.Conn
	err := c.withConn(ctx, true, func(cn *conn) error {
		var err error
		nc, err = cn.ssh.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		if IsHostAccess(err) {
			return nil, err
		}
		return nil, fmt.Errorf("host %s: dial %s from the host: %w", c.cfg.Name, addr, err)
	}
	return nc, nil
}
