package manifests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
)

// ClusterFiles renders what is applied to the cluster after kubeadm init: cni.yaml (flannel, or the
// fetched calico/cilium/custom manifest transformed), ccm.yaml with an external cloud provider, and
// addons/NN-<name>.yaml for spec.addons. Paths are relative to the render output's cluster/ directory.
func ClusterFiles(spec *v1alpha1.ClusterSpec, in Inputs) ([]File, error) {
	var files []File
	cni, err := cniFile(spec, in)
	if err != nil {
		return nil, fmt.Errorf("cni: %w", err)
	}
	if cni != nil {
		files = append(files, *cni)
	}
	ccm, err := ccmFile(spec, in)
	if err != nil {
		return nil, fmt.Errorf("cloud-controller-manager: %w", err)
	}
	if ccm != nil {
		files = append(files, *ccm)
	}
	addons, err := addonFiles(spec, in)
	if err != nil {
		return nil, err
	}
	files = append(files, addons...)
	SortFiles(files)
	return files, nil
}

func cniFile(spec *v1alpha1.ClusterSpec, in Inputs) (*File, error) {
	switch spec.CNI.Plugin {
	case v1alpha1.CNINone:
		return nil, nil
	case v1alpha1.CNIFlannel:
		b, err := flannel(spec)
		if err != nil {
			return nil, err
		}
		return &File{Path: "cni.yaml", Mode: 0o644, Content: b}, nil
	case v1alpha1.CNICalico, v1alpha1.CNICilium, v1alpha1.CNICustom:
		if len(in.CNIManifest) == 0 {
			return nil, fmt.Errorf("the %s manifest was not loaded", spec.CNI.Plugin)
		}
		b, err := TransformCNI(spec, in.CNIManifest)
		if err != nil {
			return nil, err
		}
		return &File{Path: "cni.yaml", Mode: 0o644, Content: b}, nil
	}
	return nil, fmt.Errorf("unknown plugin %q", spec.CNI.Plugin)
}

type flannelData struct {
	CNIConf, NetConf, ConfigHash string
	FlannelImage, CNIPluginImage string
}

func flannel(spec *v1alpha1.ClusterSpec) ([]byte, error) {
	fimg, err := ImageName(spec, "flannel")
	if err != nil {
		return nil, err
	}
	pimg, err := ImageName(spec, "flannel-cni-plugin")
	if err != nil {
		return nil, err
	}
	cniConf, err := jsonIndent(map[string]any{
		"name": "cbr0", "cniVersion": "0.3.1",
		"plugins": []any{
			map[string]any{"type": "flannel", "delegate": map[string]any{"hairpinMode": true, "isDefaultGateway": true}},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	})
	if err != nil {
		return nil, err
	}
	ip, _, err := net.ParseCIDR(spec.Networking.PodSubnet)
	if err != nil {
		return nil, fmt.Errorf("spec.networking.podSubnet: %w", err)
	}
	net := map[string]any{"EnableNFTables": false, "Backend": map[string]any{"Type": "vxlan"}}
	if ip.To4() != nil {
		net["Network"] = spec.Networking.PodSubnet
	} else {
		net["EnableIPv4"], net["EnableIPv6"], net["IPv6Network"] = false, true, spec.Networking.PodSubnet
	}
	netConf, err := jsonIndent(net)
	if err != nil {
		return nil, err
	}
	d := flannelData{CNIConf: cniConf, NetConf: netConf, FlannelImage: fimg, CNIPluginImage: pimg}
	d.ConfigHash = Inputs{}.configHash([]byte(cniConf + netConf))
	return render("flannel.yaml.tmpl", d)
}

func jsonIndent(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return "", err
	}
	return buf.String() + "\n", nil
}
