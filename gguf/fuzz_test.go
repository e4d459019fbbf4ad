package gguf

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/quant"
)

// fuzzSeedBytes is how much of each shared file seeds the corpus: enough for
// the whole header of every shared file, including 128k-entry vocabularies
// cut short.
const fuzzSeedBytes = 64 << 10

// FuzzParse checks that Parse never panics, that every failure is a
// *FormatError of a documented kind, and that whatever parses can be
// written back and parses again to the same contents.
func FuzzParse(f *testing.F) {
	// Seeds from the shared data, when it is there. The target must run
	// without it, so this does not use testenv.Shared (which skips).
	if dir, ok := testenv.SharedDir(); ok {
		for _, sub := range []string{"models", "tokenizer"} {
			paths, _ := filepath.Glob(filepath.Join(dir, sub, "*.gguf"))
			for _, p := range paths {
				if b, err := readPrefix(p, fuzzSeedBytes); err == nil {
					f.Add(b)
				}
			}
		}
	}
	// Small complete files.
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
	} {
		w := NewWriter()
		if err := build(w); err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
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
			if fe.Offset > int64(len(data)) {
				t.Fatalf("error offset %d beyond %d bytes: %v", fe.Offset, len(data), err)
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

func readPrefix(path string, n int64) ([]byte, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	return io.ReadAll(io.LimitReader(fd, n))
}
