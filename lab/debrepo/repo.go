package debrepo

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"installer.dev/installer/lab/internal/flock"
	"installer.dev/installer/pkg/versions"
)

// Release is one Kubernetes release's binaries, as the lab builder made them.
type Release struct {
	Release  versions.Release
	Binaries Binaries
}

// Options configure Build.
type Options struct {
	// CacheDir is the lab cache: .debs in debrepo/debs, the key in debrepo/key.
	CacheDir string
	// Root is the mirror's file tree; each minor's repository lands at Root + RepositoryPath(minor).
	Root string
	Log  io.Writer
}

// Repository is one minor's repository on disk.
type Repository struct {
	Minor    string
	Dir      string
	Packages []Package
}

// Build makes (or finds current) the .debs of every release and one signed repository per minor,
// returning them in the order of the minors' first appearance. Builds are serialised across
// processes by a lock in the cache.
func Build(ctx context.Context, opts Options, releases []Release) ([]Repository, *Key, error) {
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	key, err := LoadOrCreateKey(ctx, opts.CacheDir)
	if err != nil {
		return nil, nil, err
	}
	lock, err := flock.Acquire(ctx, filepath.Join(opts.CacheDir, "locks", "debrepo.lock"))
	if err != nil {
		return nil, nil, err
	}
	defer lock.Unlock()
	debDir := filepath.Join(opts.CacheDir, "debrepo", "debs")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("debrepo: %w", err)
	}
	var repos []Repository
	index := map[string]int{}
	for _, r := range releases {
		pkgs, err := ReleasePackages(r.Release, r.Binaries)
		if err != nil {
			return nil, nil, err
		}
		minor := r.Release.Minor()
		i, ok := index[minor]
		if !ok {
			i = len(repos)
			index[minor] = i
			repos = append(repos, Repository{Minor: minor, Dir: filepath.Join(opts.Root, filepath.FromSlash(RepositoryPath(minor)))})
		}
		for _, p := range pkgs {
			start := time.Now()
			built, err := buildDeb(p, filepath.Join(opts.CacheDir, "debrepo", "work", p.Name), filepath.Join(debDir, p.FileName()))
			if err != nil {
				return nil, nil, err
			}
			if built {
				fmt.Fprintf(opts.Log, "debrepo: built %s (%s)\n", p.FileName(), time.Since(start).Round(time.Millisecond))
			}
			if !containsPackage(repos[i].Packages, p) {
				repos[i].Packages = append(repos[i].Packages, p)
			}
		}
	}
	for _, repo := range repos {
		if err := writeRepository(repo, debDir, key, time.Now()); err != nil {
			return nil, nil, err
		}
	}
	return repos, key, nil
}

func containsPackage(ps []Package, p Package) bool {
	for _, q := range ps {
		if q.FileName() == p.FileName() {
			return true
		}
	}
	return false
}

