package v1alpha1

import "slices"

// CloudPreset is everything the installer knows about one cloud provider's cloud-controller-manager:
// what validation requires of spec.cloudProvider and what pkg/manifests renders. Validation and the
// renderer both read cloudPresets, so adding a provider is one entry there (plus its
// CloudProviderName); docs/spec.md and docs/manifests.md describe the table.
type CloudPreset struct {
	Name CloudProviderName
	// Provider is the --cloud-provider value the CCM registers ("" for custom, whose args carry it).
	Provider string
	// Component keys the release's image table ("" for custom, whose image the spec names).
	Component string
	// Flags are what the provider's own manifests pass besides --cloud-provider.
	Flags []string
	// NeedsImage and NeedsArgs: the spec must name the image and pass the flags itself (custom).
	NeedsImage, NeedsArgs bool
	// ConfigKey is the cloud config's file name inside its mount ("" when the provider reads none);
	// NeedsCloudConfig makes spec.cloudProvider.cloudConfigFile required.
	ConfigKey        string
	NeedsCloudConfig bool
	// CredentialsSecret is the Secret the installer builds from spec.cloudProvider.credentialsEnv.
	CredentialsSecret string
	// Credentials are the keys the provider's credentials must hold, sorted by key; none when it
	// needs no credentials or takes any keys (EnvFrom).
	Credentials []CloudCredential
	// EnvFrom passes every key of the credentials Secret as an environment variable of its name.
	EnvFrom bool
	// SecretsFromAPI: the CCM reads its credentials Secret through the API (not from its
	// environment), so it gets a Role that reads Secrets in kube-system.
	SecretsFromAPI bool
}

// CloudCredential is one key of a provider's credentials.
type CloudCredential struct {
	Key string
	// Env is the environment variable the CCM reads the key from ("" when it reads the Secret
	// through the API).
	Env string
}

// cloudPresets lists every provider but none, in the order validation names them.
var cloudPresets = []CloudPreset{
	// Credentials come from the instance profile; a Secret, when given, becomes AWS_* variables.
	{Name: CloudAWS, Provider: "aws", Component: "ccm-aws", Flags: []string{"--configure-cloud-routes=false"},
		ConfigKey: "cloud.conf", CredentialsSecret: "aws-cloud-credentials", EnvFrom: true},
	// Keystone credentials live in the cloud config itself.
	{Name: CloudOpenStack, Provider: "openstack", Component: "ccm-openstack", ConfigKey: "cloud.conf", NeedsCloudConfig: true},
	{Name: CloudHetzner, Provider: "hcloud", Component: "ccm-hetzner", Flags: []string{"--allow-untagged-cloud"},
		CredentialsSecret: "hcloud", Credentials: []CloudCredential{{Key: "token", Env: "HCLOUD_TOKEN"}}},
	{Name: CloudDigitalOcean, Provider: "digitalocean", Component: "ccm-digitalocean",
		CredentialsSecret: "digitalocean", Credentials: []CloudCredential{{Key: "access-token", Env: "DO_ACCESS_TOKEN"}}},
	// The vSphere CCM reads "<server>.username/password" from the Secret its cloud config names
	// (secret-name/secret-namespace), through the API; pkg/manifests keys the credentials by server.
	{Name: CloudVSphere, Provider: "vsphere", Component: "ccm-vsphere", ConfigKey: "vsphere.conf", NeedsCloudConfig: true,
		CredentialsSecret: "vsphere-cloud-secret", Credentials: []CloudCredential{{Key: "password"}, {Key: "username"}}, SecretsFromAPI: true},
	{Name: CloudCustom, NeedsImage: true, NeedsArgs: true, ConfigKey: "cloud.conf",
		CredentialsSecret: "cloud-controller-manager-credentials", EnvFrom: true},
}

// CloudPresets returns every preset, in the order validation names them.
func CloudPresets() []CloudPreset {
	out := make([]CloudPreset, len(cloudPresets))
	for i, p := range cloudPresets {
		out[i] = p.clone()
	}
	return out
}

// CloudPresetFor returns the preset of a provider; none has none.
func CloudPresetFor(name CloudProviderName) (CloudPreset, bool) {
	for _, p := range cloudPresets {
		if p.Name == name {
			return p.clone(), true
		}
	}
	return CloudPreset{}, false
}

// CredentialKeys are the keys the credentials must hold, sorted.
func (p CloudPreset) CredentialKeys() []string {
	var keys []string
	for _, c := range p.Credentials {
		keys = append(keys, c.Key)
	}
	return keys
}

func (p CloudPreset) clone() CloudPreset {
	p.Flags, p.Credentials = slices.Clone(p.Flags), slices.Clone(p.Credentials)
	return p
}

// cloudProviderNames are the accepted spec.cloudProvider.name values: none, then every preset.
func cloudProviderNames() []CloudProviderName {
	names := []CloudProviderName{CloudNone}
	for _, p := range cloudPresets {
		names = append(names, p.Name)
	}
	return names
}
