// Package layout holds the test that enforces DESIGN.md's import rules.
package layout

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/sluice-llm/sluice"

// allowed lists, per package, the module packages it may import directly
// (besides the standard library and third-party modules). A package's own
// subpackages are listed explicitly. internal/testenv is test-only and is
// allowed everywhere. A package missing from this table fails the test, so
// every new package takes a deliberate place in the layout.
var allowed = map[string][]string{
	"quant":              {},
	"gguf":               {"quant"},
	"tokenizer":          {"gguf", "tokenizer/template"},
	"tokenizer/template": {},
	"kernels":            {"quant"},
	"kernels/cpu":        {"kernels", "quant"},
	"kernels/cuda":       {"kernels", "quant"},
	"model":              {"kernels", "gguf", "quant"},
	"kvcache":            {},
	"scheduler":          {"kvcache"},
	"sample":             {},
	"spec":               {"model", "sample"},
	"engine":             {"quant", "gguf", "tokenizer", "tokenizer/template", "kernels", "kernels/cpu", "kernels/cuda", "model", "kvcache", "scheduler", "sample", "spec"},
	"server":             {"engine", "tokenizer", "tokenizer/template", "api", "api/sluice/v1"},
	"api":                {},
	"api/sluice/v1":      {},
	"bench":              {"engine", "server", "gguf", "synth", "model", "kernels", "kernels/cpu"},
	"store":              {"gguf"},
	"synth":              {"gguf", "quant", "tokenizer"},
	"cmd/sluice":         {"*"},
	"examples/embed":     {"engine"},
	"internal/testenv":   {},
	"internal/layout":    {},
	"internal/mutate":    {},
}

// never lists transitive dependencies that must not appear, whatever path
// leads to them.
var never = map[string][]string{
	"scheduler": {"kernels", "model"},
	"kvcache":   {"kernels", "model"},
	"model":     {"kvcache", "scheduler", "engine"},
	"kernels":   {"model"},
}

func moduleRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// goList runs `go list` with the given format over ./... and returns one
// line per package.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = moduleRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

func rel(p string) (string, bool) {
	if p == module {
		return ".", true
	}
	if strings.HasPrefix(p, module+"/") {
		return strings.TrimPrefix(p, module+"/"), true
	}
	return "", false
}

func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("go tool not found: %v", err)
	}
	for _, line := range goList(t, "-f", "{{.ImportPath}}|{{join .Imports \",\"}}", "./...") {
		path, imports, _ := strings.Cut(line, "|")
		pkg, ok := rel(path)
		if !ok {
			continue
		}
		allow, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not in the layout table (internal/layout); add it with its allowed imports (and document it in README.md)", pkg)
			continue
		}
		if len(allow) == 1 && allow[0] == "*" {
			continue
		}
		ok2 := map[string]bool{"internal/testenv": true}
		for _, a := range allow {
			ok2[a] = true
		}
		for _, imp := range strings.Split(imports, ",") {
			dep, inModule := rel(imp)
			if !inModule || imp == "" {
				continue
			}
			if !ok2[dep] {
				t.Errorf("%s imports %s, which DESIGN.md does not allow (allowed: %v)", pkg, dep, allow)
			}
		}
	}
	for _, line := range goList(t, "-deps=false", "-f", "{{.ImportPath}}|{{join .Deps \",\"}}", "./...") {
		path, deps, _ := strings.Cut(line, "|")
		pkg, _ := rel(path)
		bad := never[pkg]
		if len(bad) == 0 {
			continue
		}
		for _, d := range strings.Split(deps, ",") {
			dep, inModule := rel(d)
			if !inModule {
				continue
			}
			for _, b := range bad {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s depends (transitively) on %s; DESIGN.md forbids it", pkg, dep)
				}
			}
		}
	}
}

// TestTableCoversDesign keeps the table honest: every package DESIGN.md
// names is in it.
func TestTableCoversDesign(t *testing.T) {
	want := []string{"gguf", "quant", "tokenizer", "kernels", "kernels/cpu", "kernels/cuda", "model", "kvcache", "scheduler", "sample", "spec", "engine", "server", "api", "bench", "cmd/sluice"}
	var missing []string
	for _, w := range want {
		if _, ok := allowed[w]; !ok {
			missing = append(missing, w)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("layout table lacks %v", missing)
	}
}
