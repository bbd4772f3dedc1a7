package debrepo

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

//go:embed files
var embedded embed.FS

// builderRevision changes whenever the way packages are made changes, so cached .debs are rebuilt.
const builderRevision = "debrepo-1"

// packageTime is every file's and the package's time: the same inputs make the same .deb.
var packageTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// buildDeb writes p to out unless out is current (its .key file records the recipe and the sources'
// sizes and times). work holds the embedded files nfpm reads from disk.
func buildDeb(p Package, work, out string) (built bool, err error) {
	key, err := recipeKey(p)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(out + ".key"); err == nil && string(old) == key && exists(out) {
		return false, nil
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return false, fmt.Errorf("package %s: %w", p.Name, err)
	}
	src := func(name string) (string, error) {
		data, err := embedded.ReadFile("files/" + name)
		if err != nil {
			return "", err
		}
		path := filepath.Join(work, name)
		return path, os.WriteFile(path, data, 0o644)
	}
	info := &nfpm.Info{
		Name: p.Name, Arch: Arch, Platform: "linux",
		Version: p.Version, Release: p.Revision, VersionSchema: "none",
		Section: p.Section, Priority: "optional",
		Maintainer:  "installer lab <lab@installer.invalid>",
		Description: p.Description, Homepage: "https://kubernetes.io", License: "Apache-2.0",
		MTime: packageTime,
		Overridables: nfpm.Overridables{
			Depends: p.Depends, Recommends: p.Recommends,
			Deb: nfpm.Deb{Compression: "gzip"},
		},
	}
	for _, f := range p.Files {
		path := f.Source
		if f.Embedded != "" {
			if path, err = src(f.Embedded); err != nil {
				return false, fmt.Errorf("package %s: %w", p.Name, err)
			}
		}
		c := &files.Content{Source: path, Destination: f.Dest,
			FileInfo: &files.ContentFileInfo{Mode: os.FileMode(f.Mode), MTime: packageTime, Owner: "root", Group: "root"}}
		if f.Conffile {
			c.Type = files.TypeConfigNoReplace
		}
		info.Contents = append(info.Contents, c)
	}
	for _, d := range p.Dirs {
		info.Contents = append(info.Contents, &files.Content{Destination: d, Type: files.TypeDir,
			FileInfo: &files.ContentFileInfo{Mode: 0o755, MTime: packageTime, Owner: "root", Group: "root"}})
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{{p.PostInst, &info.Scripts.PostInstall}, {p.PreRm, &info.Scripts.PreRemove}, {p.PostRm, &info.Scripts.PostRemove}} {
		if s.name == "" {
			continue
		}
		if *s.dst, err = src(s.name); err != nil {
			return false, fmt.Errorf("package %s: %w", p.Name, err)
		}
	}
	if err := nfpm.Validate(info); err != nil {
		return false, fmt.Errorf("package %s: %w", p.Name, err)
	}
	tmp := out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return false, fmt.Errorf("package %s: %w", p.Name, err)
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(tmp)
		return false, fmt.Errorf("package %s: nfpm: %w", p.Name, err)
	}
	if err := f.Close(); err != nil {
		return false, fmt.Errorf("package %s: %w", p.Name, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return false, fmt.Errorf("package %s: %w", p.Name, err)
	}
	return true, os.WriteFile(out+".key", []byte(key), 0o644)
}

// recipeKey hashes everything a package is made of: its description, the embedded files' content
// and the source binaries' paths, sizes and times (the builder writes a new path for a new binary).
func recipeKey(p Package) (string, error) {
	h := sha256.New()
	meta, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%s\n%s\n", builderRevision, meta)
	names := []string{p.PostInst, p.PreRm, p.PostRm}
	for _, f := range p.Files {
		if f.Embedded != "" {
			names = append(names, f.Embedded)
			continue
		}
		st, err := os.Stat(f.Source)
		if err != nil {
			return "", fmt.Errorf("package %s: %w", p.Name, err)
		}
		fmt.Fprintf(h, "%s %d %d\n", f.Source, st.Size(), st.ModTime().UnixNano())
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		data, err := embedded.ReadFile("files/" + n)
		if err != nil {
			return "", fmt.Errorf("package %s: %w", p.Name, err)
		}
		fmt.Fprintf(h, "%s %x\n", n, sha256.Sum256(data))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
