package manifests

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
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

// The presets themselves are v1alpha1.CloudPresets, which validation reads too. What only code can
// do lives here: ccmSecretKeys rewrites the credentials' keys into the Secret's for a provider that
// keys them by something in its cloud config (vSphere: by server).
var ccmSecretKeys = map[v1alpha1.CloudProviderName]func(p v1alpha1.CloudPreset, cloudConfig []byte, creds map[string]string) (map[string]string, error){
	v1alpha1.CloudVSphere: vsphereSecretKeys,
}

type ccmRole struct {
	Name  string
	Rules []rbacv1.PolicyRule
}

// ccmRoles are the namespaced rules a preset needs besides the generic ClusterRole: reading Secrets
// in kube-system when the CCM reads its credentials through the API.
func ccmRoles(p v1alpha1.CloudPreset) []ccmRole {
	if !p.SecretsFromAPI {
		return nil
	}
	return []ccmRole{{Name: "cloud-controller-manager:" + p.Provider + "-credentials", Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}},
	}}}
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
	p, ok := v1alpha1.CloudPresetFor(cp.Name)
	if !ok {
		return nil, fmt.Errorf("cloud provider %q has no preset", cp.Name)
	}
	d := ccmData{Provider: string(cp.Name), SecurePort: ccmDefaultSecurePort, ExtraRoles: ccmRoles(p)}
	if cp.Name == v1alpha1.CloudCustom {
		// Exactly the spec's image and arguments (they carry --cloud-provider), plus the installer's own flags.
		d.Image = Override(spec, cp.Image)
		d.Args = append(d.Args, cp.Args...)
	} else {
		r, err := Release(spec)
		if err != nil {
			return nil, err
		}
		img, err := ImageFor(r, p.Component)
		if err != nil {
			return nil, err
		}
		d.Image = img.Name
		if cp.Image != "" {
			d.Image = cp.Image
		}
		d.Image = Override(spec, d.Image)
		d.Command = []string{img.Binaries[0]}
		d.Args = append(d.Args, "--cloud-provider="+p.Provider)
		d.Args = append(d.Args, p.Flags...)
		d.Args = append(d.Args, cp.Args...)
	}
	d.Args = append(d.Args, "--use-service-account-credentials=true", "--leader-elect=true")

	var cloudConfig []byte
	var secretValues [][]byte
	var err error
	if cp.CloudConfigFile != "" {
		if p.ConfigKey == "" {
			return nil, fmt.Errorf("spec.cloudProvider.cloudConfigFile: provider %s reads no cloud config", cp.Name)
		}
		cloudConfig, err = in.file(cp.CloudConfigFile)
		if err != nil {
			return nil, fmt.Errorf("spec.cloudProvider.cloudConfigFile: %w", err)
		}
		d.CloudConfigSecret, d.CloudConfigDir = CCMCloudConfigSecret, ccmCloudConfigDir
		d.Args = append(d.Args, "--cloud-config="+ccmCloudConfigDir+"/"+p.ConfigKey)
		d.Secrets = append(d.Secrets, ccmSecret{Name: CCMCloudConfigSecret, Data: map[string]string{p.ConfigKey: string(cloudConfig)}})
		secretValues = append(secretValues, cloudConfig)
	}

	credSecret := cp.CredentialsSecret // an existing Secret the user manages
	if len(cp.CredentialsEnv) > 0 {
		creds := map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(cp.CredentialsEnv)) {
			v, ok := in.CloudCredentials[k]
			if !ok || v == "" {
				return nil, fmt.Errorf("spec.cloudProvider.credentialsEnv[%s]: environment variable %s is empty or unset", k, cp.CredentialsEnv[k])
			}
			creds[k] = v
			secretValues = append(secretValues, []byte(k+"="+v))
		}
		if keys := ccmSecretKeys[p.Name]; keys != nil {
			if creds, err = keys(p, cloudConfig, creds); err != nil {
				return nil, err
			}
		}
		credSecret = p.CredentialsSecret
		d.Secrets = append(d.Secrets, ccmSecret{Name: credSecret, Data: creds})
	}
	if credSecret != "" {
		for _, c := range p.Credentials {
			if c.Env == "" {
				continue
			}
			d.Env = append(d.Env, corev1.EnvVar{Name: c.Env, ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: credSecret}, Key: c.Key}}})
		}
		if p.EnvFrom {
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
func vsphereSecretKeys(p v1alpha1.CloudPreset, cloudConfig []byte, creds map[string]string) (map[string]string, error) {
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
	if !strings.Contains(string(cloudConfig), p.CredentialsSecret) {
		return nil, fmt.Errorf("spec.cloudProvider.cloudConfigFile: must name the credentials Secret %s in namespace kube-system (secret-name/secret-namespace)", p.CredentialsSecret)
	}
	sort.Strings(servers)
	out := map[string]string{}
	for _, s := range servers {
		for _, k := range p.CredentialKeys() {
			out[s+"."+k] = creds[k]
		}
	}
	return out, nil
}
