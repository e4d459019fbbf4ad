//go:build perfgate

package perf

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestGateCatchesSlowedKernel builds sluice with the perfslow tag, which
// makes the AVX2 Q4_0 dot product do its work twice, and checks that the
// gate fails on the committed baselines and names the Q4_0 rows. It needs
// valgrind and a Go toolchain; `make perfcheck` runs it (build tag
// perfgate) after the gate itself.
func TestGateCatchesSlowedKernel(t *testing.T) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		t.Fatalf("the gate's test needs valgrind (Debian: apt-get install valgrind): %v", err)
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
	dir := t.TempDir()
	exe := filepath.Join(dir, "sluice-perfslow")
	build := exec.Command("go", "build", "-tags", "perfslow", "-o", exe, "./cmd/sluice")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags perfslow: %v\n%s", err, out)
	}
	run := exec.Command(exe, "bench", "perfcheck", "-q", "--only", "tiny-llama-Q4_0",
		"--baseline", filepath.Join(root, "bench", "baseline.json"), "--work", filepath.Join(dir, "work"))
	out, err := run.CombinedOutput()
	if err == nil {
		t.Fatalf("the gate passed a build with a slowed Q4_0 kernel:\n%s", out)
	}
	if _, ok := err.(*exec.ExitError); !ok {
		t.Fatalf("running the gate: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "| tiny-llama-Q4_0/") && strings.HasSuffix(l, "| "+StatusRegressed+" |") {
			t.Logf("gate output:\n%s", out)
			return
		}
	}
	t.Fatalf("the gate failed, but without a REGRESSED tiny-llama-Q4_0 row:\n%s", out)
}
