package manifests

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"installer.dev/installer/pkg/apis/installer/v1alpha1"
	"installer.dev/installer/pkg/constants"
)

// CCM Secret names and where the cloud config is mounted.
const (
	CCMCloudConfigSecret = "cloud-controller-manager-config"
	ccmCloudConfigDir    = constants.KubernetesDir + "/cloud-config"
	ccmDefaultSecurePort = 10258
)

// ccmPreset is what one provider's CCM expects beyond the generic renderer.
type ccmPreset struct {
	// provider is the --cloud-provider value the CCM registers.
	provider string
	// component keys the image table ("" for custom, whose image comes from the spec).
	component string
	// flags the provider's own manifests pass.
	flags []string
	// configKey is the file name of the cloud config inside its mount.
	configKey string
	// credentialsSecret is the Secret name the CCM reads credentials from; env maps its keys to
	// environment variables (all keys as variables of the same name when nil and envFrom is set).
	credentialsSecret string
	env               map[string]string
	envFrom           bool
	// secretKeys rewrites the credentials' keys into the Secret's (vSphere keys them by server).
	secretKeys func(cloudConfig []byte, creds map[string]string) (map[string]string, error)
	// extraRoles are namespaced rules the provider needs besides the generic ClusterRole.
	extraRoles []ccmRole
}

type ccmRole struct {
	Name  string
	Rules []rbacv1.PolicyRule
}

func ccmPresetFor(name v1alpha1.CloudProviderName) (ccmPreset, error) {
	switch name {
	case v1alpha1.CloudAWS:
		// Credentials come from the instance profile; a Secret, when given, becomes AWS_* variables.
		return ccmPreset{provider: "aws", component: "ccm-aws", configKey: "cloud.conf",
			flags: []string{"--configure-cloud-routes=false"}, credentialsSecret: "aws-cloud-credentials", envFrom: true}, nil
	case v1alpha1.CloudOpenStack:
		// Keystone credentials live in the cloud config itself.
		return ccmPreset{provider: "openstack", component: "ccm-openstack", configKey: "cloud.conf"}, nil
	case v1alpha1.CloudHetzner:
		return ccmPreset{provider: "hcloud", component: "ccm-hetzner", flags: []string{"--allow-untagged-cloud"},
			credentialsSecret: "hcloud", env: map[string]string{"token": "HCLOUD_TOKEN"}}, nil
	case v1alpha1.CloudDigitalOcean:
		return ccmPreset{provider: "digitalocean", component: "ccm-digitalocean",
			credentialsSecret: "digitalocean", env: map[string]string{"access-token": "DO_ACCESS_TOKEN"}}, nil
	case v1alpha1.CloudVSphere:
		// The vSphere CCM reads "<server>.username/password" from the Secret its cloud config names
		// (secret-name/secret-namespace), through the API.
		return ccmPreset{provider: "vsphere", component: "ccm-vsphere", configKey: "vsphere.conf",
			credentialsSecret: "vsphere-cloud-secret", secretKeys: vsphereSecretKeys,
			extraRoles: []ccmRole{{Name: "cloud-controller-manager:vsphere-credentials", Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}},
			}}}}, nil
	case v1alpha1.CloudCustom:
		return ccmPreset{configKey: "cloud.conf", credentialsSecret: "cloud-controller-manager-credentials", envFrom: true}, nil
	}
	return ccmPreset{}, fmt.Errorf("cloud provider %q has no preset", name)
}

type ccmSecret struct {
	Name string
	Data map[string]string
}

type ccmData struct {
	Provider          string
	Image             string
	Command           []string
	Args              []string
	Env               []corev1.EnvVar
	EnvFrom           []corev1.EnvFromSource
	ExtraRoles        []ccmRole
	Secrets           []ccmSecret
	CloudConfigSecret string
	CloudConfigDir    string
	ConfigHash        string
	SecurePort        int
}

