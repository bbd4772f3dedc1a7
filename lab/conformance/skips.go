package conformance

// Skip is a pattern of specs the lab does not run, with the reason. Every pattern here is listed in
// docs/conformance.md (a test checks it): nothing is skipped quietly.
type Skip struct {
	Suite   string // SuiteKubeadm or SuiteConformance
	Pattern string // a Ginkgo --skip regular expression, matched against the spec's full text
	Reason  string
}

// Skips are the specs the lab's runs leave out.
var Skips = []Skip{
	{
		Suite:   SuiteKubeadm,
		Pattern: `\[copy-certs\]`,
		Reason: "the 3 kubeadm-certs specs check the kubeadm-certs Secret that `kubeadm init --upload-certs` " +
			"creates; the installer distributes the cluster CAs itself over SSH and never uploads certificates",
	},
}

// skipPatterns returns the patterns of a suite.
func skipPatterns(suite string) []string {
	var out []string
	for _, s := range Skips {
		if s.Suite == suite {
			out = append(out, s.Pattern)
		}
	}
	return out
}
