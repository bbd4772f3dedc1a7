// Package aptsources reads the machine's own apt sources, so the lab uses exactly the Debian mirror this
// machine is allowed to reach (mmdebstrap's mirror, apt-cacher-ng's backend) and never guesses one.
package aptsources

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Source is one "deb" entry: a repository URI with its suites and components.
type Source struct {
	URI        string
	Suites     []string
	Components []string
}

// IsSecurity tells whether the entry serves Debian's security suites.
func (s Source) IsSecurity() bool {
	for _, suite := range s.Suites {
		if strings.HasSuffix(suite, "-security") || strings.HasSuffix(suite, "/updates") {
			return true
		}
	}
	return false
}

// ReadSystem reads /etc/apt/sources.list and /etc/apt/sources.list.d/ (one-line and deb822 formats).
func ReadSystem() ([]Source, error) {
	return Read("/etc/apt")
}

// Read reads the sources under an apt configuration directory (normally /etc/apt).
func Read(aptDir string) ([]Source, error) {
	var out []Source
	if data, err := os.ReadFile(filepath.Join(aptDir, "sources.list")); err == nil {
		out = append(out, parseOneLine(data)...)
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read apt sources: %w", err)
	}
	dir := filepath.Join(aptDir, "sources.list.d")
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read apt sources: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read apt sources: %w", err)
		}
		switch {
		case strings.HasSuffix(name, ".sources"):
			out = append(out, parseDeb822(data)...)
		case strings.HasSuffix(name, ".list"):
			out = append(out, parseOneLine(data)...)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no deb entries in %s", aptDir)
	}
	return out, nil
}

// DebianMirror returns the URI of the first non-security Debian archive entry.
func DebianMirror(sources []Source) (string, error) {
	for _, s := range sources {
		if !s.IsSecurity() && strings.HasSuffix(strings.TrimRight(s.URI, "/"), "/debian") {
			return strings.TrimRight(s.URI, "/"), nil
		}
	}
	return "", fmt.Errorf("no Debian archive (…/debian) among the machine's apt sources")
}

// SecurityMirror returns the URI of the first Debian security entry.
func SecurityMirror(sources []Source) (string, error) {
	for _, s := range sources {
		if s.IsSecurity() {
			return strings.TrimRight(s.URI, "/"), nil
		}
	}
	return "", fmt.Errorf("no Debian security entry among the machine's apt sources")
}

func parseOneLine(data []byte) []Source {
	var out []Source
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options such as [signed-by=...]
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) < 2 {
			continue
		}
		out = append(out, Source{URI: f[0], Suites: []string{f[1]}, Components: f[2:]})
	}
	return out
}

func parseDeb822(data []byte) []Source {
	var out []Source
	for _, para := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		key := ""
		for _, line := range strings.Split(para, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && key != "" {
				fields[key] += " " + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			key = strings.ToLower(strings.TrimSpace(k))
			fields[key] = strings.TrimSpace(v)
		}
		if !containsWord(fields["types"], "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			out = append(out, Source{URI: uri, Suites: strings.Fields(fields["suites"]),
				Components: strings.Fields(fields["components"])})
		}
	}
	return out
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
