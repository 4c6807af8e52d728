// Renders deploy/helm/billhub's templates the way `helm template` does for the functions the
// chart uses (Go's text/template plus Helm's quote, required, default and sha256sum), so the
// tests can parse what Kubernetes would receive without a helm binary or a network.
// Usage: go run render_chart.go TEMPLATES_DIR < context.json   (context: Values, Release, Chart)
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"text/template"
)

func main() {
	var context map[string]interface{}
	decoder := json.NewDecoder(os.Stdin)
	decoder.UseNumber()
	if err := decoder.Decode(&context); err != nil {
		fail(err)
	}
	funcs := template.FuncMap{
		"quote": func(v interface{}) string { return strconv.Quote(fmt.Sprint(v)) },
		"required": func(message string, v interface{}) (interface{}, error) {
			if v == nil || v == "" {
				return nil, errors.New(message)
			}
			return v, nil
		},
		"default": func(fallback interface{}, v interface{}) interface{} {
			if v == nil || v == "" {
				return fallback
			}
			return v
		},
		"sha256sum": func(v interface{}) string {
			sum := sha256.Sum256([]byte(fmt.Sprint(v)))
			return hex.EncodeToString(sum[:])
		},
	}
	paths, err := filepath.Glob(filepath.Join(os.Args[1], "*.yaml"))
	if err != nil {
		fail(err)
	}
	sort.Strings(paths)
	for _, path := range paths {
		text, err := os.ReadFile(path)
		if err != nil {
			fail(err)
		}
		tmpl, err := template.New(filepath.Base(path)).Funcs(funcs).Option("missingkey=error").Parse(string(text))
		if err != nil {
			fail(err)
		}
		fmt.Printf("---\n# Source: %s\n", filepath.Base(path))
		if err := tmpl.Execute(os.Stdout, context); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
