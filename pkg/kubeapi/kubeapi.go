// Package kubeapi talks to the cluster's API server through an SSH tunnel to a control plane's local
// apiserver: server-side apply of rendered manifests and polling of real conditions (nodes Ready,
// initialised by the CCM, CoreDNS available). No port is opened and no kubectl is needed on the host.
package kubeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"

	"installer.dev/installer/pkg/constants"
)

// DialFunc opens a connection from a control plane's side (ssh.Runner.DialContext).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Client is a connection to the cluster's API.
type Client struct {
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	// retryInterval is the pause between retries of a write (0: 2 s).
	retryInterval time.Duration
}

// Connect builds a client from an admin kubeconfig (the content of /etc/kubernetes/admin.conf),
// reaching the local apiserver of the control plane behind dial, whatever server the kubeconfig
// names: during init the endpoint (a VIP) may not answer yet.
func Connect(adminConf []byte, dial DialFunc) (*Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(adminConf)
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig: %w", err)
	}
	cfg.Host = "https://" + constants.LocalAPIServer
	cfg.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dial(ctx, network, constants.LocalAPIServer)
	}
	cfg.Timeout = 30 * time.Second
	cfg.QPS, cfg.Burst = 50, 100
	cfg.UserAgent = "installer"
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery()))
	return &Client{Kube: kube, Dynamic: dyn, mapper: mapper}, nil
}

// Transient marks an error a check expects to pass (the apiserver restarting, a request cut short
// near the deadline): Poll keeps polling and reports it beside the last state a check saw.
func Transient(err error) error { return &transientError{err} }

type transientError struct{ error }

func (e *transientError) Unwrap() error { return e.error }

// writeRetry bounds how long a write is retried while the API answers only transiently.
const writeRetry = 2 * time.Minute

// retryTransient calls write until it succeeds, the API refuses it for good (a 4xx status other
// than a timeout or throttling: not found, forbidden, invalid, conflict) or writeRetry passes.
// Connection errors and 5xx answers are what a restarting apiserver gives.
func (c *Client) retryTransient(ctx context.Context, what string, write func(ctx context.Context) error) error {
	interval := c.retryInterval
	if interval == 0 {
		interval = 2 * time.Second
	}
	var final error
	err := Poll(ctx, interval, writeRetry, what, func(ctx context.Context) (bool, string, error) {
		err := write(ctx)
		switch {
		case err == nil:
			return true, "", nil
		case definitive(err):
			final = err
			return false, "", err
		default:
			return false, "", Transient(err)
		}
	})
	if final != nil {
		return fmt.Errorf("%s: %w", what, final)
	}
	return err
}

// definitive: the API server answered and refused the request; repeating it changes nothing.
func definitive(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	code := status.Status().Code
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// Poll calls check every interval until it reports done, returns an error, or the deadline passes.
// The error on timeout carries the last state a check reported (and the last transient error after
// it), so the user sees what was missing.
func Poll(ctx context.Context, interval, timeout time.Duration, what string, check func(ctx context.Context) (done bool, state string, err error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	last, lastErr := "no answer yet", ""
	for {
		done, state, err := check(ctx)
		var tr *transientError
		switch {
		case ctx.Err() != nil:
			// A check cut short by the deadline saw nothing new.
			if lastErr != "" {
				last += "; then: " + lastErr
			}
			return fmt.Errorf("%s: not reached within %s (last seen: %s)", what, timeout, last)
		case errors.As(err, &tr):
			lastErr = tr.Error()
			err = nil
		case err != nil:
			return err
		case state != "":
			lastErr = ""
		}
		if state != "" {
			last = state
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			if lastErr != "" {
				last += "; then: " + lastErr
			}
			return fmt.Errorf("%s: not reached within %s (last seen: %s)", what, timeout, last)
		case <-t.C:
		}
	}
}
