// Package pki owns the cluster's certificate authorities and service-account key pair: it loads them
// from the state directory's pki/ or generates what is missing (never what exists), computes the
// discovery hash joining nodes check the cluster CA against, lists the files uploaded to control
// planes, fetches the CAs back from a control plane when the state directory is lost, and reports
// certificate expiry. File names and formats are kubeadm's, so kubeadm adopts the files as they are.
package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"installer.dev/installer/pkg/constants"
	"installer.dev/installer/pkg/manifests"
)

// Defaults follow kubeadm's own (constants.CACertificateValidityPeriod, CertificateBackdate and
// EncryptionAlgorithm RSA-2048), so a CA we generate is indistinguishable from one kubeadm makes.
const (
	CAValidity  = 10 * 365 * 24 * time.Hour
	Backdate    = 5 * time.Minute
	RSAKeyBits  = 2048
	DirMode     = fs.FileMode(0o700)
	KeyFileMode = fs.FileMode(0o600)
	// CertFileMode: certificates are public, but they live in a 0700 directory anyway.
	CertFileMode = fs.FileMode(0o644)
)

// CA names one certificate authority by kubeadm's base name (relative to pki/) and common name.
type CA struct {
	BaseName   string
	CommonName string
}

// The three CAs of a kubeadm cluster, in the order they are listed everywhere.
var (
	ClusterCA    = CA{BaseName: "ca", CommonName: "kubernetes"}
	FrontProxyCA = CA{BaseName: "front-proxy-ca", CommonName: "front-proxy-ca"}
	EtcdCA       = CA{BaseName: "etcd/ca", CommonName: "etcd-ca"}
)

// CAs returns the three CAs; a function so nobody can change the list.
func CAs() []CA { return []CA{ClusterCA, FrontProxyCA, EtcdCA} }

// Service-account key pair file names (relative to pki/).
const (
	SAKeyName = "sa.key"
	SAPubName = "sa.pub"
)

// KeyPair is a CA certificate and its private key, parsed and as PEM.
type KeyPair struct {
	CA      CA
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

// Bundle is the installer-owned PKI of one cluster.
type Bundle struct {
	// Dir is the local pki/ directory the bundle was loaded from or written to ("" when fetched only).
	Dir        string
	Cluster    KeyPair
	FrontProxy KeyPair
	Etcd       KeyPair
	SAKey      *rsa.PrivateKey
	SAKeyPEM   []byte
	SAPubPEM   []byte
	// Written lists the files (relative to Dir) this call wrote; empty when everything existed.
	Written []string
}

// Options tune generation; the zero value means kubeadm's defaults and the real clock.
type Options struct {
	// Now is the clock used for NotBefore/NotAfter; default time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// ErrNoPKI is Load's answer for a directory that holds none of the PKI's files.
var ErrNoPKI = errors.New("no PKI")

// Load reads the PKI from dir (the state directory's pki/) and generates nothing: a directory with
// none of the files is ErrNoPKI, one with only some of them an error naming what is missing. Keys
// found readable by others are narrowed to 0600.
func Load(dir string) (*Bundle, error) {
	present := 0
	for _, name := range FileNames() {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			present++
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	if present == 0 {
		return nil, fmt.Errorf("pki: %s: %w", dir, ErrNoPKI)
	}
	return load(dir, Options{}, false)
}

// Generate makes a new PKI in memory (three CAs and the service-account key pair); Save writes it.
func Generate(opts Options) (*Bundle, error) {
	b := &Bundle{}
	for _, ca := range CAs() {
		kp, err := NewCA(ca, opts)
		if err != nil {
			return nil, err
		}
		*b.pair(ca) = kp
	}
	key, err := rsa.GenerateKey(rand.Reader, RSAKeyBits)
	if err != nil {
		return nil, fmt.Errorf("pki: generate service-account key: %w", err)
	}
	if b.SAKeyPEM, b.SAPubPEM, err = encodeSA(key); err != nil {
		return nil, err
	}
	b.SAKey = key
	return b, nil
}

// Save writes a generated bundle to dir, which must not hold a PKI yet: the files go to a fresh
// 0700 directory beside it that is then renamed into place, so a crash leaves either no PKI or a
// whole one, and a PKI another run saved first is never replaced.
func (b *Bundle) Save(dir string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, DirMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".tmp-pki-")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := ensureDir(filepath.Join(tmp, "etcd")); err != nil {
		return err
	}
	for _, f := range b.files() {
		if err := writeNew(filepath.Join(tmp, f.name), f.content, f.mode); err != nil {
			return err
		}
	}
	// rename(2) replaces an empty directory but never a populated one.
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("pki: save to %s (it must not hold a PKI yet): %w", dir, err)
	}
	b.Dir = dir
	b.Written = FileNames()
	return nil
}

type pkiFile struct {
	name    string
	content []byte
	mode    fs.FileMode
}

// files are the bundle's files by their names relative to pki/, in FileNames order.
func (b *Bundle) files() []pkiFile {
	var out []pkiFile
	for _, kp := range b.Pairs() {
		out = append(out, pkiFile{kp.CA.BaseName + ".crt", kp.CertPEM, CertFileMode}, pkiFile{kp.CA.BaseName + ".key", kp.KeyPEM, KeyFileMode})
	}
	return append(out, pkiFile{SAKeyName, b.SAKeyPEM, KeyFileMode}, pkiFile{SAPubName, b.SAPubPEM, CertFileMode})
}

// FileNames are the PKI's files relative to pki/ (the same names locally and in /etc/kubernetes/pki).
func FileNames() []string {
	var names []string
	for _, ca := range CAs() {
		names = append(names, ca.BaseName+".crt", ca.BaseName+".key")
	}
	return append(names, SAKeyName, SAPubName)
}

// FileSums returns the SHA-256 (hex) of every file's content by its name relative to pki/: what a
// control plane's copies must match byte for byte.
func (b *Bundle) FileSums() map[string]string {
	sums := map[string]string{}
	for _, f := range b.files() {
		sum := sha256.Sum256(f.content)
		sums[f.name] = hex.EncodeToString(sum[:])
	}
	return sums
}

// Fingerprint names a certificate the way people compare them: "sha256:" and the hex SHA-256 of its
// DER encoding (what `openssl x509 -noout -fingerprint -sha256` prints, without the colons).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CertFingerprint is Fingerprint of a PEM certificate.
func CertFingerprint(certPEM []byte) (string, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return "", err
	}
	return Fingerprint(cert), nil
}

