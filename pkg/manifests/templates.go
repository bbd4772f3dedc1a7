package manifests

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
)

//go:embed templates
var templateFS embed.FS

// templateFuncs quote values the safe way for each format: JSON strings are valid YAML and TOML
// basic strings, so no value can break out of its field.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"quote": func(s string) (string, error) { return jsonString(s) },
		"toml":  func(s string) (string, error) { return jsonString(s) },
		"json": func(v any) (string, error) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			err := enc.Encode(v)
			return strings.TrimSuffix(buf.String(), "\n"), err
		},
	}
}

// jsonString quotes s as a JSON string without HTML escaping (<redacted> stays readable).
func jsonString(s string) (string, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// render executes one embedded template with its data.
func render(name string, data any) ([]byte, error) {
	t, err := template.New(name).Funcs(templateFuncs()).Option("missingkey=error").ParseFS(templateFS, "templates/"+name)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return buf.Bytes(), nil
}
