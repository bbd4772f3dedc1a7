package ssh

import (
	"context"
	"errors"
	"sync"
)

// Pool keeps one Client per host name for a whole run, so every phase
// shares the host's one connection and its session cap.
type Pool struct {
	opts Options
	// keys is shared so an encrypted key is decrypted (and its passphrase
	// asked for) once per run, not once per host.
	keys    *keyCache
	mu      sync.Mutex
	clients map[string]*Client
}

// NewPool returns an empty pool; opts apply to every client it makes.
func NewPool(opts Options) *Pool {
	if opts.Output != nil {
		// One lock for all hosts, so lines from different hosts never mix.
		opts.Output = &lockedWriter{w: opts.Output}
	}
	return &Pool{opts: opts, keys: &keyCache{}, clients: map[string]*Client{}}
}

// Get returns the host's Client, connected. The first call for a name
// decides its Config; later calls return the same Client.
func (p *Pool) Get(ctx context.Context, cfg Config) (*Client, error) {
	name := cfg.Name
	if name == "" {
		name = cfg.Address
	}
	p.mu.Lock()
	c, ok := p.clients[name]
	if !ok {
		var err error
		if c, err = newClient(cfg, p.opts, p.keys); err != nil {
			p.mu.Unlock()
			return nil, err
		}
		p.clients[name] = c
	}
	p.mu.Unlock()
	// Dial outside the pool's lock so hosts connect in parallel.
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes every connection.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for name, c := range p.clients {
		errs = append(errs, c.Close())
		delete(p.clients, name)
	}
	return errors.Join(errs...)
}
