package manifests

import (
	"bytes"
	"fmt"
	"math"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/facts"
)

// Containerd paths on every host.
const (
	ContainerdConfigPath = "/etc/containerd/config.toml"
	ContainerdCertsDir   = "/etc/containerd/certs.d"
)

// ContainerdVersion is the containerd version the config is written for: the installed one when
// facts read it from the host, else the spec's pinned version, else what a package install brings
// (facts.AssumedContainerdVersion).
func ContainerdVersion(spec *v1alpha1.ClusterSpec, f facts.Host) string {
	switch {
	case f.ContainerdVersion != "" && !f.Assumed:
		return f.ContainerdVersion
	case spec.ContainerRuntime.Containerd.Version != "":
		return spec.ContainerRuntime.Containerd.Version
	case f.ContainerdVersion != "":
		return f.ContainerdVersion
	}
	return facts.AssumedContainerdVersion
}

// ContainerdFromRelease reports whether the host runs (or is about to get) the spec's containerd
// release binaries, which need the installer's unit. A node that still runs another containerd
// (one the upgrade replaces after draining it) keeps its own unit.
func ContainerdFromRelease(spec *v1alpha1.ClusterSpec, f facts.Host) bool {
	c := spec.ContainerRuntime.Containerd
	return c.Source == v1alpha1.InstallBinary && strings.TrimPrefix(ContainerdVersion(spec, f), "v") == strings.TrimPrefix(c.Version, "v")
}

// ContainerdConfigVersion maps a containerd version to its config format: 2 for 1.x, 3 for 2.x.
func ContainerdConfigVersion(version string) (int, error) {
	v := strings.TrimPrefix(version, "v")
	major, _, _ := strings.Cut(v, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0, fmt.Errorf("containerd version %q: no major version", version)
	}
	switch {
	case n == 1:
		// 1.6 and 1.7 read version 2; older releases are out of Kubernetes' support.
		return 2, nil
	case n == 2:
		return 3, nil
	}
	return 0, fmt.Errorf("containerd %s is not supported (1.6, 1.7 or 2.x)", version)
}

type containerdData struct {
	SandboxImage        string
	RestrictOOMScoreAdj bool
	ConfigPath          string
}

// containerdConfig renders /etc/containerd/config.toml. Extra TOML from the spec is deep-merged into
// the parsed document (tables merge, other values replace), then the result is written back.
func containerdConfig(spec *v1alpha1.ClusterSpec, f facts.Host) (File, error) {
	cv, err := ContainerdConfigVersion(ContainerdVersion(spec, f))
	if err != nil {
		return File{}, err
	}
	pause, err := ImageName(spec, "pause")
	if err != nil {
		return File{}, err
	}
	out, err := render(fmt.Sprintf("containerd-v%d.toml.tmpl", cv), containerdData{
		SandboxImage:        pause,
		RestrictOOMScoreAdj: spec.ContainerRuntime.Containerd.RestrictOOMScoreAdj,
		ConfigPath:          ContainerdCertsDir,
	})
	if err != nil {
		return File{}, err
	}
	var doc map[string]any
	if err := toml.Unmarshal(out, &doc); err != nil {
		return File{}, fmt.Errorf("containerd config: rendered TOML does not parse: %w", err)
	}
	if extra := spec.ContainerRuntime.Containerd.Config; len(extra) > 0 {
		conv, err := tomlValues(extra, "spec.containerRuntime.containerd.config")
		if err != nil {
			return File{}, err
		}
		if v, ok := conv.(map[string]any)["version"]; ok && fmt.Sprint(v) != strconv.Itoa(cv) {
			return File{}, fmt.Errorf("spec.containerRuntime.containerd.config.version: %v, but containerd %s reads config version %d", v, ContainerdVersion(spec, f), cv)
		}
		deepMerge(doc, conv.(map[string]any))
		var buf bytes.Buffer
		fmt.Fprintf(&buf, "# Written by installer: containerd config version %d with spec.containerRuntime.containerd.config merged in.\n", cv)
		enc := toml.NewEncoder(&buf).SetIndentTables(true)
		if err := enc.Encode(doc); err != nil {
			return File{}, fmt.Errorf("containerd config: %w", err)
		}
		out = buf.Bytes()
	}
	return File{Path: ContainerdConfigPath, Mode: 0o644, Content: out}, nil
}

// tomlValues converts values decoded from the spec's YAML (JSON numbers are float64) to what the
// TOML encoder should write: whole numbers as integers.
func tomlValues(v any, at string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			c, err := tomlValues(e, at+"."+k)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			c, err := tomlValues(e, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1<<53 {
			return int64(t), nil
		}
		return t, nil
	case nil:
		return nil, fmt.Errorf("%s: TOML has no null", at)
	}
	return v, nil
}

// deepMerge merges src into dst: tables merge key by key, anything else replaces.
func deepMerge(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				deepMerge(dm, sm)
				continue
			}
		}
		dst[k] = sv
	}
}

type hostsData struct {
	Registry string
	Server   string
	Hosts    []hostsEntry
}

type hostsEntry struct {
	URL        string
	CA         string
	SkipVerify bool
}

// RegistryServer is the upstream endpoint containerd falls back to for a registry host.
func RegistryServer(registry string) string {
	if registry == "docker.io" {
		// Docker Hub's API is not served under its image-name host.
		return "https://registry-1.docker.io"
	}
	return "https://" + registry
}

// WrittenByMarker starts every registry's hosts.toml the installer writes: the proof that a file
// of a registry the spec no longer mirrors is the installer's to remove.
const WrittenByMarker = "# Written by installer"

// registryHosts renders certs.d/<registry>/hosts.toml for every mirrored registry, plus the CA files
// the mirrors name, uploaded beside it.
func registryHosts(spec *v1alpha1.ClusterSpec, in Inputs) ([]File, error) {
	regs := make([]string, 0, len(spec.Images.Mirrors))
	for r := range spec.Images.Mirrors {
		regs = append(regs, r)
	}
	sort.Strings(regs)
	var files []File
	for _, reg := range regs {
		dir := path.Join(ContainerdCertsDir, reg)
		d := hostsData{Registry: reg, Server: RegistryServer(reg)}
		cas := map[string]bool{}
		for i, ep := range spec.Images.Mirrors[reg] {
			e := hostsEntry{URL: ep.URL, SkipVerify: ep.SkipVerify}
			if ep.CAFile != "" {
				content, err := in.file(ep.CAFile)
				if err != nil {
					return nil, fmt.Errorf("spec.images.mirrors[%s][%d].caFile: %w", reg, i, err)
				}
				u, err := url.Parse(ep.URL)
				if err != nil {
					return nil, fmt.Errorf("spec.images.mirrors[%s][%d].url: %w", reg, i, err)
				}
				// One CA file per mirror host; ":" is legal in file names but not in every tool's.
				e.CA = path.Join(dir, strings.ReplaceAll(u.Host, ":", "_")+".crt")
				if !cas[e.CA] {
					cas[e.CA] = true
					files = append(files, File{Path: e.CA, Mode: 0o644, Content: content})
				}
			}
			d.Hosts = append(d.Hosts, e)
		}
		out, err := render("hosts.toml.tmpl", d)
		if err != nil {
			return nil, err
		}
		var check map[string]any
		if err := toml.Unmarshal(out, &check); err != nil {
			return nil, fmt.Errorf("hosts.toml for %s does not parse: %w", reg, err)
		}
		files = append(files, File{Path: path.Join(dir, "hosts.toml"), Mode: 0o644, Content: out})
	}
	return files, nil
}
