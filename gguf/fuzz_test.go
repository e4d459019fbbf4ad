package gguf

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-llm/sluice/quant"
)

// FuzzParse checks that Parse never panics, that every failure is a
// *FormatError of a documented kind whose offset lies inside the input, and
// that whatever parses can be written back and parses again to the same
// contents.
//
// The seeds are small complete files built with the Writer (a few hundred
// bytes each) that between them use every value type, nested arrays, a
// tokenizer-like vocabulary, several tensor types, a custom alignment and
// version 2, so mutations reach every part of the reader at thousands of
// executions per second. Whole model files would make each execution (and
// the minimization of every new input) hundreds of times slower.
func FuzzParse(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Add([]byte("GGUF"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError: %v", err, err)
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error of unknown kind: %v", err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(data)) {
				t.Fatalf("error offset %d outside the %d bytes: %v", fe.Offset, len(data), err)
			}
			_ = err.Error()
			return
		}
		exercise(t, file, data)
	})
}

// exercise calls every accessor of a parsed file and round-trips it.
func exercise(t *testing.T, f *File, data []byte) {
	if f.Size() != int64(len(data)) {
		t.Fatalf("Size %d != %d", f.Size(), len(data))
	}
	if f.Alignment == 0 || f.Alignment&(f.Alignment-1) != 0 {
		t.Fatalf("alignment %d", f.Alignment)
	}
	for _, kv := range f.KVs {
		v := kv.Value
		_ = v.String()
		_ = v.Any()
		v.Uint64()
		v.Int64()
		v.Float64()
		v.Str()
		v.Bool()
		v.Strings()
		v.Float32s()
		v.Int32s()
		v.Uint32s()
		if _, items, ok := v.Array(); ok && len(items) != v.Len() {
			t.Fatalf("%s: %d items, Len %d", kv.Key, len(items), v.Len())
		}
		if got, ok := f.Get(kv.Key); !ok || got.Type != v.Type {
			t.Fatalf("Get(%q) failed", kv.Key)
		}
		f.Uint32(kv.Key)
		f.Int32(kv.Key)
		f.Float32(kv.Key)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if d := f.TensorData(ti); uint64(len(d)) != ti.Size {
			t.Fatalf("%s: TensorData len %d, Size %d", ti.Name, len(d), ti.Size)
		}
		if ti.Offset%f.Alignment != 0 {
			t.Fatalf("%s: offset %d misaligned", ti.Name, ti.Offset)
		}
	}

	// Round trip, for files the Writer can express (it refuses empty keys
	// and tensor names llama.cpp cannot read).
	w := NewWriter()
	w.version = f.Version
	for _, kv := range f.KVs {
		if kv.Key == "" {
			return
		}
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatalf("Set(%q) of a parsed value: %v", kv.Key, err)
		}
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if ti.Name == "" || len(ti.Name) > MaxTensorName {
			return
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatalf("AddTensor(%q) of a parsed tensor: %v", ti.Name, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	g, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("re-parse: %v", err)
	}
	if len(g.KVs) != len(f.KVs) || len(g.Tensors) != len(f.Tensors) || g.Alignment != f.Alignment {
		t.Fatalf("re-parse: %d kvs %d tensors align %d", len(g.KVs), len(g.Tensors), g.Alignment)
	}
	for i := range f.KVs {
		a, b := f.KVs[i], g.KVs[i]
		if a.Key != b.Key || a.Value.Type != b.Value.Type || !reflect.DeepEqual(a.Value.Any(), b.Value.Any()) && !hasNaN(a.Value) {
			t.Fatalf("KV %d: %q %v != %q %v", i, a.Key, a.Value, b.Key, b.Value)
		}
	}
	for i := range f.Tensors {
		a, b := &f.Tensors[i], &g.Tensors[i]
		if a.Name != b.Name || a.Type != b.Type || !reflect.DeepEqual(a.Dims, b.Dims) || !bytes.Equal(f.TensorData(a), g.TensorData(b)) {
			t.Fatalf("tensor %d differs", i)
		}
	}
	// Writing is a fixed point after one round.
	var again bytes.Buffer
	if _, err := rewrite(t, g).WriteTo(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Fatal("second rewrite differs from the first")
	}
}

// hasNaN reports whether v holds a NaN, which DeepEqual never matches.
func hasNaN(v Value) bool {
	switch v.Type {
	case Float32, Float64:
		x, _ := v.Float64()
		return x != x
	case Array:
		_, items, _ := v.Array()
		for _, it := range items {
			if hasNaN(it) {
				return true
			}
		}
	}
	return false
}

// fuzzSeeds builds the seed files of FuzzParse.
func fuzzSeeds(tb testing.TB) [][]byte {
	var seeds [][]byte
	for _, build := range []func(*Writer) error{
		func(w *Writer) error { return nil },
		func(w *Writer) error {
			w.Set("general.architecture", "llama")
			w.Set("toks", []string{"a", "bb", ""})
			w.Set("nested", []any{[]any{uint8(1)}, []any{"z"}})
			w.Set("b", []bool{true, false})
			return w.AddTensor("t", quant.F32, []uint64{4, 2}, make([]byte, 32))
		},
		func(w *Writer) error {
			w.SetAlignment(64)
			w.Set("x", int64(-1))
			if err := w.AddTensor("q", quant.Q4_0, []uint64{32}, make([]byte, 18)); err != nil {
				return err
			}
			return w.AddTensor("k", quant.Q4_K, []uint64{256, 1}, make([]byte, 144))
		},
		fuzzTinyModel,
		func(w *Writer) error {
			w.version = 2
			w.Set("u8", uint8(1))
			w.Set("i8", int8(-1))
			w.Set("u16", uint16(2))
			w.Set("i16", int16(-2))
			w.Set("u32", uint32(3))
			w.Set("i32", int32(-3))
			w.Set("u64", uint64(4))
			w.Set("f32", float32(0.5))
			w.Set("f64", float64(-0.25))
			w.Set("bool", true)
			w.Set("ints", []int32{1, -2, 3})
			w.Set("floats", []float32{0.5, 1.5})
			return w.AddTensor("h", quant.F16, []uint64{2, 2}, make([]byte, 8))
		},
	} {
		w := NewWriter()
		if err := build(w); err != nil {
			tb.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, buf.Bytes())
	}
	return seeds
}

// fuzzTinyModel writes the shape of a real model file in miniature: llama
// hyper-parameters, a four-token vocabulary, and Q8_0, F32 and F16 tensors
// (their shapes need not agree with the hyper-parameters: Parse does not
// check that).
func fuzzTinyModel(w *Writer) error {
	w.Set("general.architecture", "llama")
	w.Set("general.name", "tiny")
	w.Set("llama.context_length", uint32(64))
	w.Set("llama.embedding_length", uint32(32))
	w.Set("llama.block_count", uint32(1))
	w.Set("llama.attention.head_count", uint32(2))
	w.Set("llama.attention.layer_norm_rms_epsilon", float32(1e-5))
	w.Set("tokenizer.ggml.model", "llama")
	w.Set("tokenizer.ggml.tokens", []string{"<unk>", "<s>", "</s>", "a"})
	w.Set("tokenizer.ggml.scores", []float32{0, 0, 0, -1})
	w.Set("tokenizer.ggml.token_type", []int32{2, 3, 3, 1})
	w.Set("tokenizer.ggml.bos_token_id", uint32(1))
	if err := w.AddTensor("token_embd.weight", quant.Q8_0, []uint64{32, 2}, make([]byte, 34*2)); err != nil {
		return err
	}
	if err := w.AddTensor("blk.0.attn_norm.weight", quant.F32, []uint64{8}, make([]byte, 4*8)); err != nil {
		return err
	}
	return w.AddTensor("output.weight", quant.F16, []uint64{8, 2}, make([]byte, 2*8*2))
}
