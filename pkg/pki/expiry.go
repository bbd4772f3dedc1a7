package pki

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/constants"
)

// ControlPlaneCertPaths are the certificates kubeadm leaves on a control plane, plus the kubeconfigs
// whose embedded client certificates expire with them (kubeadm renews both on `upgrade`).
func ControlPlaneCertPaths() []string {
	return []string{
		constants.AdminConf,
		constants.ControllerManagerConf,
		constants.PKIDir + "/apiserver-etcd-client.crt",
		constants.PKIDir + "/apiserver-kubelet-client.crt",
		constants.PKIDir + "/apiserver.crt",
		constants.PKIDir + "/ca.crt",
		constants.PKIDir + "/etcd/ca.crt",
		constants.PKIDir + "/etcd/healthcheck-client.crt",
		constants.PKIDir + "/etcd/peer.crt",
		constants.PKIDir + "/etcd/server.crt",
		constants.PKIDir + "/front-proxy-ca.crt",
		constants.PKIDir + "/front-proxy-client.crt",
		constants.SchedulerConf,
		constants.SuperAdminConf,
	}
}

// HostCert is the content of one certificate file (PEM) or kubeconfig read from a host.
type HostCert struct {
	Host string
	Path string
	Data []byte
}

// Status classifies a finding.
type Status string

const (
	StatusOK       Status = "ok"
	StatusExpiring Status = "expiring"
	StatusExpired  Status = "expired"
	// StatusInvalid: the file held no certificate that could be parsed.
	StatusInvalid Status = "invalid"
	// StatusForeign: none of the cluster's CAs signed it.
	StatusForeign Status = "foreign"
)

// Finding is one certificate's expiry.
type Finding struct {
	Host string
	Path string
	// Subject is the certificate's common name ("" for an invalid file).
	Subject string
	// CA is the authority that signed it (see ExpiryReport's signer).
	CA       string
	NotAfter time.Time
	// Remaining is NotAfter minus the report's time (negative once expired).
	Remaining time.Duration
	Status    Status
	// Problem explains an invalid finding.
	Problem string
}

// ExpiryReport parses every certificate in certs (PEM files, several blocks allowed, or kubeconfigs
// with client-certificate-data) and classifies it against now: expired, expiring within warn, or ok.
// signer names the CA that signed a certificate and says whether it is one of the cluster's
// (Bundle.Signer; a certificate none of them signed is StatusForeign); nil takes the issuer's common
// name on trust. Findings are sorted most urgent first: invalid and foreign, then by NotAfter, then
// host and path.
func ExpiryReport(certs []HostCert, now time.Time, warn time.Duration, signer func(*x509.Certificate) (string, bool)) []Finding {
	if signer == nil {
		signer = func(c *x509.Certificate) (string, bool) { return c.Issuer.CommonName, true }
	}
	var out []Finding
	for _, hc := range certs {
		parsed, err := certificatesIn(hc.Data)
		if err != nil {
			out = append(out, Finding{Host: hc.Host, Path: hc.Path, Status: StatusInvalid, Problem: err.Error()})
			continue
		}
		for _, c := range parsed {
			ca, ours := signer(c)
			f := Finding{Host: hc.Host, Path: hc.Path, Subject: c.Subject.CommonName, CA: ca, NotAfter: c.NotAfter, Remaining: c.NotAfter.Sub(now)}
			switch {
			case !ours:
				f.Status = StatusForeign
			case !now.Before(c.NotAfter):
				f.Status = StatusExpired
			case f.Remaining <= warn:
				f.Status = StatusExpiring
			default:
				f.Status = StatusOK
			}
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if urgent(a) != urgent(b) {
			return urgent(a)
		}
		if !a.NotAfter.Equal(b.NotAfter) {
			return a.NotAfter.Before(b.NotAfter)
		}
		if a.Host != b.Host {
			return a.Host < b.Host
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Subject < b.Subject
	})
	return out
}

func urgent(f Finding) bool { return f.Status == StatusInvalid || f.Status == StatusForeign }

// certificatesIn returns the certificates of a PEM file or a kubeconfig. Private keys in either are
// skipped, never parsed or kept.
func certificatesIn(data []byte) ([]*x509.Certificate, error) {
	if !strings.Contains(string(data), "-----BEGIN") {
		return kubeconfigCerts(data)
	}
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate found")
	}
	return certs, nil
}

// kubeconfig is the part of a kubeconfig that carries certificates.
type kubeconfig struct {
	Users []struct {
		User struct {
			ClientCertificateData string `json:"client-certificate-data"`
		} `json:"user"`
	} `json:"users"`
}

func kubeconfigCerts(data []byte) ([]*x509.Certificate, error) {
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return nil, fmt.Errorf("neither PEM nor a kubeconfig: %w", err)
	}
	var certs []*x509.Certificate
	for _, u := range kc.Users {
		if u.User.ClientCertificateData == "" {
			continue
		}
		pemData, err := base64.StdEncoding.DecodeString(u.User.ClientCertificateData)
		if err != nil {
			return nil, fmt.Errorf("client-certificate-data: %w", err)
		}
		cs, err := certificatesIn(pemData)
		if err != nil {
			return nil, fmt.Errorf("client-certificate-data: %w", err)
		}
		certs = append(certs, cs...)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate found")
	}
	return certs, nil
}

// Signer names the CA of b that signed c by kubeadm's base name ("ca", "front-proxy-ca",
// "etcd/ca"), with " (itself)" for the CA's own certificate. When none of them did, it reports
// false with the issuer's name: such a certificate is not this cluster's, whatever that name claims.
func (b *Bundle) Signer(c *x509.Certificate) (string, bool) {
	for _, kp := range b.Pairs() {
		if kp.Cert == nil {
			continue
		}
		if c.Equal(kp.Cert) {
			return kp.CA.BaseName + " (itself)", true
		}
		if c.CheckSignatureFrom(kp.Cert) == nil {
			return kp.CA.BaseName, true
		}
	}
	return "issuer " + c.Issuer.CommonName + ", not this cluster's", false
}
