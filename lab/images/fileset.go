package images

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// entry is one file of a layer: a regular file copied from Source or holding Content, a symlink, or
// a directory.
type entry struct {
	Path    string // absolute path inside the image
	Source  string `json:",omitempty"` // host path of a regular file
	Content string `json:",omitempty"` // inline content of a regular file
	Link    string `json:",omitempty"` // symlink target
	Dir     bool   `json:",omitempty"`
	Mode    int64
}

// fileSet collects the entries of one layer; the last entry for a path wins.
type fileSet struct {
	entries map[string]entry
}

func newFileSet() *fileSet { return &fileSet{entries: map[string]entry{}} }

func (s *fileSet) file(p, source string, mode int64) {
	s.entries[clean(p)] = entry{Path: clean(p), Source: source, Mode: mode}
}

func (s *fileSet) content(p, content string, mode int64) {
	s.entries[clean(p)] = entry{Path: clean(p), Content: content, Mode: mode}
}

func (s *fileSet) symlink(p, target string) {
	s.entries[clean(p)] = entry{Path: clean(p), Link: target, Mode: 0o777}
}

func (s *fileSet) dir(p string, mode int64) {
	s.entries[clean(p)] = entry{Path: clean(p), Dir: true, Mode: mode}
}

func clean(p string) string { return path.Clean("/" + p) }

// sorted returns every entry plus the parent directories nobody declared, in path order.
func (s *fileSet) sorted() []entry {
	all := map[string]entry{}
	for p, e := range s.entries {
		all[p] = e
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := s.entries[d]; !ok {
				all[d] = entry{Path: d, Dir: true, Mode: 0o755}
			}
		}
	}
	out := make([]entry, 0, len(all))
	for _, e := range all {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// epoch is every entry's time: layers must not depend on when they were built.
var epoch = time.Unix(0, 0).UTC()

// writeLayer writes the set as a gzip'd tar to dst and returns the sha256 of the uncompressed tar
// (the diff ID). Output depends only on the entries and the source files' bytes.
func (s *fileSet) writeLayer(dst string) (diffID string, err error) {
	f, err := os.Create(dst)
	if err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("layer: %w", cerr)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	gz, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(gz, h))
	for _, e := range s.sorted() {
		if err := writeEntry(tw, e); err != nil {
			return "", fmt.Errorf("layer: %s: %w", e.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	if err := gz.Close(); err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("layer: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{
		Name: strings.TrimPrefix(e.Path, "/"), Mode: e.Mode, ModTime: epoch,
		Uname: "root", Gname: "root",
	}
	switch {
	case e.Dir:
		hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		return tw.WriteHeader(hdr)
	case e.Link != "":
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.Link
		return tw.WriteHeader(hdr)
	case e.Source == "":
		hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.Content))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := io.WriteString(tw, e.Content)
		return err
	}
	src, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}
