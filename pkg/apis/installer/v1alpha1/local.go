package v1alpha1

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"installer.dev/installer/pkg/pgpkey"
	"installer.dev/installer/pkg/pins"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ResolvePaths makes every local path in the spec absolute: "~/" expands to home, and relative paths
// are taken from baseDir (the spec file's directory), so a spec means the same from any working
// directory. URLs are left alone.
func (c *Cluster) ResolvePaths(baseDir, home string) {
	r := func(p *string) {
		*p = resolvePath(*p, baseDir, home)
	}
	s := &c.Spec
	r(&s.SSH.KeyFile)
	r(&s.SSH.KnownHostsFile)
	if s.SSH.Bastion != nil {
		r(&s.SSH.Bastion.KeyFile)
	}
	for i := range s.Hosts {
		if s.Hosts[i].SSH != nil {
			r(&s.Hosts[i].SSH.KeyFile)
		}
	}
	r(&s.Install.PackageRepositoryKeyFile)
	r(&s.Install.BundleDir)
	r(&s.Install.ChecksumsFile)
	for _, eps := range s.Images.Mirrors {
		for i := range eps {
			r(&eps[i].CAFile)
		}
	}
	if !IsURL(s.CNI.Manifest) {
		r(&s.CNI.Manifest)
	}
	r(&s.CloudProvider.CloudConfigFile)
	for i := range s.Addons {
		if !IsURL(s.Addons[i].Manifest) {
			r(&s.Addons[i].Manifest)
		}
	}
}

func resolvePath(p, baseDir, home string) string {
	switch {
	case p == "":
		return ""
	case p == "~":
		return home
	case strings.HasPrefix(p, "~/"):
		return filepath.Join(home, p[2:])
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	}
	return filepath.Join(baseDir, p)
}

// IsURL reports whether a manifest or addon reference is fetched over http(s).
func IsURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// CheckLocalInputs verifies the local files a (resolved, validated) spec names: keys parse as private
// keys, CA files hold certificates, directories exist. It reads files but never opens a connection;
// every command runs it before touching any host.
func CheckLocalInputs(c *Cluster) field.ErrorList { return checkLocalInputs(c, true) }

// CheckRenderInputs is CheckLocalInputs without the SSH files: rendering touches no host.
func CheckRenderInputs(c *Cluster) field.ErrorList { return checkLocalInputs(c, false) }

func checkLocalInputs(c *Cluster, withSSH bool) field.ErrorList {
	var errs field.ErrorList
	s := &c.Spec
	if withSSH {
		errs = append(errs, checkSSHInputs(s)...)
	}
	errs = append(errs, checkOtherInputs(s)...)
	return errs
}

func checkSSHInputs(s *ClusterSpec) field.ErrorList {
	var errs field.ErrorList
	sp := specPath.Child("ssh")
	if s.SSH.KeyFile != "" {
		errs = append(errs, checkPrivateKey(sp.Child("keyFile"), s.SSH.KeyFile)...)
	}
	if s.SSH.HostKeyPolicy == HostKeyStrict {
		if err := readable(s.SSH.KnownHostsFile); err != nil {
			errs = append(errs, field.Invalid(sp.Child("knownHostsFile"), s.SSH.KnownHostsFile,
				fmt.Sprintf("%v; host keys are verified against this file: add the hosts' keys (check their fingerprints) or set hostKeyPolicy: accept-new", err)))
		}
	} else if dir := filepath.Dir(s.SSH.KnownHostsFile); !isDir(dir) {
		errs = append(errs, field.Invalid(sp.Child("knownHostsFile"), s.SSH.KnownHostsFile, fmt.Sprintf("directory %s does not exist, so new host keys cannot be recorded", dir)))
	}
	if b := s.SSH.Bastion; b != nil && b.KeyFile != "" && b.KeyFile != s.SSH.KeyFile {
		errs = append(errs, checkPrivateKey(sp.Child("bastion", "keyFile"), b.KeyFile)...)
	}
	for i, h := range s.Hosts {
		if h.SSH != nil && h.SSH.KeyFile != "" {
			errs = append(errs, checkPrivateKey(specPath.Child("hosts").Index(i).Child("ssh", "keyFile"), h.SSH.KeyFile)...)
		}
	}
	return errs
}