// LoadOrGenerate loads the PKI from dir (the state directory's pki/), generating only the files that
// do not exist. A half-present pair (a certificate without its key, sa.key without sa.pub) is an
// error, never silently replaced: regenerating a CA would break every node that trusts the old one.
// Directories are made 0700 and keys 0600. Commands use Load, and Generate and Save for a new
// cluster only once they know no host holds a cluster yet; this composition serves tests and tools.
func LoadOrGenerate(dir string, opts Options) (*Bundle, error) {
	return load(dir, opts, true)
}

func load(dir string, opts Options, generate bool) (*Bundle, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	if err := ensureDir(filepath.Join(dir, "etcd")); err != nil {
		return nil, err
	}
	b := &Bundle{Dir: dir}
	for _, ca := range CAs() {
		kp, created, err := loadOrGenerateCA(dir, ca, opts, generate)
		if err != nil {
			return nil, err
		}
		if created {
			b.Written = append(b.Written, ca.BaseName+".crt", ca.BaseName+".key")
		}
		*b.pair(ca) = kp
	}
	created, err := b.loadOrGenerateSA(dir, generate)
	if err != nil {
		return nil, err
	}
	if created {
		b.Written = append(b.Written, SAKeyName, SAPubName)
	}
	return b, nil
}

func (b *Bundle) pair(ca CA) *KeyPair {
	switch ca {
	case ClusterCA:
		return &b.Cluster
	case FrontProxyCA:
		return &b.FrontProxy
	default:
		return &b.Etcd
	}
}

// Pairs returns the three CA key pairs in the order of CAs().
func (b *Bundle) Pairs() []KeyPair { return []KeyPair{b.Cluster, b.FrontProxy, b.Etcd} }

