package cuda

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"
)

// The kernels, one .cu file per op family, compiled by NVRTC at run time.
//
//go:embed cu/*.cu cu/*.cuh
var cuFS embed.FS

// module is one compilation unit: a .cu file, the headers prepended to it
// and the kernels (extern "C" entry points) it defines.
type module struct {
	File    string
	Headers []string
	Kernels []string
}

// weightNames are the kernel suffixes of the weight formats, in the order
// of FOR_EACH_WEIGHT in quant.cuh.
var weightNames = []string{"f32", "f16", "bf16", "q8_0", "q4_0", "q5_0", "q4_k", "q5_k", "q6_k",
	"q4_1", "q5_1", "q2_k", "q3_k"}

func perWeight(prefix string) []string {
	out := make([]string, len(weightNames))
	for i, w := range weightNames {
		out[i] = prefix + w
	}
	return out
}

// modules lists every compilation unit. The NVRTC test compiles each one
// and checks that its kernels are present.
var modules = []module{
	{"matvec.cu", []string{"common.cuh", "quant.cuh"}, perWeight("matvec_")},
	{"matmul.cu", []string{"common.cuh", "quant.cuh"}, perWeight("matmul_")},
	{"get_rows.cu", []string{"common.cuh", "quant.cuh"}, perWeight("get_rows_")},
	{"rmsnorm.cu", []string{"common.cuh"}, []string{"rmsnorm"}},
	{"elementwise.cu", []string{"common.cuh"}, []string{"add", "add_bias", "scale", "silu_mul"}},
	{"rope.cu", []string{"common.cuh"}, []string{"rope"}},
	{"softmax.cu", []string{"common.cuh"}, []string{"softmax"}},
	{"argmax.cu", []string{"common.cuh"}, []string{"argmax"}},
	{"kv_store.cu", []string{"common.cuh"}, []string{"kv_store_f32", "kv_store_f16"}},
	{"attention.cu", []string{"common.cuh"}, []string{
		"attn_decode_f32", "attn_decode_f16", "attn_prefill_f32", "attn_prefill_f16", "attn_combine"}},
}

// Source returns the full text NVRTC compiles for a module: its headers,
// then the file, with #line directives so messages name the right file.
func (m module) Source() (string, error) {
	var b strings.Builder
	for _, f := range append(append([]string(nil), m.Headers...), m.File) {
		data, err := cuFS.ReadFile("cu/" + f)
		if err != nil {
			return "", fmt.Errorf("cuda: kernel source %s: %w", f, err)
		}
		fmt.Fprintf(&b, "#line 1 %q\n%s\n", f, data)
	}
	return b.String(), nil
}

// sourceHash identifies a module's source text; it keys the disk cache.
func sourceHash(src string) string {
	h := sha256.Sum256([]byte(src))
	return hex.EncodeToString(h[:12])
}