// ccmFile renders cluster/ccm.yaml: the generic CCM (service account, RBAC, DaemonSet on the control
// planes) with the preset's image, flags, environment and Secrets. The file holds credentials and
// the cloud config, so it is sensitive; Masked shows every Secret value as <redacted>.
func ccmFile(spec *v1alpha1.ClusterSpec, in Inputs) (*File, error) {
	if !spec.ExternalCCM() {
		return nil, nil
	}
	cp := spec.CloudProvider
	p, err := ccmPresetFor(cp.Name)
	if err != nil {
		return nil, err
	}
	d := ccmData{Provider: string(cp.Name), SecurePort: ccmDefaultSecurePort, ExtraRoles: p.extraRoles}
	if cp.Name == v1alpha1.CloudCustom {
		// Exactly the spec's image and arguments (they carry --cloud-provider), plus the installer's own flags.
		d.Image = Override(spec, cp.Image)
		d.Args = append(d.Args, cp.Args...)
	} else {
		r, err := Release(spec)
		if err != nil {
			return nil, err
		}
		img, err := ImageFor(r, p.component)
		if err != nil {
			return nil, err
		}
		d.Image = img.Name
		if cp.Image != "" {
			d.Image = cp.Image
		}
		d.Image = Override(spec, d.Image)
		d.Command = []string{img.Binaries[0]}
		d.Args = append(d.Args, "--cloud-provider="+p.provider)
		d.Args = append(d.Args, p.flags...)
		d.Args = append(d.Args, cp.Args...)
	}
	d.Args = append(d.Args, "--use-service-account-credentials=true", "--leader-elect=true")

	var cloudConfig []byte
	var secretValues [][]byte
	if cp.CloudConfigFile != "" {
		if p.configKey == "" {
			return nil, fmt.Errorf("spec.cloudProvider.cloudConfigFile: provider %s reads no cloud config", cp.Name)
		}
		cloudConfig, err = in.file(cp.CloudConfigFile)
		if err != nil {
			return nil, fmt.Errorf("spec.cloudProvider.cloudConfigFile: %w", err)
		}
		d.CloudConfigSecret, d.CloudConfigDir = CCMCloudConfigSecret, ccmCloudConfigDir
		d.Args = append(d.Args, "--cloud-config="+ccmCloudConfigDir+"/"+p.configKey)
		d.Secrets = append(d.Secrets, ccmSecret{Name: CCMCloudConfigSecret, Data: map[string]string{p.configKey: string(cloudConfig)}})
		secretValues = append(secretValues, cloudConfig)
	}

	credSecret := cp.CredentialsSecret // an existing Secret the user manages
	if len(cp.CredentialsEnv) > 0 {
		creds := map[string]string{}
		for _, k := range sortedKeys(cp.CredentialsEnv) {
			v, ok := in.CloudCredentials[k]
			if !ok || v == "" {
				return nil, fmt.Errorf("spec.cloudProvider.credentialsEnv[%s]: environment variable %s is empty or unset", k, cp.CredentialsEnv[k])
			}
			creds[k] = v
			secretValues = append(secretValues, []byte(k+"="+v))
		}
		if p.secretKeys != nil {
			if creds, err = p.secretKeys(cloudConfig, creds); err != nil {
				return nil, err
			}
		}
		credSecret = p.credentialsSecret
		d.Secrets = append(d.Secrets, ccmSecret{Name: credSecret, Data: creds})
	}
	if credSecret != "" {
		for _, k := range sortedKeys(p.env) {
			d.Env = append(d.Env, corev1.EnvVar{Name: p.env[k], ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: credSecret}, Key: k}}})
		}
		if p.envFrom {
			d.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: credSecret}}}}
		}
	}
	if port, ok := flagValue(d.Args, "secure-port"); ok {
		if n, err := strconv.Atoi(port); err == nil && n > 0 {
			d.SecurePort = n
		}
	}

	// The hash covers the rendered public parts and, keyed, the secret values.
	masked := d
	masked.Secrets = maskSecrets(d.Secrets)
	masked.ConfigHash = ""
	public, err := render("ccm.yaml.tmpl", masked)
	if err != nil {
		return nil, err
	}
	d.ConfigHash = in.configHash(public, secretValues...)
	masked.ConfigHash = d.ConfigHash
	content, err := render("ccm.yaml.tmpl", d)
	if err != nil {
		return nil, err
	}
	shown, err := render("ccm.yaml.tmpl", masked)
	if err != nil {
		return nil, err
	}
	f := File{Path: "ccm.yaml", Mode: 0o644, Content: content}
	if len(d.Secrets) > 0 {
		f.Mode, f.Sensitive, f.Masked = 0o600, true, shown
	}
	return &f, nil
}

func maskSecrets(in []ccmSecret) []ccmSecret {
	out := make([]ccmSecret, len(in))
	for i, s := range in {
		m := map[string]string{}
		for k := range s.Data {
			m[k] = Redacted
		}
		out[i] = ccmSecret{Name: s.Name, Data: m}
	}
	return out
}

// flagValue finds --name=value (or -name=value) in args.
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if k, v, ok := strings.Cut(a, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

var vsphereINIServer = regexp.MustCompile(`(?m)^\s*\[\s*VirtualCenter\s+"([^"]+)"\s*\]`)

// vsphereSecretKeys keys the credentials by every vCenter the cloud config names
// ("<server>.username", "<server>.password"), in INI or YAML form.
func vsphereSecretKeys(cloudConfig []byte, creds map[string]string) (map[string]string, error) {
	var servers []string
	for _, m := range vsphereINIServer.FindAllSubmatch(cloudConfig, -1) {
		servers = append(servers, string(m[1]))
	}
	if len(servers) == 0 {
		var y struct {
			VCenter map[string]struct {
				Server string `json:"server"`
			} `json:"vcenter"`
		}
		if err := yaml.Unmarshal(cloudConfig, &y); err == nil {
			for name, vc := range y.VCenter {
				s := vc.Server
				if s == "" {
					s = name
				}
				servers = append(servers, s)
			}
		}
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("spec.cloudProvider.cloudConfigFile: names no vCenter server ([VirtualCenter \"<server>\"] or vcenter.<name>.server), so the credentials cannot be keyed")
	}
	if !strings.Contains(string(cloudConfig), "vsphere-cloud-secret") {
		return nil, fmt.Errorf("spec.cloudProvider.cloudConfigFile: must name the credentials Secret vsphere-cloud-secret in namespace kube-system (secret-name/secret-namespace)")
	}
	sort.Strings(servers)
	out := map[string]string{}
	for _, s := range servers {
		out[s+".username"] = creds["username"]
		out[s+".password"] = creds["password"]
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