// writeRepository links the .debs into repo.Dir and writes Packages, Packages.gz, Release, InRelease,
// Release.gpg and Release.key (the public key, where pkgs.k8s.io publishes its own), unless the
// directory already holds exactly these packages signed by this key.
func writeRepository(repo Repository, debDir string, key *Key, now time.Time) error {
	if err := os.MkdirAll(repo.Dir, 0o755); err != nil {
		return fmt.Errorf("repository %s: %w", repo.Minor, err)
	}
	sort.Slice(repo.Packages, func(i, j int) bool { return repo.Packages[i].FileName() < repo.Packages[j].FileName() })
	h := sha256.New()
	fmt.Fprintf(h, "%s %s\n", builderRevision, key.Fingerprint())
	for _, p := range repo.Packages {
		k, err := os.ReadFile(filepath.Join(debDir, p.FileName()+".key"))
		if err != nil {
			return fmt.Errorf("repository %s: %w", repo.Minor, err)
		}
		fmt.Fprintf(h, "%s %s\n", p.FileName(), k)
	}
	stamp := hex.EncodeToString(h.Sum(nil))
	stampFile := filepath.Join(repo.Dir, ".repository-key")
	if old, err := os.ReadFile(stampFile); err == nil && string(old) == stamp && exists(filepath.Join(repo.Dir, "InRelease")) && exists(filepath.Join(repo.Dir, "Release.key")) {
		return nil
	}
	public, err := os.ReadFile(key.PublicFile)
	if err != nil {
		return fmt.Errorf("repository %s: %w", repo.Minor, err)
	}
	var index bytes.Buffer
	for _, p := range repo.Packages {
		src := filepath.Join(debDir, p.FileName())
		dst := filepath.Join(repo.Dir, p.FileName())
		_ = os.Remove(dst)
		if err := os.Link(src, dst); err != nil {
			return fmt.Errorf("repository %s: %w", repo.Minor, err)
		}
		stanza, err := packagesStanza(dst, p.FileName())
		if err != nil {
			return fmt.Errorf("repository %s: %w", repo.Minor, err)
		}
		index.WriteString(stanza)
		index.WriteString("\n")
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.ModTime = packageTime
	if _, err := zw.Write(index.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	release := releaseFile(repo.Minor, now, map[string][]byte{"Packages": index.Bytes(), "Packages.gz": gz.Bytes()})
	inRelease, detached, err := sign(key, release)
	if err != nil {
		return fmt.Errorf("repository %s: %w", repo.Minor, err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"Packages", index.Bytes()}, {"Packages.gz", gz.Bytes()}, {"Release", release}, {"Release.gpg", detached}, {"InRelease", inRelease}, {"Release.key", public}} {
		if err := writeFileAtomic(filepath.Join(repo.Dir, f.name), f.data, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(stampFile, []byte(stamp), 0o644)
}

// releaseFile is the repository's Release: flat layout (no Suite/Codename, "deb URL /" sources),
// SHA-256 and SHA-512 of the indices (no MD5 or SHA-1, which apt counts as weak).
func releaseFile(minor string, now time.Time, files map[string][]byte) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Origin: installer-lab\nLabel: installer lab Kubernetes %s\nArchitectures: %s\n", minor, Arch)
	fmt.Fprintf(&b, "Date: %s\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Description: Kubernetes %s packages built in the installer's offline lab\n", minor)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, alg := range []struct {
		field string
		h     func() hash.Hash
	}{{"SHA256", sha256.New}, {"SHA512", sha512.New}} {
		fmt.Fprintf(&b, "%s:\n", alg.field)
		for _, n := range names {
			h := alg.h()
			h.Write(files[n])
			fmt.Fprintf(&b, " %x %d %s\n", h.Sum(nil), len(files[n]), n)
		}
	}
	return []byte(b.String())
}

// sign returns the clear-signed InRelease and the armored detached Release.gpg.
func sign(key *Key, release []byte) (inRelease, detached []byte, err error) {
	cfg := signingConfig(time.Now())
	var clear bytes.Buffer
	w, err := clearsign.Encode(&clear, key.entity.PrivateKey, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("sign InRelease: %w", err)
	}
	if _, err := w.Write(release); err != nil {
		return nil, nil, fmt.Errorf("sign InRelease: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, nil, fmt.Errorf("sign InRelease: %w", err)
	}
	inRelease, err = withArmorChecksum(clear.Bytes())
	if err != nil {
		return nil, nil, fmt.Errorf("sign InRelease: %w", err)
	}
	var det bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&det, key.entity, bytes.NewReader(release), cfg); err != nil {
		return nil, nil, fmt.Errorf("sign Release.gpg: %w", err)
	}
	det.WriteByte('\n')
	return inRelease, det.Bytes(), nil
}

// withArmorChecksum re-armors a clear-signed message's signature with the CRC-24 line and a final
// newline: go-crypto leaves both out, and Debian 12's gpgv then misreads the END line and fails.
func withArmorChecksum(signed []byte) ([]byte, error) {
	const begin = "-----BEGIN PGP SIGNATURE-----"
	i := bytes.Index(signed, []byte(begin))
	block, _ := clearsign.Decode(signed)
	if i < 0 || block == nil {
		return nil, errors.New("not a clear-signed message")
	}
	sig, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, err
	}
	out := bytes.NewBuffer(append([]byte(nil), signed[:i]...))
	w, err := armor.Encode(out, "PGP SIGNATURE", nil)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(sig); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// packagesStanza is the deb's control paragraph plus the fields apt needs to fetch and check it.
func packagesStanza(path, filename string) (string, error) {
	control, err := ReadControl(path)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s256 := sha256.Sum256(data)
	s512 := sha512.Sum512(data)
	return fmt.Sprintf("%s\nFilename: %s\nSize: %d\nSHA256: %x\nSHA512: %x\n",
		strings.TrimRight(control, "\n"), filename, len(data), s256, s512), nil
}

// ReadControl returns the control file of a .deb: the "control.tar.*" member of its ar archive.
func ReadControl(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "!<arch>\n" {
		return "", fmt.Errorf("%s: not an ar archive", path)
	}
	for {
		hdr := make([]byte, 60)
		if _, err := io.ReadFull(r, hdr); err != nil {
			return "", fmt.Errorf("%s: no control member: %w", path, err)
		}
		name := strings.TrimRight(strings.TrimSpace(string(hdr[:16])), "/")
		size, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil {
			return "", fmt.Errorf("%s: bad ar header: %w", path, err)
		}
		body := io.LimitReader(r, size)
		if name == "control.tar.gz" {
			return controlFromTarGz(body)
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return "", err
		}
		if size%2 == 1 {
			if _, err := r.ReadByte(); err != nil {
				return "", err
			}
		}
	}
}

func controlFromTarGz(r io.Reader) (string, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return "", err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", errors.New("control.tar.gz has no control file")
		}
		if err != nil {
			return "", err
		}
		if strings.TrimPrefix(h.Name, "./") == "control" {
			data, err := io.ReadAll(tr)
			return string(data), err
		}
	}
}
