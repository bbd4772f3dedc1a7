package build

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// buildUnit writes the wrapper module (once per cache key), then builds the named tools into outDir.
func (b *Builder) buildUnit(ctx context.Context, cache string, u *unit, outDir string, names []string) error {
	work := filepath.Join(cache, "work", u.ID+"-"+u.key())
	prepared := filepath.Join(work, ".prepared")
	if _, err := os.Stat(prepared); err != nil {
		if err := os.RemoveAll(work); err != nil {
			return fmt.Errorf("clean work dir: %w", err)
		}
		if err := b.prepare(ctx, u, work); err != nil {
			return err
		}
		if err := os.WriteFile(prepared, nil, 0o644); err != nil {
			return fmt.Errorf("mark prepared: %w", err)
		}
	}
	buildDate, err := os.ReadFile(filepath.Join(work, ".builddate"))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read build date: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("output dir: %w", err)
	}
	for _, n := range names {
		t, _ := u.tool(n)
		out := filepath.Join(outDir, t.Name)
		args := []string{"build", "-p", fmt.Sprint(b.opts.Parallel), "-trimpath"}
		if t.Test {
			args = []string{"test", "-c", "-p", fmt.Sprint(b.opts.Parallel), "-trimpath"}
		}
		if t.Tags != "" {
			args = append(args, "-tags", t.Tags)
		}
		ld := strings.ReplaceAll(t.LDFlags, "{{buildDate}}", strings.TrimSpace(string(buildDate)))
		args = append(args, "-ldflags", ld, "-o", out+".tmp", t.Package)
		start := time.Now()
		cgo := "0"
		if t.CGO {
			cgo = "1"
		}
		if err := b.goCmd(ctx, work, []string{"CGO_ENABLED=" + cgo}, args...); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		// Rename last: a binary that exists is complete, which is all the warm path checks.
		if err := os.Rename(out+".tmp", out); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		fmt.Fprintf(b.opts.Log, "build: %s: %s in %s\n", u.ID, t.Name, time.Since(start).Round(time.Second))
	}
	return nil
}

// prepare writes go.mod and the sources of a wrapper module and runs go mod tidy.
func (b *Builder) prepare(ctx context.Context, u *unit, work string) error {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	var gomod bytes.Buffer
	fmt.Fprintf(&gomod, "module %s\n\n", u.Module)
	if u.K8s != "" {
		dl, err := b.download(ctx, work, "k8s.io/kubernetes", u.K8s)
		if err != nil {
			return err
		}
		kmod, err := os.ReadFile(dl.GoMod)
		if err != nil {
			return fmt.Errorf("read k8s.io/kubernetes go.mod: %w", err)
		}
		head, replaces, err := k8sModLines(kmod, stagingVersion(u.K8s))
		if err != nil {
			return err
		}
		gomod.WriteString(head)
		fmt.Fprintf(&gomod, "\nreplace (\n%s)\n\n", replaces)
		date, err := tagTime(dl.Info)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, ".builddate"), []byte(date), 0o644); err != nil {
			return fmt.Errorf("write build date: %w", err)
		}
	} else {
		fmt.Fprintf(&gomod, "%s\n\n", u.GoLine)
	}
	if len(u.Require) > 0 {
		fmt.Fprintf(&gomod, "require (\n")
		for _, r := range u.Require {
			fmt.Fprintf(&gomod, "\t%s\n", r)
		}
		fmt.Fprintf(&gomod, ")\n\n")
	}
	var tools []string
	for _, t := range u.Tools {
		if !strings.HasPrefix(t.Package, "./") && !t.Test {
			tools = append(tools, t.Package)
		}
	}
	if len(tools) > 0 {
		// tool directives keep the commands in the module graph, so tidy writes a complete go.sum.
		fmt.Fprintf(&gomod, "tool (\n\t%s\n)\n", strings.Join(tools, "\n\t"))
	}
	if err := os.WriteFile(filepath.Join(work, "go.mod"), gomod.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write go.mod: %w", err)
	}
	for p, content := range u.Sources {
		if err := writeFile(filepath.Join(work, p), []byte(content)); err != nil {
			return err
		}
	}
	for _, d := range u.Derived {
		if err := b.derive(ctx, work, d); err != nil {
			return err
		}
	}
	if err := b.goCmd(ctx, work, nil, "mod", "tidy"); err != nil {
		return fmt.Errorf("go mod tidy: %w", err)
	}
	for _, args := range u.PostTidy {
		if err := b.goCmd(ctx, work, nil, args...); err != nil {
			return err
		}
	}
	return nil
}

