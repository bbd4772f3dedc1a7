// Package v1alpha1 is the cluster spec (apiVersion installer.dev/v1alpha1, kind Cluster): its types,
// Default (pure, fills every documented default), Validate (pure, returns every problem with its field
// path) and a strict Load (unknown or duplicate fields are errors, YAML syntax errors carry their line).
// docs/spec.md documents every field; keep the two in step.
package v1alpha1
