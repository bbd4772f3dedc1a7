package kubeapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// FieldManager owns every field the installer applies.
const FieldManager = "installer"

// Decode splits a multi-document YAML manifest into objects, skipping empty documents.
func Decode(manifest []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document %d: no apiVersion or kind", i+1)
		}
		if u.GetKind() == "List" {
			items, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
			for j := range items.Items {
				out = append(out, &items.Items[j])
			}
			continue
		}
		out = append(out, u)
	}
}

// Apply server-side-applies every object of a manifest, in order, and returns how many objects it
// created or changed (content other than write metadata and status). Objects of kinds whose
// CustomResourceDefinition the same manifest creates are applied once the CRD is served.
func (c *Client) Apply(ctx context.Context, manifest []byte) (int, error) {
	objs, err := Decode(manifest)
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, obj := range objs {
		ch, err := c.applyOne(ctx, obj)
		if err != nil {
			return changed, fmt.Errorf("apply %s %s: %w", obj.GetKind(), objectName(obj), err)
		}
		if ch {
			changed++
		}
	}
	return changed, nil
}

func (c *Client) applyOne(ctx context.Context, obj *unstructured.Unstructured) (bool, error) {
	gvk := obj.GroupVersionKind()
	var ri dynamic.ResourceInterface
	err := Poll(ctx, pollInterval, crdWait, "kind "+gvk.String()+" served", func(ctx context.Context) (bool, string, error) {
		r, err := c.resourceFor(obj)
		if err == nil {
			ri = r
			return true, "", nil
		}
		if meta.IsNoMatchError(err) {
			c.mapper.Reset() // a CRD applied just before may be served by now
			return false, err.Error(), nil
		}
		return false, "", err
	})
	if err != nil {
		return false, err
	}
	before, err := current(ctx, ri, obj)
	if err != nil {
		return false, err
	}
	after, err := serverSideApply(ctx, ri, obj, nil)
	if err != nil {
		return false, err
	}
	return before == nil || changed(before, after), nil
}

// resourceFor is the API resource of obj's kind, in obj's namespace (default when it names none)
// when the kind is namespaced. A kind the API does not serve is a meta.NoKindMatchError.
func (c *Client) resourceFor(obj *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, err
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(mapping.Resource), nil
	}
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	return c.Dynamic.Resource(mapping.Resource).Namespace(ns), nil
}

// current is obj as the API holds it, nil when it does not exist.
func current(ctx context.Context, ri dynamic.ResourceInterface, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	cur, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return cur, err
}

// serverSideApply applies obj as the installer's field manager, taking over conflicting fields,
// and returns the object the API made of it; dryRun ([]string{metav1.DryRunAll}) stores nothing.
func serverSideApply(ctx context.Context, ri dynamic.ResourceInterface, obj *unstructured.Unstructured, dryRun []string) (*unstructured.Unstructured, error) {
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	force := true
	return ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force, DryRun: dryRun})
}

// changed reports whether an apply changed an object's content.
func changed(before, after *unstructured.Unstructured) bool {
	return !equality.Semantic.DeepEqual(content(before), content(after))
}

// content is an object without the metadata every write touches (resourceVersion, managedFields
// timestamps): a re-apply that only refreshes those is not a change. The apiserver re-adding a
// label it owns (a Namespace's kubernetes.io/metadata.name) bumps the resourceVersion although
// nothing changed.
func content(u *unstructured.Unstructured) map[string]any {
	c := u.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(c.Object, "metadata", "generation")
	unstructured.RemoveNestedField(c.Object, "status")
	return c.Object
}

func objectName(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns + "/" + obj.GetName()
	}
	return obj.GetName()
}
