package drift

import (
	"crypto/x509"
	"net"
	"slices"
)

// SANs compares the names a serving certificate must hold with the ones it holds. A name of
// removed (the cluster's configuration had it, the spec no longer does) still in the certificate
// must go. Returns "+ name" and "- name" lines, in the order of want, then removed.
func SANs(want, removed []string, cert *x509.Certificate) []string {
	var out []string
	for _, n := range want {
		if !hasName(cert, n) {
			out = append(out, "+ "+n)
		}
	}
	for _, n := range removed {
		if !slices.Contains(want, n) && hasName(cert, n) {
			out = append(out, "- "+n)
		}
	}
	return out
}

// hasName reports whether cert names n: as an IP address when n is one, else as a DNS name.
func hasName(cert *x509.Certificate, n string) bool {
	if ip := net.ParseIP(n); ip != nil {
		return slices.ContainsFunc(cert.IPAddresses, ip.Equal)
	}
	return slices.Contains(cert.DNSNames, n)
}

// Subtract returns the names of old that want lacks, in old's order.
func Subtract(old, want []string) []string {
	var out []string
	for _, n := range old {
		if !slices.Contains(want, n) {
			out = append(out, n)
		}
	}
	return out
}
