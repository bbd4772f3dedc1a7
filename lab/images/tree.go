package images

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"installer.dev/installer/lab/internal/flock"
)

// tree is an unpacked Debian root filesystem that userland is copied from.
type tree struct{ root string }

// unpack extracts the root filesystem tarball next to itself once (tar keeps modes, links and
// numeric owners; the extraction is marked done only when complete).
func unpack(ctx context.Context, tarPath string) (*tree, error) {
	dir := filepath.Join(filepath.Dir(tarPath), "tree")
	done := dir + ".done"
	if _, err := os.Stat(done); err == nil {
		return &tree{root: dir}, nil
	}
	lock, err := flock.Acquire(ctx, dir+".lock")
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if _, err := os.Stat(done); err == nil {
		return &tree{root: dir}, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("unpack rootfs: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("unpack rootfs: %w", err)
	}
	// Device nodes are left out: nothing copied into images needs them.
	out, err := exec.CommandContext(ctx, "tar", "-C", dir, "--numeric-owner", "--exclude=./dev/*", "-xf", tarPath).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("unpack rootfs %s: %w: %s", tarPath, err, out)
	}
	if err := os.WriteFile(done, nil, 0o644); err != nil {
		return nil, fmt.Errorf("unpack rootfs: %w", err)
	}
	return &tree{root: dir}, nil
}

// add copies path p of the tree into the set, together with every symlink met on the way (usr-merge
// links such as /lib -> usr/lib, soname links), so the path resolves the same way inside the image.
// It returns the resolved path of the final file.
func (t *tree) add(s *fileSet, p string) (string, error) {
	resolved, err := t.walk(s, clean(p), 0)
	if err != nil {
		return "", fmt.Errorf("rootfs %s: %w", p, err)
	}
	return resolved, nil
}

func (t *tree) walk(s *fileSet, p string, depth int) (string, error) {
	if depth > 40 {
		return "", errors.New("too many symlinks")
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for i, part := range parts {
		next := path.Join(cur, part)
		st, err := os.Lstat(filepath.Join(t.root, next))
		if err != nil {
			return "", err
		}
		rest := path.Join(parts[i+1:]...)
		switch {
		case st.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(filepath.Join(t.root, next))
			if err != nil {
				return "", err
			}
			s.symlink(next, target)
			if !path.IsAbs(target) {
				target = path.Join(cur, target)
			}
			return t.walk(s, path.Join(target, rest), depth+1)
		case i == len(parts)-1:
			if st.IsDir() {
				s.dir(next, int64(st.Mode().Perm()))
			} else {
				s.file(next, filepath.Join(t.root, next), int64(st.Mode().Perm()))
			}
			return next, nil
		}
		cur = next
	}
	return cur, nil
}

// libDirs are the loader's search directories on Debian amd64.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/lib"}

// addELF copies an executable or shared object and, recursively, its interpreter and every library
// in its DT_NEEDED entries (what ldd would list), resolved inside the tree.
func (t *tree) addELF(s *fileSet, p string, seen map[string]bool) error {
	resolved, err := t.add(s, p)
	if err != nil {
		return err
	}
	if seen[resolved] {
		return nil
	}
	seen[resolved] = true
	f, err := elf.Open(filepath.Join(t.root, resolved))
	if err != nil {
		return fmt.Errorf("rootfs %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			buf := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(buf, 0); err != nil {
				return fmt.Errorf("rootfs %s: interpreter: %w", p, err)
			}
			if err := t.addELF(s, strings.TrimRight(string(buf), "\x00"), seen); err != nil {
				return err
			}
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("rootfs %s: libraries: %w", p, err)
	}
	for _, lib := range libs {
		found := false
		for _, d := range libDirs {
			if _, err := os.Stat(filepath.Join(t.root, d, lib)); err == nil {
				if err := t.addELF(s, path.Join(d, lib), seen); err != nil {
					return err
				}
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("rootfs %s: library %s not found", p, lib)
		}
	}
	return nil
}

// glob lists tree paths matching an absolute pattern.
func (t *tree) glob(pattern string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(t.root, pattern))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(matches))
	for _, m := range matches {
		out = append(out, "/"+strings.TrimPrefix(strings.TrimPrefix(m, t.root), "/"))
	}
	return out, nil
}
