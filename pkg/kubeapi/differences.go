package kubeapi

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Differences reports, one line per object of a manifest, what Apply would do to it, without
// changing anything: "+ Kind ns/name" for an object that does not exist (or whose kind is not
// served yet: a CRD the same manifest creates), "~ Kind ns/name" for one a server-side dry-run
// apply finds changed, compared as Apply compares. Unchanged objects give no line. A line names
// the object, never its content (a manifest may hold credentials).
func (c *Client) Differences(ctx context.Context, manifest []byte) ([]string, error) {
	objs, err := Decode(manifest)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, obj := range objs {
		op, err := c.differs(ctx, obj)
		if err != nil {
			return nil, fmt.Errorf("dry-run apply %s %s: %w", obj.GetKind(), objectName(obj), err)
		}
		if op != "" {
			out = append(out, op+" "+obj.GetKind()+" "+objectName(obj))
		}
	}
	return out, nil
}

// differs is "+" when obj would be created, "~" when applying it would change it, "" otherwise.
func (c *Client) differs(ctx context.Context, obj *unstructured.Unstructured) (string, error) {
	ri, err := c.resourceFor(obj)
	if meta.IsNoMatchError(err) {
		// The discovery cache may predate a CRD created since: look once more, without waiting.
		c.mapper.Reset()
		ri, err = c.resourceFor(obj)
	}
	if meta.IsNoMatchError(err) {
		return "+", nil
	}
	if err != nil {
		return "", err
	}
	before, err := current(ctx, ri, obj)
	if err != nil {
		return "", err
	}
	if before == nil {
		// Not dry-run applied: its namespace may not exist yet either.
		return "+", nil
	}
	after, err := serverSideApply(ctx, ri, obj, []string{metav1.DryRunAll})
	if err != nil {
		return "", err
	}
	if changed(before, after) {
		return "~", nil
	}
	return "", nil
}
