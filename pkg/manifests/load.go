package manifests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/pins"
)

// DefaultCalicoVersion is the calico release fetched when spec.cni.version is empty. Its manifest is
// fetched from the official URL (or spec.cni.manifest) and verified against spec.cni.sha256.
const DefaultCalicoVersion = "v3.30.3"

// maxManifestSize bounds what a fetch reads (calico's manifest is ~250 KiB).
const maxManifestSize = 16 << 20

// CNIManifestSource is where a calico/cilium/custom manifest comes from: spec.cni.manifest, else
// calico's official manifest for the pinned version. Cilium publishes no plain manifest (only a Helm
// chart), so it always needs spec.cni.manifest.
func CNIManifestSource(spec *v1alpha1.ClusterSpec) (string, error) {
	if spec.CNI.Manifest != "" {
		return spec.CNI.Manifest, nil
	}
	switch spec.CNI.Plugin {
	case v1alpha1.CNICalico:
		v := spec.CNI.Version
		if v == "" {
			v = DefaultCalicoVersion
		}
		return "https://raw.githubusercontent.com/projectcalico/calico/" + v + "/manifests/calico.yaml", nil
	case v1alpha1.CNICilium:
		return "", fmt.Errorf("spec.cni.manifest: cilium publishes only a Helm chart; render it once (helm template or cilium install --dry-run), then give the file or its mirror URL and its sha256")
	}
	return "", fmt.Errorf("spec.cni.manifest: required for plugin %s", spec.CNI.Plugin)
}

// FetchManifest reads a manifest from an http(s) URL (with client) or a local file and checks its
// hex SHA-256 when one is given. URLs without a checksum are refused: validation requires one.
func FetchManifest(ctx context.Context, client *http.Client, ref, sha string) ([]byte, error) {
	var b []byte
	if v1alpha1.IsURL(ref) {
		if sha == "" {
			return nil, fmt.Errorf("%s: a manifest fetched over the network needs its sha256", ref)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", ref, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", ref, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch %s: %s", ref, resp.Status)
		}
		b, err = io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", ref, err)
		}
		if len(b) > maxManifestSize {
			return nil, fmt.Errorf("fetch %s: larger than %d bytes", ref, maxManifestSize)
		}
	} else {
		var err error
		if b, err = os.ReadFile(ref); err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
	}
	if sha != "" {
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, sha) {
			return nil, fmt.Errorf("%s: sha256 is %s, the spec expects %s", ref, got, strings.ToLower(sha))
		}
	}
	return b, nil
}

// FetchTimeout bounds each manifest download of LoadInputs' default client, body included.
const FetchTimeout = 2 * time.Minute

func defaultHTTPClient() *http.Client { return &http.Client{Timeout: FetchTimeout} }

// LoadOptions configure LoadInputs.
type LoadOptions struct {
	// HTTPClient fetches manifests and addons given as URLs (default: one whose requests give up
	// after FetchTimeout, so a stalled server cannot hang a command).
	HTTPClient *http.Client
	// Getenv reads the variables spec.cloudProvider.credentialsEnv names (default os.Getenv);
	// values go into Inputs only, never into logs.
	Getenv func(string) string
	// VRRPPassword and HashKey are the state directory's stable secrets (see Inputs).
	VRRPPassword string
	HashKey      []byte
}

// LoadInputs gathers everything a resolved (paths absolute), defaulted and validated spec's
// renderers need: CA and cloud-config files, the package repository's key file, the CNI manifest
// (verified), addons, and the cloud credentials from the environment. It is the only part of this package that does I/O.
func LoadInputs(ctx context.Context, spec *v1alpha1.ClusterSpec, o LoadOptions) (Inputs, error) {
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	in := Inputs{Files: map[string][]byte{}, VRRPPassword: o.VRRPPassword, HashKey: o.HashKey}
	readLocal := func(field, p string) error {
		if p == "" {
			return nil
		}
		if _, done := in.Files[p]; done {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		in.Files[p] = b
		return nil
	}
	for _, reg := range slices.Sorted(maps.Keys(spec.Images.Mirrors)) {
		for i, ep := range spec.Images.Mirrors[reg] {
			if err := readLocal(fmt.Sprintf("spec.images.mirrors[%s][%d].caFile", reg, i), ep.CAFile); err != nil {
				return Inputs{}, err
			}
		}
	}
	if err := readLocal("spec.cloudProvider.cloudConfigFile", spec.CloudProvider.CloudConfigFile); err != nil {
		return Inputs{}, err
	}
	if err := readLocal("spec.install.packageRepositoryKeyFile", spec.Install.PackageRepositoryKeyFile); err != nil {
		return Inputs{}, err
	}
	if p := spec.Install.ChecksumsFile; p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return Inputs{}, fmt.Errorf("spec.install.checksumsFile: %w", err)
		}
		if in.Pins, err = pins.Parse(b); err != nil {
			return Inputs{}, fmt.Errorf("spec.install.checksumsFile: %s: %w", p, err)
		}
	}
	switch spec.CNI.Plugin {
	case v1alpha1.CNICalico, v1alpha1.CNICilium, v1alpha1.CNICustom:
		src, err := CNIManifestSource(spec)
		if err != nil {
			return Inputs{}, err
		}
		if in.CNIManifest, err = FetchManifest(ctx, o.HTTPClient, src, spec.CNI.SHA256); err != nil {
			return Inputs{}, fmt.Errorf("spec.cni: %w", err)
		}
	}
	for i, a := range spec.Addons {
		b, err := FetchManifest(ctx, o.HTTPClient, a.Manifest, a.SHA256)
		if err != nil {
			return Inputs{}, fmt.Errorf("spec.addons[%d]: %w", i, err)
		}
		in.Addons = append(in.Addons, b)
	}
	if len(spec.CloudProvider.CredentialsEnv) > 0 {
		in.CloudCredentials = map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(spec.CloudProvider.CredentialsEnv)) {
			env := spec.CloudProvider.CredentialsEnv[k]
			v := o.Getenv(env)
			if v == "" {
				return Inputs{}, fmt.Errorf("spec.cloudProvider.credentialsEnv[%s]: environment variable %s is empty or unset", k, env)
			}
			in.CloudCredentials[k] = v
		}
	}
	return in, nil
}
