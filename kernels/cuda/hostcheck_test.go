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
	"testing"

	"github.com/sluice-llm/sluice/quant"
)

// TestWeightFormatsOnHost compiles quant.cuh's dequantizers for the host
// with a C++ compiler and checks them against quant.Dequantize for every
// supported weight format, so the bit layouts are proven without a GPU.
func TestWeightFormatsOnHost(t *testing.T) {
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
	bin := filepath.Join(t.TempDir(), "deq_host")
	if out, err := exec.Command(cxx, "-O1", "-std=c++17", "-Wall", "-Werror", "-Wno-unknown-pragmas", "-o", bin, "testdata/deq_host.cpp").CombinedOutput(); err != nil {
		t.Fatalf("compiling the host harness: %v\n%s", err, out)
	}
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