func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("pki: create %s: %w", dir, err)
	}
	// MkdirAll leaves an existing directory's mode alone; keys must not sit in a readable one.
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func loadOrGenerateCA(dir string, ca CA, opts Options, generate bool) (KeyPair, bool, error) {
	certPath := filepath.Join(dir, ca.BaseName+".crt")
	keyPath := filepath.Join(dir, ca.BaseName+".key")
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		if err := os.Chmod(keyPath, KeyFileMode); err != nil {
			return KeyPair{}, false, fmt.Errorf("pki: %w", err)
		}
		kp, err := ParseCA(ca, certPEM, keyPEM)
		if err != nil {
			return KeyPair{}, false, fmt.Errorf("pki: %s: %w", certPath, err)
		}
		return kp, false, nil
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist) && !generate:
		return KeyPair{}, false, fmt.Errorf("pki: %s and %s are missing; restore them from the cluster's control planes", certPath, keyPath)
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		kp, err := NewCA(ca, opts)
		if err != nil {
			return KeyPair{}, false, err
		}
		// Key first: a crash between the two leaves a key without a certificate, which the next run
		// reports instead of generating a second CA.
		if err := writeNew(keyPath, kp.KeyPEM, KeyFileMode); err != nil {
			return KeyPair{}, false, err
		}
		if err := writeNew(certPath, kp.CertPEM, CertFileMode); err != nil {
			return KeyPair{}, false, err
		}
		return kp, true, nil
	case certErr != nil && !errors.Is(certErr, fs.ErrNotExist):
		return KeyPair{}, false, fmt.Errorf("pki: %w", certErr)
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return KeyPair{}, false, fmt.Errorf("pki: %w", keyErr)
	case certErr == nil:
		return KeyPair{}, false, fmt.Errorf("pki: %s exists but %s does not; restore the key (or remove both to start a new cluster)", certPath, keyPath)
	default:
		return KeyPair{}, false, fmt.Errorf("pki: %s exists but %s does not; restore the certificate (or remove both to start a new cluster)", keyPath, certPath)
	}
}

func (b *Bundle) loadOrGenerateSA(dir string, generate bool) (bool, error) {
	keyPath := filepath.Join(dir, SAKeyName)
	pubPath := filepath.Join(dir, SAPubName)
	keyPEM, keyErr := os.ReadFile(keyPath)
	pubPEM, pubErr := os.ReadFile(pubPath)
	switch {
	case keyErr == nil && pubErr == nil:
		if err := os.Chmod(keyPath, KeyFileMode); err != nil {
			return false, fmt.Errorf("pki: %w", err)
		}
		key, err := ParseSA(keyPEM, pubPEM)
		if err != nil {
			return false, fmt.Errorf("pki: %s: %w", keyPath, err)
		}
		b.SAKey, b.SAKeyPEM, b.SAPubPEM = key, keyPEM, pubPEM
		return false, nil
	case errors.Is(keyErr, fs.ErrNotExist) && errors.Is(pubErr, fs.ErrNotExist) && !generate:
		return false, fmt.Errorf("pki: %s and %s are missing; restore them from the cluster's control planes", keyPath, pubPath)
	case errors.Is(keyErr, fs.ErrNotExist) && errors.Is(pubErr, fs.ErrNotExist):
		key, err := rsa.GenerateKey(rand.Reader, RSAKeyBits)
		if err != nil {
			return false, fmt.Errorf("pki: generate service-account key: %w", err)
		}
		keyPEM, pubPEM, err := encodeSA(key)
		if err != nil {
			return false, err
		}
		if err := writeNew(keyPath, keyPEM, KeyFileMode); err != nil {
			return false, err
		}
		if err := writeNew(pubPath, pubPEM, CertFileMode); err != nil {
			return false, err
		}
		b.SAKey, b.SAKeyPEM, b.SAPubPEM = key, keyPEM, pubPEM
		return true, nil
	case keyErr != nil && !errors.Is(keyErr, fs.ErrNotExist):
		return false, fmt.Errorf("pki: %w", keyErr)
	case pubErr != nil && !errors.Is(pubErr, fs.ErrNotExist):
		return false, fmt.Errorf("pki: %w", pubErr)
	default:
		return false, fmt.Errorf("pki: only one of %s and %s exists; restore the other (or remove both to start a new cluster)", keyPath, pubPath)
	}
}

