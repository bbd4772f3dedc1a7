package manifests

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
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
		b, err := json.Marshal(v)
		return string(b), err
	},
	}
}

func jsonString(s string) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	// json.Marshal escapes <, > and & for HTML; TOML and YAML read the escapes fine, but they are
	// ugly in files people read.
	b = bytes.ReplaceAll(b, []byte(`\u003c`), []byte("<"))
	b = bytes.ReplaceAll(b, []byte(`\u003e`), []byte(">"))
	b = bytes.ReplaceAll(b, []byte(`\u0026`), []byte("&"))
	return string(b), nil
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
