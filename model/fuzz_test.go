package model

import (
	"bytes"
	"slices"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/quant"
)

// fuzzKeys are the hyperparameter keys FuzzLoad rewrites (under the
// file's architecture prefix unless they start with "tokenizer.").
var fuzzKeys = []string{
	"embedding_length",
	"block_count",
	"attention.head_count",
	"attention.head_count_kv",
	"feed_forward_length",
	"attention.key_length",
	"attention.value_length",
	"rope.dimension_count",
	"rope.freq_base",
	"attention.layer_norm_rms_epsilon",
	"attention.scale",
	"rope.scaling.factor",
	"vocab_size",
	"context_length",
	"tokenizer.ggml.bos_token_id",
	"tokenizer.ggml.eos_token_id",
}

// fuzzTypes are the tensor types FuzzLoad may give a tensor.
var fuzzTypes = []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q4_K, quant.Q6_K}

// fuzzValue turns a fuzzed number into a metadata value of a type chosen by
// sel: unsigned, signed, float, a per-layer array, or a string.
func fuzzValue(sel uint8, v int64) any {
	switch sel % 6 {
	case 0:
		return uint32(v)
	case 1:
		return int32(v)
	case 2:
		return float32(v) / 8
	case 3:
		return uint64(v)
	case 4:
		return []int32{int32(v), int32(v)}
	default:
		return "x"
	}
}

// FuzzLoad rewrites stories260K with altered hyperparameters and tensor
// index entries (shape, type, presence) and checks that Load either refuses
// the file with an error or returns a model whose forward pass over a few
// tokens does not panic. An out-of-bounds access in the C kernels is
// caught only under `make sanitize`, which runs these seeds (and the
// kernel tests) with AddressSanitizer and UBSan; a plain run sees it only
// if it happens to crash.
func FuzzLoad(f *testing.F) {
	src, err := gguf.Open(testenv.Shared(f, "models", "stories260K.gguf"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { src.Close() })
	be := testBackend(f)

	f.Add(uint8(255), int64(0), uint8(0), uint8(255), int64(0), uint8(0), uint8(255), uint8(0), []byte{1, 2, 3})
	f.Add(uint8(2), int64(2), uint8(0), uint8(3), int64(1), uint8(0), uint8(255), uint8(0), []byte{1, 2, 3})           // 2 heads, 1 kv head
	f.Add(uint8(5), int64(16), uint8(0), uint8(255), int64(0), uint8(0), uint8(255), uint8(0), []byte{1})              // key_length
	f.Add(uint8(7), int64(2), uint8(0), uint8(8), int64(-1), uint8(2), uint8(3), uint8(1), []byte{0, 255})             // rope dims, freq base
	f.Add(uint8(1), int64(1), uint8(0), uint8(255), int64(0), uint8(0), uint8(0), uint8(10), []byte{7, 7, 7, 7, 7, 7}) // one layer, retyped embedding
	f.Add(uint8(0), int64(32), uint8(0), uint8(255), int64(0), uint8(0), uint8(4), uint8(20), []byte{5})               // dim 32, reshaped tensor
	f.Add(uint8(14), int64(-1), uint8(0), uint8(15), int64(1<<31), uint8(0), uint8(255), uint8(0), []byte{9})          // bos/eos ids

	f.Fuzz(func(t *testing.T, k1 uint8, v1 int64, s1 uint8, k2 uint8, v2 int64, s2 uint8, tsel, tmut uint8, toks []byte) {
		arch := src.Arch()
		key := func(k uint8) string {
			if int(k) >= len(fuzzKeys) {
				return ""
			}
			if fk := fuzzKeys[k]; len(fk) > 10 && fk[:10] == "tokenizer." {
				return fk
			}
			return arch + "." + fuzzKeys[k]
		}
		edits := map[string]any{}
		if k := key(k1); k != "" {
			edits[k] = fuzzValue(s1, v1)
		}
		if k := key(k2); k != "" {
			edits[k] = fuzzValue(s2, v2)
		}

		w := gguf.NewWriter()
		for _, kv := range src.KVs {
			v := any(kv.Value)
			if e, ok := edits[kv.Key]; ok {
				v = e
				delete(edits, kv.Key)
			}
			if err := w.Set(kv.Key, v); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range edits {
				if !yield(k) {
					return
				}
			}
		}) {
			if err := w.Set(k, edits[k]); err != nil {
				t.Fatal(err)
			}
		}
		for i := range src.Tensors {
			ti := src.Tensors[i]
			dims := slices.Clone(ti.Dims)
			typ := ti.Type
			data := src.TensorData(&ti)
			if int(tsel) == i {
				switch m := tmut % 8; {
				case m == 0: // dropped
					continue
				case m == 1: // retyped, data resized to match
					typ = fuzzTypes[int(tmut/8)%len(fuzzTypes)]
				case m == 2 && len(dims) >= 2: // transposed
					dims[0], dims[1] = dims[1], dims[0]
				case m == 3: // one more row or column
					dims[int(tmut/8)%len(dims)]++
				case m == 4 && dims[len(dims)-1] > 1: // one row fewer
					dims[len(dims)-1]--
				case m == 5: // trailing unit dimension
					if len(dims) < gguf.MaxDims {
						dims = append(dims, 1)
					}
				case m == 6: // flattened
					n := uint64(1)
					for _, d := range dims {
						n *= d
					}
					dims = []uint64{n}
				}
				rb, err := quant.RowBytes(typ, int(dims[0]))
				if err != nil {
					return // the writer would refuse this shape
				}
				n := rb
				for _, d := range dims[1:] {
					n *= int(d)
				}
				nd := make([]byte, n)
				copy(nd, data)
				data = nd
			}
			if err := w.AddTensor(ti.Name, typ, dims, data); err != nil {
				return // not expressible as a file
			}
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		file, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("writer output does not parse: %v", err)
		}
		m, err := Load(file, be, Options{})
		if err != nil {
			return
		}
		defer m.Close()
		cfg := m.Config()
		if cfg.VocabSize <= 0 || cfg.Dim <= 0 || cfg.Layers <= 0 || cfg.HeadDim <= 0 {
			t.Fatalf("Load accepted config %+v", cfg)
		}
		s, err := NewSession(m, 1, 32, SessionOptions{})
		if err != nil {
			return
		}
		defer s.Close()
		if len(toks) == 0 {
			toks = []byte{1}
		}
		ids := make([]int32, 0, min(len(toks), 8))
		for _, b := range toks[:min(len(toks), 8)] {
			ids = append(ids, int32(b)%int32(cfg.VocabSize))
		}
		if _, err := s.Prefill(0, ids, 3); err != nil {
			t.Fatalf("Forward on a loaded model: %v", err)
		}
	})
}
