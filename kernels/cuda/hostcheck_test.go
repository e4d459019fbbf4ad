package cuda

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/quant"
)

// hostBinary compiles a host harness from testdata with $CXX (default g++)
// and returns the binary's path. Under CI a missing compiler fails the test.
func hostBinary(t *testing.T, src string, flags ...string) string {
	t.Helper()
	cxx := os.Getenv("CXX")
	if cxx == "" {
		cxx = "g++"
	}
	if _, err := exec.LookPath(cxx); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("a C++ compiler is required under CI (.ci/run installs g++): %v", err)
		}
		t.Skipf("no C++ compiler (%s) here: %v", cxx, err)
	}
	bin := filepath.Join(t.TempDir(), strings.TrimSuffix(src, ".cpp"))
	args := append([]string{"-O1", "-Wall", "-Werror", "-Wno-unknown-pragmas", "-o", bin}, flags...)
	if out, err := exec.Command(cxx, append(args, "testdata/"+src)...).CombinedOutput(); err != nil {
		t.Fatalf("compiling %s: %v\n%s", src, err, out)
	}
	return bin
}

// TestKernelsOnHost runs every kernel on the host (simt_host.cpp: one OS
// thread per CUDA thread, barriers for __syncthreads and warp shuffles)
// against plain references: indexing, tiling, reductions, split-K and the
// online softmax are checked without a GPU.
func TestKernelsOnHost(t *testing.T) {
	bin := hostBinary(t, "simt_host.cpp", "-std=c++20", "-pthread")
	out, err := exec.Command(bin).CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("kernels on the host: %v", err)
	}
}

// TestWeightFormatsOnHost compiles quant.cuh's dequantizers for the host
// with a C++ compiler and checks them against quant.Dequantize for every
// supported weight format, so the bit layouts are proven without a GPU.
func TestWeightFormatsOnHost(t *testing.T) {
	bin := hostBinary(t, "deq_host.cpp", "-std=c++17")
	const rows, cols = 3, 512
	rng := rand.New(rand.NewSource(1))
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
	}
	for i, typ := range supported {
		rb, err := quant.RowBytes(typ, cols)
		if err != nil {
			t.Fatal(err)
		}
		raw := make([]byte, rows*rb)
		if err := quant.Quantize(typ, src, raw); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		want := make([]float32, rows*cols)
		if err := quant.Dequantize(typ, raw, want); err != nil {
			t.Fatalf("%v: %v", typ, err)
		}
		cmd := exec.Command(bin, weightNames[i], strconv.Itoa(rows), strconv.Itoa(cols), strconv.Itoa(rb))
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.Output()
		if err != nil || len(out) != 4*rows*cols {
			t.Errorf("%v: harness: %v, %d bytes", typ, err, len(out))
			continue
		}
		for k := range want {
			got := math.Float32frombits(binary.LittleEndian.Uint32(out[4*k:]))
			if got != want[k] && math.Abs(float64(got-want[k])) > 1e-6*math.Max(1, math.Abs(float64(want[k]))) {
				t.Errorf("%v: element %d (row %d, col %d) = %v, quant says %v", typ, k, k/cols, k%cols, got, want[k])
				break
			}
		}
	}
}
