package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// racePkgs returns the packages the Makefile's RACE_PKGS names, as paths
// relative to the module root ("engine", "tokenizer/template").
func racePkgs(t *testing.T, root string) []string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mk), "\n") {
		name, list, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(name) != "RACE_PKGS" {
			continue
		}
		var pkgs []string
		for _, p := range strings.Fields(list) {
			pkgs = append(pkgs, strings.TrimPrefix(p, "./"))
		}
		return pkgs
	}
	t.Fatal("Makefile has no RACE_PKGS line")
	return nil
}

// TestRaceCoversConcurrentTests: every package whose tests start
// goroutines runs under `make test`'s race detector, so that a lost lock
// or sync.Once in it is caught.
func TestRaceCoversConcurrentTests(t *testing.T) {
	root := moduleRoot(t)
	race := racePkgs(t, root)
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		spawns := false
		ast.Inspect(f, func(n ast.Node) bool {
			if _, ok := n.(*ast.GoStmt); ok {
				spawns = true
			}
			return !spawns
		})
		dir, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		dir = filepath.ToSlash(dir)
		if spawns && !slices.Contains(race, dir) {
			t.Errorf("%s starts goroutines, but %s is not in the Makefile's RACE_PKGS", filepath.ToSlash(path[len(root)+1:]), dir)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
