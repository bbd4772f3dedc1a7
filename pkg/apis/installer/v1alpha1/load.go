package v1alpha1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// MaxSpecBytes bounds a spec file: the largest real spec (thousands of hosts) is far smaller, and
// a runaway file (a log piped in by mistake) gets a clear error instead of minutes of parsing.
const MaxSpecBytes = 4 << 20

// LoadFile reads and strictly decodes a spec file. It does not default or validate.
func LoadFile(path string) (*Cluster, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	c, err := Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Load strictly decodes one spec document. Problems in the document's structure (unknown or
// duplicate fields, wrong types, wrong apiVersion or kind) come back together as a
// field.ErrorList inside a *DecodeError; YAML syntax errors carry their line.
func Load(data []byte) (*Cluster, error) {
	if len(data) > MaxSpecBytes {
		return nil, fmt.Errorf("the spec is larger than %d MiB: is it the right file?", MaxSpecBytes>>20)
	}
	root, err := parseSingleDocument(data)
	if err != nil {
		return nil, err
	}
	lines := map[string]int{}
	var errs field.ErrorList
	walkNode(root, nil, lines, &errs)

	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("yaml: %w", err)
	}
	jsonData, err = normalizeMirrorEndpoints(jsonData)
	if err != nil {
		return nil, err
	}

	c := &Cluster{}
	strictErrs, err := sigsjson.UnmarshalStrict(jsonData, c)
	if err != nil {
		errs = append(errs, typeError(err))
		return nil, &DecodeError{Errors: errs, lines: lines}
	}
	for _, se := range strictErrs {
		var fe sigsjson.FieldError
		if !errors.As(se, &fe) {
			errs = append(errs, field.InternalError(nil, se))
			continue
		}
		p := fe.FieldPath()
		if strings.HasPrefix(se.Error(), "duplicate field") {
			// Already reported by walkNode with its line.
			continue
		}
		errs = append(errs, &field.Error{Type: field.ErrorTypeNotSupported, Field: p, Detail: "unknown field"})
	}
	if c.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{APIVersion}))
	}
	if c.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{Kind}))
	}
	if len(errs) > 0 {
		return nil, &DecodeError{Errors: errs, lines: lines}
	}
	return c, nil
}

// DecodeError lists every structural problem of a spec document.
type DecodeError struct {
	Errors field.ErrorList
	lines  map[string]int
}

func (e *DecodeError) Error() string {
	msgs := make([]string, 0, len(e.Errors))
	for _, fe := range e.Errors {
		msgs = append(msgs, e.Format(fe))
	}
	return strings.Join(msgs, "\n")
}

// Format renders one problem with the line its field is on, when known.
func (e *DecodeError) Format(fe *field.Error) string {
	switch fe.Type {
	case field.ErrorTypeDuplicate, field.ErrorTypeTypeInvalid:
		// Their detail carries the whole story (and duplicates their own line).
		return fe.Field + ": " + fe.Detail
	}
	msg := fe.Error()
	if fe.Type == field.ErrorTypeNotSupported && fe.Detail == "unknown field" {
		msg = fe.Field + ": unknown field"
	}
	if l, ok := e.lines[fe.Field]; ok {
		return fmt.Sprintf("%s (line %d)", msg, l)
	}
	return msg
}

// parseSingleDocument parses YAML into a node tree and rejects empty input and multiple documents.
func parseSingleDocument(data []byte) (*yamlv3.Node, error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	var doc yamlv3.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("spec is empty")
		}
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yamlv3.Node
	if err := dec.Decode(&extra); err == nil && !emptyDocument(&extra) {
		return nil, fmt.Errorf("line %d: a spec file holds exactly one document; found another", extra.Line)
	} else if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yamlv3.MappingNode {
		return nil, fmt.Errorf("line %d: the spec must be a mapping with apiVersion, kind, metadata and spec", doc.Line)
	}
	return doc.Content[0], nil
}

