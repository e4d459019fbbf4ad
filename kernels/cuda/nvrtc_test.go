package cuda

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// testArchs are the architectures every kernel must compile for cleanly.
var testArchs = []string{"sm_80", "sm_89", "sm_90"}

// findNVRTC locates libnvrtc for the compile tests: $SLUICE_NVRTC, else the
// pip wheel nvidia-cuda-nvrtc-cu12 under a Python site-packages directory,
// else the standard library names. Under CI a missing NVRTC fails the test.
func openTestNVRTC(t *testing.T) *nvrtc {
	t.Helper()
	if os.Getenv(EnvNVRTC) == "" {
		if p := wheelNVRTC(); p != "" {
			t.Setenv(EnvNVRTC, p)
		}
	}
	l, name, err := loadNVRTC(dlOpen)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NVRTC is required under CI (.ci/run installs it): %v", err)
		}
		t.Skipf("no NVRTC here: %v", err)
	}
	t.Cleanup(l.Close)
	n, err := newNVRTC(l)
	if err != nil {
		t.Fatal(err)
	}
	maj, min, err := n.Version()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NVRTC %d.%d from %s", maj, min, name)
	return n
}

// wheelNVRTC searches the usual site-packages roots for the wheel's library.
func wheelNVRTC() string {
	var roots []string
	if home, err := os.UserHomeDir(); err == nil {
		roots = append(roots, filepath.Join(home, ".local/lib/python3*/site-packages"))
	}
	roots = append(roots, "/usr/local/lib/python3*/dist-packages", "/usr/lib/python3/dist-packages",
		"/usr/local/lib/python3*/site-packages", "/root/.pyenv/versions/*/lib/python3*/site-packages")
	for _, r := range roots {
		m, _ := filepath.Glob(filepath.Join(r, "nvidia/cuda_nvrtc/lib/libnvrtc.so.1[23]"))
		if len(m) > 0 {
			return m[len(m)-1]
		}
	}
	return ""
}

var ptxasStats = regexp.MustCompile(`Function properties for (\w+)[\s\S]*?(\d+) bytes spill stores, (\d+) bytes spill loads[\s\S]*?Used (\d+) registers`)

// TestNVRTCCompilesEveryKernel compiles every module for every test
// architecture with the real NVRTC and fails on any error or warning, on a
// missing kernel, and on register spills. Compilations run in parallel
// (NVRTC is thread-safe across programs).
func TestNVRTCCompilesEveryKernel(t *testing.T) {
	n := openTestNVRTC(t)
	for _, m := range modules {
		src, err := m.Source()
		if err != nil {
			t.Fatal(err)
		}
		for _, arch := range testArchs {
			t.Run(m.File+"/"+arch, func(t *testing.T) {
				t.Parallel()
				out, err := n.Compile(src, m.File, arch, true)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(out.Log, "warning") || strings.Contains(out.Log, "error") {
					t.Errorf("compiler messages:\n%s", out.Log)
				}
				seen := checkSpills(t, out.Log)
				for _, k := range m.Kernels {
					if !bytes.Contains(out.Image, []byte(k+"\x00")) {
						t.Errorf("kernel %s missing from the cubin", k)
					}
					if !seen[k] {
						t.Errorf("no ptxas report for kernel %s in the log", k)
					}
				}
			})
		}
	}
}

// checkSpills reads ptxas -v output: one report per kernel, none spilling.
// It returns the kernels reported.
func checkSpills(t *testing.T, log string) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	for _, s := range ptxasStats.FindAllStringSubmatch(log, -1) {
		seen[s[1]] = true
		t.Logf("%s: %s registers, spill stores %s B, loads %s B", s[1], s[4], s[2], s[3])
		if s[2] != "0" || s[3] != "0" {
			t.Errorf("kernel %s spills registers (%s B stores, %s B loads)", s[1], s[2], s[3])
		}
	}
	return seen
}

// TestNVRTCReportsWarnings makes sure the compile test can see a warning:
// an unused variable must show up in the log it checks.
func TestNVRTCReportsWarnings(t *testing.T) {
	n := openTestNVRTC(t)
	out, err := n.Compile("extern \"C\" __global__ void k(int *p) { int unused; *p = 1; }", "warn.cu", "sm_80", false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Log, "warning") {
		t.Fatalf("no warning in the log for an unused variable: %q", out.Log)
	}
	if _, err := n.Compile("extern \"C\" __global__ void k() { undeclared(); }", "bad.cu", "sm_80", false); err == nil ||
		!strings.Contains(err.Error(), "undeclared") {
		t.Fatalf("compiling bad code: error %v, want one quoting the compiler log", err)
	}
}