// derive copies a file out of a downloaded module, dropping import lines.
func (b *Builder) derive(ctx context.Context, work string, d derivedFile) error {
	dl, err := b.download(ctx, work, d.Module, d.Version)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(filepath.Join(dl.Dir, d.File))
	if err != nil {
		return fmt.Errorf("derive %s: %w", d.Dest, err)
	}
	var out bytes.Buffer
	dropped := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := sc.Text()
		drop := false
		for _, imp := range d.DropImports {
			if strings.Contains(line, `"`+imp+`"`) {
				drop, dropped[imp] = true, true
			}
		}
		if !drop {
			out.WriteString(line + "\n")
		}
	}
	for _, imp := range d.DropImports {
		if !dropped[imp] {
			// The upstream file changed shape: fail loudly rather than build something else.
			return fmt.Errorf("derive %s: import %q not found in %s@%s/%s", d.Dest, imp, d.Module, d.Version, d.File)
		}
	}
	return writeFile(filepath.Join(work, d.Dest), out.Bytes())
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

type moduleDownload struct {
	Path, Version, Error, Info, GoMod, Dir string
}

func (b *Builder) download(ctx context.Context, dir, mod, version string) (moduleDownload, error) {
	var out bytes.Buffer
	cmd := b.goExec(ctx, dir, nil, "mod", "download", "-json", mod+"@"+version)
	cmd.Stdout = &out
	runErr := cmd.Run()
	var dl moduleDownload
	if err := json.Unmarshal(out.Bytes(), &dl); err != nil {
		return dl, fmt.Errorf("go mod download %s@%s: %v (output %q)", mod, version, runErr, out.String())
	}
	if dl.Error != "" {
		return dl, fmt.Errorf("go mod download %s@%s: %s", mod, version, dl.Error)
	}
	if runErr != nil {
		return dl, fmt.Errorf("go mod download %s@%s: %w", mod, version, runErr)
	}
	return dl, nil
}

// tagTime reads the module's tag time from its .info file; it stands in for upstream's build date.
func tagTime(infoPath string) (string, error) {
	data, err := os.ReadFile(infoPath)
	if err != nil {
		return "", fmt.Errorf("read module info: %w", err)
	}
	var info struct{ Time time.Time }
	if err := json.Unmarshal(data, &info); err != nil {
		return "", fmt.Errorf("parse module info %s: %w", infoPath, err)
	}
	return info.Time.UTC().Format("2006-01-02T15:04:05Z"), nil
}

// stagingVersion maps v1.34.10 to v0.34.10, the version of the published staging modules.
func stagingVersion(k8s string) string { return "v0." + strings.TrimPrefix(k8s, "v1.") }

// k8sModLines extracts from k8s.io/kubernetes's go.mod the go and godebug lines (GODEBUG defaults
// come from the main module) and turns each `=> ./staging/...` replace into one to the published
// module at the staging version.
func k8sModLines(gomod []byte, staging string) (head, replaces string, err error) {
	var h, r strings.Builder
	inReplace, inGodebug := false, false
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case inGodebug:
			h.WriteString(sc.Text() + "\n")
			if line == ")" {
				inGodebug = false
			}
		case strings.HasPrefix(line, "go "):
			h.WriteString(line + "\n\n")
		case line == "godebug (":
			h.WriteString(line + "\n")
			inGodebug = true
		case strings.HasPrefix(line, "godebug "):
			h.WriteString(line + "\n")
		case line == "replace (":
			inReplace = true
		case inReplace && line == ")":
			inReplace = false
		case inReplace || strings.HasPrefix(line, "replace "):
			f := strings.Fields(strings.TrimPrefix(line, "replace "))
			if len(f) == 3 && f[1] == "=>" && strings.HasPrefix(f[2], "./staging/") {
				fmt.Fprintf(&r, "\t%s => %s %s\n", f[0], f[0], staging)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", fmt.Errorf("parse k8s.io/kubernetes go.mod: %w", err)
	}
	if r.Len() == 0 || !strings.Contains(h.String(), "go ") {
		return "", "", fmt.Errorf("parse k8s.io/kubernetes go.mod: no go line or staging replaces found")
	}
	return h.String(), r.String(), nil
}

func (b *Builder) goExec(ctx context.Context, dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	// GOWORK=off: a go.work above the cache must not leak in; GOTOOLCHAIN=local: never download a toolchain.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = b.opts.Log
	return cmd
}

func (b *Builder) goCmd(ctx context.Context, dir string, env []string, args ...string) error {
	var stderr bytes.Buffer
	cmd := b.goExec(ctx, dir, env, args...)
	cmd.Stdout = b.opts.Log
	cmd.Stderr = io.MultiWriter(&stderr, b.opts.Log)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.String(), 4000))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