func checkOtherInputs(s *ClusterSpec) field.ErrorList {
	var errs field.ErrorList
	ip := specPath.Child("install")
	if f := s.Install.PackageRepositoryKeyFile; f != "" {
		if err := checkOpenPGPKey(f, s.Install.PackageRepositoryKeyFingerprint); err != nil {
			errs = append(errs, field.Invalid(ip.Child("packageRepositoryKeyFile"), f, err.Error()))
		}
	}
	if f := s.Install.ChecksumsFile; f != "" {
		if err := checkPins(f); err != nil {
			errs = append(errs, field.Invalid(ip.Child("checksumsFile"), f, err.Error()))
		}
	}
	if s.Install.Source == InstallBundle && s.Install.BundleDir != "" && !isDir(s.Install.BundleDir) {
		errs = append(errs, field.Invalid(ip.Child("bundleDir"), s.Install.BundleDir, "not a directory"))
	}
	for _, reg := range slices.Sorted(maps.Keys(s.Images.Mirrors)) {
		for i, ep := range s.Images.Mirrors[reg] {
			if ep.CAFile == "" {
				continue
			}
			if err := checkCertificates(ep.CAFile); err != nil {
				errs = append(errs, field.Invalid(specPath.Child("images", "mirrors").Key(reg).Index(i).Child("caFile"), ep.CAFile, err.Error()))
			}
		}
	}
	if m := s.CNI.Manifest; m != "" && !IsURL(m) {
		if err := readable(m); err != nil {
			errs = append(errs, field.Invalid(specPath.Child("cni", "manifest"), m, err.Error()))
		}
	}
	if f := s.CloudProvider.CloudConfigFile; f != "" {
		if err := readable(f); err != nil {
			errs = append(errs, field.Invalid(specPath.Child("cloudProvider", "cloudConfigFile"), f, err.Error()))
		}
	}
	for i, a := range s.Addons {
		if a.Manifest != "" && !IsURL(a.Manifest) {
			if err := readable(a.Manifest); err != nil {
				errs = append(errs, field.Invalid(specPath.Child("addons").Index(i).Child("manifest"), a.Manifest, err.Error()))
			}
		}
	}
	return errs
}

// CheckEnvironment verifies that every environment variable the spec names for a secret is set.
// Commands that connect run it; validate and render do not need the secrets.
func CheckEnvironment(c *Cluster, getenv func(string) string) field.ErrorList {
	var errs field.ErrorList
	need := func(p *field.Path, name, what string) {
		if name != "" && getenv(name) == "" {
			errs = append(errs, field.Invalid(p, name, fmt.Sprintf("environment variable is not set (it holds the %s)", what)))
		}
	}
	s := &c.Spec
	need(specPath.Child("ssh", "passwordEnv"), s.SSH.PasswordEnv, "SSH password")
	for i, h := range s.Hosts {
		if h.SSH != nil {
			need(specPath.Child("hosts").Index(i).Child("ssh", "passwordEnv"), h.SSH.PasswordEnv, "SSH password")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.CloudProvider.CredentialsEnv)) {
		need(specPath.Child("cloudProvider", "credentialsEnv").Key(k), s.CloudProvider.CredentialsEnv[k], "cloud credential "+k)
	}
	return errs
}

func checkPrivateKey(p *field.Path, path string) field.ErrorList {
	data, err := os.ReadFile(path)
	if err != nil {
		return field.ErrorList{field.Invalid(p, path, describeFileError(err))}
	}
	if _, err := ssh.ParseRawPrivateKey(data); err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil // encrypted: the passphrase is asked for or read from passphraseEnv at connect time
		}
		if _, _, _, _, perr := ssh.ParseAuthorizedKey(data); perr == nil {
			return field.ErrorList{field.Invalid(p, path, "is a public key; name the private key (without .pub)")}
		}
		return field.ErrorList{field.Invalid(p, path, fmt.Sprintf("not a private key: %v", err))}
	}
	return nil
}

func checkCertificates(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return errors.New(describeFileError(err))
	}
	n := 0
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d does not parse: %v", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("holds no PEM certificate")
	}
	return nil
}

func checkPins(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return errors.New(describeFileError(err))
	}
	_, err = pins.Parse(data)
	return err
}

func checkOpenPGPKey(path, fingerprint string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return errors.New(describeFileError(err))
	}
	fp, err := pgpkey.Fingerprint(data)
	if err != nil {
		return err
	}
	if want := pgpkey.Normalize(fingerprint); want != "" && fp != want {
		return fmt.Errorf("its key's fingerprint is %s, but packageRepositoryKeyFingerprint pins %s", fp, want)
	}
	return nil
}

// ArmoredOpenPGPKey reports whether a key file install.packageRepositoryKeyFile names is
// ASCII-armored (else it is a binary key, which CheckLocalInputs also accepts).
func ArmoredOpenPGPKey(data []byte) bool {
	return bytes.Contains(data, []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----"))
}

func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return errors.New(describeFileError(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory, not a file")
	}
	return nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

func describeFileError(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "file does not exist"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}
