package quant_test

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/quant"
)

// The synth-* models in ../shared/models are the same random F32 tensors
// written by llama.cpp in every type (llama-quantize without an imatrix), so
// they check this package against llama.cpp itself: our reference quantizers
// must reproduce llama.cpp's bytes, and our dequantizers must land within the
// type's error of the F32 original.

var synthFiles = map[string][]string{
	"llama": {"f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"},
	"qwen2": {"f16", "q8_0", "q4_0", "q4_k_m", "q6_k"},
}

// fileErrorBound is the largest accepted RMS error of a dequantized tensor
// relative to the RMS of the F32 original, per tensor type. The measured
// values are logged by TestDequantizeSynthFiles.
var fileErrorBound = map[quant.Type]float64{
	quant.F32:  0,
	quant.F16:  0.0004,
	quant.BF16: 0.003,
	quant.Q8_0: 0.006,
	quant.Q6_K: 0.025,
	quant.Q5_0: 0.05,
	quant.Q5_1: 0.05,
	quant.Q5_K: 0.04,
	quant.Q4_0: 0.11,
	quant.Q4_1: 0.1,
	quant.Q4_K: 0.08,
	quant.Q3_K: 0.2,
	quant.Q2_K: 0.4,
}

type tensor struct {
	typ  quant.Type
	data []byte
}

// readTensors returns every tensor of a model file by name, with its data
// copied out of the mapping.
func readTensors(t *testing.T, name string) map[string]tensor {
	t.Helper()
	f, err := gguf.Open(testenv.Shared(t, "models", name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer f.Close()
	out := make(map[string]tensor, len(f.Tensors))
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		out[ti.Name] = tensor{ti.Type, append([]byte(nil), f.TensorData(ti)...)}
	}
	return out
}

// readF32 returns the float32 tensors of the family's F32 model.
func readF32(t *testing.T, family string) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for name, ts := range readTensors(t, "synth-"+family+"-f32.gguf") {
		if ts.typ != quant.F32 {
			t.Fatalf("%s in the F32 model has type %v", name, ts.typ)
		}
		x := make([]float32, len(ts.data)/4)
		if err := quant.Dequantize(quant.F32, ts.data, x); err != nil {
			t.Fatal(err)
		}
		out[name] = x
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// TestQuantizeMatchesLlamaCpp quantizes every F32 tensor to the type the
// same tensor has in each llama.cpp-written file and requires identical
// bytes.
func TestQuantizeMatchesLlamaCpp(t *testing.T) {
	for _, family := range []string{"llama", "qwen2"} {
		ref := readF32(t, family)
		for _, ftype := range synthFiles[family] {
			file := fmt.Sprintf("synth-%s-%s.gguf", family, ftype)
			got := readTensors(t, file)
			perType := map[quant.Type][2]int{} // exact tensors, all tensors
			for _, name := range sortedNames(got) {
				ts := got[name]
				x, ok := ref[name]
				if !ok {
					t.Errorf("%s: tensor %s is not in the F32 model", file, name)
					continue
				}
				if ts.typ == quant.F32 {
					continue
				}
				if !quant.CanQuantize(ts.typ) {
					t.Errorf("%s: %s has type %v, which has no quantizer", file, name, ts.typ)
					continue
				}
				mine := make([]byte, len(ts.data))
				if err := quant.Quantize(ts.typ, x, mine); err != nil {
					t.Errorf("%s: %s: %v", file, name, err)
					continue
				}
				c := perType[ts.typ]
				c[1]++
				if string(mine) == string(ts.data) {
					c[0]++
				} else {
					bb := ts.typ.BlockBytes()
					diff := 0
					for i := 0; i < len(mine); i += bb {
						if string(mine[i:i+bb]) != string(ts.data[i:i+bb]) {
							diff++
						}
					}
					t.Errorf("%s: %s (%v): %d of %d blocks differ from llama.cpp's", file, name, ts.typ, diff, len(mine)/bb)
				}
				perType[ts.typ] = c
			}
			var parts []string
			for typ, c := range perType {
				parts = append(parts, fmt.Sprintf("%v %d/%d", typ, c[0], c[1]))
			}
			sort.Strings(parts)
			t.Logf("%-26s bit-exact tensors: %s", file, strings.Join(parts, ", "))
		}
	}
}

// TestDequantizeSynthFiles dequantizes every tensor of every synth model and
// compares it with the F32 original.
func TestDequantizeSynthFiles(t *testing.T) {
	for _, family := range []string{"llama", "qwen2"} {
		ref := readF32(t, family)
		for _, ftype := range append([]string{"f32"}, synthFiles[family]...) {
			file := fmt.Sprintf("synth-%s-%s.gguf", family, ftype)
			worst := map[quant.Type]float64{}
			for name, ts := range readTensors(t, file) {
				x := ref[name]
				y := make([]float32, len(x))
				if err := quant.Dequantize(ts.typ, ts.data, y); err != nil {
					t.Errorf("%s: %s: %v", file, name, err)
					continue
				}
				e := relRMS(x, y)
				worst[ts.typ] = max(worst[ts.typ], e)
				bound, ok := fileErrorBound[ts.typ]
				if !ok {
					t.Errorf("%s: %s: no error bound for type %v", file, name, ts.typ)
				} else if e > bound {
					t.Errorf("%s: %s (%v): relative RMS error %.5f exceeds %.4f", file, name, ts.typ, e, bound)
				}
			}
			var parts []string
			for typ, e := range worst {
				parts = append(parts, fmt.Sprintf("%v %.5f", typ, e))
			}
			sort.Strings(parts)
			t.Logf("%-26s worst relative RMS error: %s", file, strings.Join(parts, ", "))
		}
	}
}

func relRMS(x, y []float32) float64 {
	var se, sx float64
	for i := range x {
		d := float64(y[i]) - float64(x[i])
		se += d * d
		sx += float64(x[i]) * float64(x[i])
	}
	if sx == 0 {
		return math.Sqrt(se)
	}
	return math.Sqrt(se / sx)
}
