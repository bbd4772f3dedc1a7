package phases

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/pki"
	"installer.dev/installer/pkg/scripts"
	"installer.dev/installer/pkg/ssh"
)

// CertsCheck reads the certificates of every target host, never a key (certs.sh): on a control plane
// kubeadm's set and the kubeconfigs' client certificates, on every node the kubelet's client
// certificate; and reports when each expires and which of the cluster's CAs signed it. It changes
// nothing.
type CertsCheck struct {
	// Warn is how close to its expiry a certificate is reported as expiring.
	Warn time.Duration
	// Report receives the findings, most urgent first.
	Report *[]pki.Finding
}

func (CertsCheck) Name() string { return "certs" }

func (c CertsCheck) Run(ctx context.Context, r *Run) error {
	var (
		mu  sync.Mutex
		all []pki.HostCert
	)
	err := ForEachHost(ctx, r.Targets(), r.Concurrency, func(ctx context.Context, h *Host) error {
		paths := []string{constants.KubeletClientCert}
		if h.Spec.Role == v1alpha1.RoleControlPlane {
			paths = append(pki.ControlPlaneCertPaths(), paths...)
		}
		res, err := h.Query(ctx, ssh.Cmd{Args: scripts.Certs.Args(paths...)})
		if err != nil {
			return fmt.Errorf("read certificates: %w", err)
		}
		certs, err := parseCerts(h.Name(), string(res.Stdout))
		if err != nil {
			return err
		}
		mu.Lock()
		all = append(all, certs...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	var signer func(*x509.Certificate) (string, bool)
	if r.PKI != nil {
		signer = r.PKI.Signer
	}
	*c.Report = pki.ExpiryReport(all, time.Now(), c.Warn, signer)
	return nil
}

// parseCerts reads certs.sh's output: "=== PATH" sections of PEM certificates, or of a kubeconfig's
// base64 client-certificate-data lines (decoded here into PEM).
func parseCerts(host, out string) ([]pki.HostCert, error) {
	var certs []pki.HostCert
	for _, section := range strings.Split(out, "=== ")[1:] {
		path, body, _ := strings.Cut(section, "\n")
		hc := pki.HostCert{Host: host, Path: path, Data: []byte(body)}
		if strings.HasSuffix(path, ".conf") {
			var pemData []byte
			for _, line := range strings.Fields(body) {
				b, err := base64.StdEncoding.DecodeString(line)
				if err != nil {
					return nil, fmt.Errorf("%s: client-certificate-data: %w", path, err)
				}
				pemData = append(pemData, b...)
			}
			hc.Data = pemData
		}
		certs = append(certs, hc)
	}
	return certs, nil
}