// emptyDocument is a document with no content, such as a trailing "---".
func emptyDocument(d *yamlv3.Node) bool {
	if len(d.Content) == 0 {
		return true
	}
	c := d.Content[0]
	return len(d.Content) == 1 && c.Kind == yamlv3.ScalarNode && c.Tag == "!!null"
}

// walkNode records the line of every field path and reports duplicate mapping keys with their path.
func walkNode(n *yamlv3.Node, path *field.Path, lines map[string]int, errs *field.ErrorList) {
	switch n.Kind {
	case yamlv3.DocumentNode:
		for _, c := range n.Content {
			walkNode(c, path, lines, errs)
		}
	case yamlv3.AliasNode:
		// Aliases repeat content already walked at the anchor.
	case yamlv3.MappingNode:
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			child := childPath(path, k.Value)
			if first, dup := seen[k.Value]; dup {
				*errs = append(*errs, &field.Error{Type: field.ErrorTypeDuplicate, Field: child.String(),
					Detail: fmt.Sprintf("duplicate field (line %d; first at line %d)", k.Line, first)})
				continue
			}
			seen[k.Value] = k.Line
			lines[child.String()] = k.Line
			walkNode(v, child, lines, errs)
		}
	case yamlv3.SequenceNode:
		for i, c := range n.Content {
			var child *field.Path
			if path == nil {
				child = field.NewPath(fmt.Sprintf("[%d]", i))
			} else {
				child = path.Index(i)
			}
			lines[child.String()] = c.Line
			walkNode(c, child, lines, errs)
		}
	}
}

func childPath(p *field.Path, key string) *field.Path {
	if p == nil {
		return field.NewPath(key)
	}
	// Map keys that are not identifiers (registry hosts, label keys) are shown as [key].
	if strings.ContainsAny(key, "./[] ") {
		return p.Key(key)
	}
	return p.Child(key)
}

var typeErrorRE = regexp.MustCompile(`cannot unmarshal (\w+) into Go struct field [A-Za-z0-9_]+\.(\S+) of type (\S+)`)

// typeError turns the JSON decoder's type mismatch into a field error on the document's path.
func typeError(err error) *field.Error {
	if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
		return &field.Error{Type: field.ErrorTypeTypeInvalid, Field: m[2], Detail: fmt.Sprintf("wrong type: a %s where %s was expected", m[1], goTypeName(m[3]))}
	}
	return &field.Error{Type: field.ErrorTypeTypeInvalid, Field: "spec", Detail: strings.TrimPrefix(err.Error(), "json: ")}
}

func goTypeName(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a number"
	case t == "string" || strings.HasSuffix(t, "Type") || strings.HasSuffix(t, "Name") || strings.HasSuffix(t, "Source") || strings.HasSuffix(t, "Policy") || strings.HasSuffix(t, "Plugin") || t == "v1alpha1.Role":
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	}
	return "a " + strings.TrimPrefix(t, "v1alpha1.")
}

// normalizeMirrorEndpoints rewrites the short form of a mirror endpoint (a URL string) into the
// object form, so the strict decoder sees one shape and still reports unknown fields in objects.
func normalizeMirrorEndpoints(data []byte) ([]byte, error) {
	var doc map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		// Not an object at the top: the strict decoder reports it with better context.
		return data, nil
	}
	spec, _ := doc["spec"].(map[string]any)
	images, _ := spec["images"].(map[string]any)
	mirrors, _ := images["mirrors"].(map[string]any)
	if mirrors == nil {
		return data, nil
	}
	for reg, eps := range mirrors {
		list, ok := eps.([]any)
		if !ok {
			continue
		}
		for i, ep := range list {
			if s, ok := ep.(string); ok {
				list[i] = map[string]any{"url": s}
			}
		}
		mirrors[reg] = list
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("normalize images.mirrors: %w", err)
	}
	return out, nil
}
