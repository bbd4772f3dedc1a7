package conformance

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"installer.dev/installer/lab/images"
)

// PushImages pushes images from the lab's OCI layout into a running lab registry (the mirror the
// hosts' containerd uses for registry.k8s.io), under their path without the registry host, which
// is what containerd asks a mirror for. The lab mirror serves the product images from `lab up` on;
// the conformance images are pushed when a run needs them, so `make lab` never builds them.
// Blobs the registry already holds are not sent again.
func PushImages(ctx context.Context, layoutDir, registryURL string, imgs []images.Image) error {
	u, err := url.Parse(registryURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("push images: registry %q is not a URL", registryURL)
	}
	p, err := layout.FromPath(layoutDir)
	if err != nil {
		return fmt.Errorf("push images: %w", err)
	}
	for _, img := range imgs {
		slash := strings.Index(img.Name, "/")
		if slash < 0 {
			return fmt.Errorf("push images: %q has no registry host", img.Name)
		}
		opts := []name.Option{}
		if u.Scheme == "http" {
			opts = append(opts, name.Insecure)
		}
		ref, err := name.ParseReference(u.Host+"/"+img.Name[slash+1:], opts...)
		if err != nil {
			return fmt.Errorf("push images: %s: %w", img.Name, err)
		}
		i, err := p.Image(img.Digest)
		if err != nil {
			return fmt.Errorf("push images: %s: %w", img.Name, err)
		}
		if err := remote.Write(ref, i, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("push images: %s to %s: %w", img.Name, ref, err)
		}
	}
	return nil
}
