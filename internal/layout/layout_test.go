// Package layout holds the test that enforces the import rules of
// docs/ARCHITECTURE.md.
package layout

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/sluice-llm/sluice"

// allowed lists, per package, the module packages it may import directly
// (besides the standard library and third-party modules), as the package
// table of docs/ARCHITECTURE.md states them (readAllowed). internal/testenv
// is test-only and is allowed everywhere. A package missing from the table
// fails the test, so every new package takes a deliberate place in the
// layout.
var allowed map[string][]string

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
	allowed = readAllowed(t)
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
			t.Errorf("package %s is not in the layout table (docs/ARCHITECTURE.md); add it with what it owns and its allowed imports", pkg)
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
				t.Errorf("%s imports %s, which docs/ARCHITECTURE.md does not allow (allowed: %v)", pkg, dep, allow)
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
					t.Errorf("%s depends (transitively) on %s; docs/ARCHITECTURE.md forbids it", pkg, dep)
				}
			}
		}
	}
}

// TestTableCoversDesign keeps the table honest: every package the design
// names is in it.
func TestTableCoversDesign(t *testing.T) {
	allowed := readAllowed(t)
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

// readAllowed parses the package table between the layout markers of
// docs/ARCHITECTURE.md: rows "| `pkg` | owns | `a`, `b` |", where "—"
// means no module imports and "`*`" any.
func readAllowed(t *testing.T) map[string][]string {
	t.Helper()
	path := filepath.Join(moduleRoot(t), "docs", "ARCHITECTURE.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the layout table lives in docs/ARCHITECTURE.md: %v", err)
	}
	_, rest, ok := strings.Cut(string(data), "<!-- layout:begin -->")
	body, _, ok2 := strings.Cut(rest, "<!-- layout:end -->")
	if !ok || !ok2 {
		t.Fatalf("%s: no <!-- layout:begin --> ... <!-- layout:end --> table", path)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(body, "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 3 {
			continue
		}
		pkg := strings.Trim(strings.TrimSpace(cells[0]), "`")
		if pkg == "package" || strings.HasPrefix(pkg, "---") {
			continue
		}
		if _, dup := out[pkg]; dup {
			t.Fatalf("%s: package %s is listed twice", path, pkg)
		}
		imports := []string{}
		for _, imp := range strings.Split(cells[2], ",") {
			imp = strings.Trim(strings.TrimSpace(imp), "`")
			if imp != "" && imp != "—" {
				imports = append(imports, imp)
			}
		}
		out[pkg] = imports
	}
	if len(out) == 0 {
		t.Fatalf("%s: the layout table is empty", path)
	}
	return out
}
