package synth

import (
	"fmt"
	"strings"

	"github.com/sluice-llm/sluice/quant"
)

// A FileType is a llama.cpp model file type ("Q4_K_M"): a base tensor type
// and the rules that give some tensors more bits.
type FileType struct {
	Name string     // canonical name, "Q4_K_M"
	ID   uint32     // general.file_type (llama_ftype)
	Base quant.Type // type of most 2-D weights
}

// fileTypes lists the supported file types; the order is that of the usage
// text.
var fileTypes = []FileType{
	{"F32", 0, quant.F32},
	{"F16", 1, quant.F16},
	{"BF16", 32, quant.BF16},
	{"Q8_0", 7, quant.Q8_0},
	{"Q6_K", 18, quant.Q6_K},
	{"Q5_K_M", 17, quant.Q5_K},
	{"Q5_1", 9, quant.Q5_1},
	{"Q5_0", 8, quant.Q5_0},
	{"Q4_K_M", 15, quant.Q4_K},
	{"Q4_1", 3, quant.Q4_1},
	{"Q4_0", 2, quant.Q4_0},
	{"Q3_K_M", 12, quant.Q3_K},
	{"Q2_K", 10, quant.Q2_K},
}

// typeAliases maps the names of K-quant tensor types to the file type that
// llama-quantize users mean by them.
var typeAliases = map[string]string{"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M"}

// FileTypeNames returns the supported file type names.
func FileTypeNames() []string {
	names := make([]string, len(fileTypes))
	for i, ft := range fileTypes {
		names[i] = ft.Name
	}
	return names
}

// ParseFileType maps a file type name, case-insensitive ("q4_k_m"; "Q4_K"
// means Q4_K_M, "Q5_K" Q5_K_M, "Q3_K" Q3_K_M), to its FileType. The error
// lists the supported names.
func ParseFileType(name string) (FileType, error) {
	n := strings.ToUpper(name)
	if a, ok := typeAliases[n]; ok {
		n = a
	}
	for _, ft := range fileTypes {
		if ft.Name == n {
			return ft, nil
		}
	}
	return FileType{}, fmt.Errorf("synth: unknown type %q (supported: %s; Q4_K means Q4_K_M)", name, strings.Join(FileTypeNames(), ", "))
}

// Quantized reports whether the file type is a quantized one (not F32, F16
// or BF16); only those get llama.cpp's per-tensor type choices.
func (ft FileType) Quantized() bool {
	switch ft.Base {
	case quant.F32, quant.F16, quant.BF16:
		return false
	}
	return true
}

// TensorKind says how a tensor's values are drawn.
type TensorKind int

const (
	KindWeight    TensorKind = iota // N(0, 0.02²) matrix
	KindNorm                        // RMS norm scale: 1 plus small noise
	KindBias                        // N(0, 0.02²) vector
	KindRopeFreqs                   // llama3 rope frequency factors (exact values)
)

// TensorPlan is one tensor of a dummy model.
type TensorPlan struct {
	Name string
	Dims []uint64 // ne0 first, as in GGUF
	Type quant.Type
	Kind TensorKind
}

// Rows returns the number of rows (elements over ne0).
func (tp TensorPlan) Rows() int {
	r := 1
	for _, d := range tp.Dims[1:] {
		r *= int(d)
	}
	return r
}

// Bytes returns the size of the tensor's data.
func (tp TensorPlan) Bytes() int64 {
	n, _ := quant.RowBytes(tp.Type, int(tp.Dims[0]))
	return int64(n) * int64(tp.Rows())
}