// writeNew writes a file that must not exist yet: content goes to a temporary file that is then
// hard-linked to the final name, which fails instead of replacing a file another run just wrote.
func writeNew(path string, content []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// NewCA generates a self-signed CA the way kubeadm does: RSA 2048, valid for ten years from five
// minutes ago, usable for signing certificates only.
func NewCA(ca CA, opts Options) (KeyPair, error) {
	key, err := rsa.GenerateKey(rand.Reader, RSAKeyBits)
	if err != nil {
		return KeyPair{}, fmt.Errorf("pki: generate %s key: %w", ca.BaseName, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).SetInt64(math.MaxInt64))
	if err != nil {
		return KeyPair{}, fmt.Errorf("pki: serial: %w", err)
	}
	now := opts.now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: ca.CommonName},
		DNSNames:              []string{ca.CommonName},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("pki: sign %s: %w", ca.BaseName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return KeyPair{}, fmt.Errorf("pki: %s: %w", ca.BaseName, err)
	}
	return KeyPair{
		CA:      ca,
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		// PKCS #1, as kubeadm writes RSA keys.
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	}, nil
}

// ParseCA checks that certPEM is a CA certificate and keyPEM its private key.
func ParseCA(ca CA, certPEM, keyPEM []byte) (KeyPair, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return KeyPair{}, err
	}
	if !cert.IsCA {
		return KeyPair{}, errors.New("not a CA certificate")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return KeyPair{}, err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return KeyPair{}, errors.New("the private key does not belong to the certificate")
	}
	return KeyPair{CA: ca, Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// ParseSA checks that keyPEM is an RSA private key and pubPEM its public key.
func ParseSA(keyPEM, pubPEM []byte) (*rsa.PrivateKey, error) {
	signer, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	key, ok := signer.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("service-account key is %T, want RSA", signer)
	}
	block, _ := pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("sa.pub: no PEM PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("sa.pub: %w", err)
	}
	if !publicKeysEqual(pub, key.Public()) {
		return nil, errors.New("sa.pub does not belong to sa.key")
	}
	return key, nil
}

func encodeSA(key *rsa.PrivateKey) (keyPEM, pubPEM []byte, err error) {
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("pki: service-account public key: %w", err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	pubPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	return keyPEM, pubPEM, nil
}

// ParseCertificate parses the first PEM certificate in data.
func ParseCertificate(data []byte) (*x509.Certificate, error) { return parseCert(data) }

func parseCert(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// parseKey accepts the PEM encodings kubeadm reads: PKCS #1 RSA, SEC 1 EC and PKCS #8.
func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key block")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse key: %w", err)
		}
		return k, nil
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse key: %w", err)
		}
		return k, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse key: %w", err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("key of type %T cannot sign", k)
		}
		return s, nil
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ad, errA := x509.MarshalPKIXPublicKey(a)
	bd, errB := x509.MarshalPKIXPublicKey(b)
	return errA == nil && errB == nil && bytes.Equal(ad, bd)
}

// DiscoveryHash is what `kubeadm join --discovery-token-ca-cert-hash` and JoinConfiguration's
// caCertHashes expect: "sha256:" and the hex SHA-256 of the CA's DER SubjectPublicKeyInfo.
func DiscoveryHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// DiscoveryHash returns the cluster CA's discovery hash.
func (b *Bundle) DiscoveryHash() string { return DiscoveryHash(b.Cluster.Cert) }

// ControlPlaneFiles are the files uploaded to every control plane's /etc/kubernetes/pki before
// kubeadm init or join, which then adopts them (no --upload-certs, no certificate key). Keys are
// Sensitive (0600, shown as <redacted>); none may replace a different file already there. Workers need none of them: they trust the cluster CA
// through the discovery hash.
func (b *Bundle) ControlPlaneFiles() []manifests.File {
	var files []manifests.File
	for _, kp := range b.Pairs() {
		files = append(files,
			manifests.File{Path: constants.PKIDir + "/" + kp.CA.BaseName + ".crt", Mode: CertFileMode, Content: kp.CertPEM, NoReplace: true},
			manifests.File{Path: constants.PKIDir + "/" + kp.CA.BaseName + ".key", Mode: KeyFileMode, Content: kp.KeyPEM, Sensitive: true, NoReplace: true},
		)
	}
	files = append(files,
		manifests.File{Path: constants.PKIDir + "/" + SAKeyName, Mode: KeyFileMode, Content: b.SAKeyPEM, Sensitive: true, NoReplace: true},
		manifests.File{Path: constants.PKIDir + "/" + SAPubName, Mode: CertFileMode, Content: b.SAPubPEM, NoReplace: true},
	)
	manifests.SortFiles(files)
	return files
}