// Plan lists the tensors of a model of shape s at file type ft, in file
// order, with llama.cpp's names, dimensions and per-tensor types.
//
// Types follow llama-quantize (llama_tensor_get_type) without an imatrix:
//
//   - 1-D tensors (norms, biases, rope_freqs) are F32.
//   - F32, F16 and BF16 files keep every 2-D weight in that type.
//   - The output projection (output.weight, or token_embd.weight when the
//     embeddings are tied) is Q6_K, except in Q8_0 files (Q8_0), and Q8_0
//     when its rows are not whole 256-element super-blocks.
//   - Q4_K_M and Q5_K_M: attn_v and ffn_down are Q6_K in the layers where
//     use_more_bits(i, n) holds: the first n/8 layers, the last n/8, and
//     every third layer in between (i >= n/8 and (i-n/8)%3 == 2); this
//     is about half of them.
//   - Q3_K_M: attn_v is Q5_K in layers 0 and 1, Q4_K elsewhere; ffn_down is
//     Q5_K in the first n/16 layers, Q4_K elsewhere; attn_output is Q4_K.
//   - Fused attn_qkv (phi3) is Q4_K in Q3_K_M, Q5_K in Q4_K_M and Q6_K in
//     Q5_K_M files.
//   - Q2_K: attn_v is Q4_K when heads/KV heads >= 4, else Q3_K; ffn_down and
//     attn_output are Q3_K.
//   - A K-quant tensor whose rows are not whole super-blocks (Qwen2.5-0.5B's
//     896) falls back as in llama.cpp: Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to
//     Q8_0, Q2_K/Q3_K to IQ4_NL (which quant cannot write, so Q4_0 here),
//     and to F16 when even that does not divide the rows.
//
// The rules were checked against the files llama-quantize wrote in
// ../shared/models (synth-llama-*, synth-qwen2-*).
func Plan(s Shape, ft FileType) ([]TensorPlan, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	d, f, v := uint64(s.Dim), uint64(s.FFN), uint64(s.Vocab)
	hd := uint64(s.HeadDimension())
	q, kv := uint64(s.Heads)*hd, uint64(s.KVHeads)*hd
	n := s.Layers
	gqa := s.Heads / s.KVHeads

	var out []TensorPlan
	add := func(name string, kind TensorKind, role string, layer int, dims ...uint64) {
		tp := TensorPlan{Name: name, Dims: dims, Kind: kind, Type: quant.F32}
		if len(dims) >= 2 {
			tp.Type = tensorType(ft, role, layer, n, gqa, int(dims[0]))
		}
		out = append(out, tp)
	}
	embdRole := "token_embd"
	if s.Tied {
		embdRole = "output"
	}
	add("token_embd.weight", KindWeight, embdRole, 0, d, v)
	if s.RopeScaling != nil {
		add("rope_freqs.weight", KindRopeFreqs, "", 0, hd/2)
	}
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		if !s.PostNorms {
			add(p+"attn_norm.weight", KindNorm, "", i, d)
		}
		if s.Fused {
			add(p+"attn_qkv.weight", KindWeight, "attn_qkv", i, d, q+2*kv)
		} else {
			add(p+"attn_q.weight", KindWeight, "attn_q", i, d, q)
			add(p+"attn_k.weight", KindWeight, "attn_k", i, d, kv)
			add(p+"attn_v.weight", KindWeight, "attn_v", i, d, kv)
		}
		if s.Biases {
			add(p+"attn_q.bias", KindBias, "", i, q)
			add(p+"attn_k.bias", KindBias, "", i, kv)
			add(p+"attn_v.bias", KindBias, "", i, kv)
		}
		if s.QKNorm {
			add(p+"attn_q_norm.weight", KindNorm, "", i, hd)
			add(p+"attn_k_norm.weight", KindNorm, "", i, hd)
		}
		if s.PostNorms {
			add(p+"attn_q_norm.weight", KindNorm, "", i, q)
			add(p+"attn_k_norm.weight", KindNorm, "", i, kv)
		}
		add(p+"attn_output.weight", KindWeight, "attn_output", i, q, d)
		if s.PostNorms {
			add(p+"post_attention_norm.weight", KindNorm, "", i, d)
		} else {
			add(p+"ffn_norm.weight", KindNorm, "", i, d)
		}
		if s.Fused {
			add(p+"ffn_up.weight", KindWeight, "ffn_up", i, d, 2*f) // gate rows, then up rows
		} else {
			add(p+"ffn_gate.weight", KindWeight, "ffn_gate", i, d, f)
			add(p+"ffn_up.weight", KindWeight, "ffn_up", i, d, f)
		}
		add(p+"ffn_down.weight", KindWeight, "ffn_down", i, f, d)
		if s.PostNorms {
			add(p+"post_ffw_norm.weight", KindNorm, "", i, d)
		}
	}
	add("output_norm.weight", KindNorm, "", 0, d)
	if !s.Tied {
		add("output.weight", KindWeight, "output", 0, d, v)
	}
	return out, nil
}

// useMoreBits is llama.cpp's use_more_bits: the layers that Q4_K_M and
// Q5_K_M give Q6_K attn_v and ffn_down tensors.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// tensorType chooses the type of a 2-D tensor with the given role
// ("output", "token_embd", "attn_v", ...) in layer i of n, rows of nx
// elements.
func tensorType(ft FileType, role string, i, n, gqa, nx int) quant.Type {
	if !ft.Quantized() {
		return ft.Base
	}
	t := ft.Base
	if role == "output" {
		if nx%quant.QK_K != 0 {
			return quant.Q8_0
		}
		if t != quant.Q8_0 {
			return quant.Q6_K
		}
		return t
	}
	if role == "attn_qkv" { // fused QKV (phi3): one step up in the _M mixes
		switch ft.Name {
		case "Q3_K_M":
			t = quant.Q4_K
		case "Q4_K_M":
			t = quant.Q5_K
		case "Q5_K_M":
			t = quant.Q6_K
		}
	}
	switch ft.Name {
	case "Q4_K_M", "Q5_K_M":
		if (role == "attn_v" || role == "ffn_down") && useMoreBits(i, n) {
			t = quant.Q6_K
		}
	case "Q3_K_M":
		switch role {
		case "attn_v":
			t = quant.Q4_K
			if i < 2 {
				t = quant.Q5_K
			}
		case "ffn_down":
			t = quant.Q4_K
			if i < n/16 {
				t = quant.Q5_K
			}
		case "attn_output":
			t = quant.Q4_K
		}
	case "Q2_K":
		switch role {
		case "attn_v":
			t = quant.Q3_K
			if gqa >= 4 {
				t = quant.Q4_K
			}
		case "ffn_down", "attn_output":
			t = quant.Q3_K
		}
	}
	if t.BlockElems() == quant.QK_K && nx%quant.QK_K != 0 {
		switch t {
		case quant.Q4_K:
			t = quant.Q5_0
		case quant.Q5_K:
			t = quant.Q5_1
		case quant.Q6_K:
			t = quant.Q8_0
		default: // Q2_K, Q3_K: llama.cpp uses IQ4_NL, a 4.5-bit type like Q4_0
			t = quant.Q4_0
		}
		if nx%t.BlockElems() != 0 {
			t = quant.F16
		}
	}
	return t
}
