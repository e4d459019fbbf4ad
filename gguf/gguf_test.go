package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/quant"
)

func sharedFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, sub := range []string{"models", "tokenizer"} {
		dir := testenv.Shared(t, sub)
		m, err := filepath.Glob(filepath.Join(dir, "*.gguf"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatal("no .gguf files in shared models/ or tokenizer/")
	}
	return files
}

// TestSharedFiles opens every shared model and tokenizer file and checks
// the invariants the reader promises.
func TestSharedFiles(t *testing.T) {
	for _, path := range sharedFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.Size() != st.Size() {
				t.Errorf("Size = %d, want %d", f.Size(), st.Size())
			}
			if f.Version != 3 {
				t.Errorf("Version = %d, want 3", f.Version)
			}
			if f.Alignment != DefaultAlignment {
				t.Errorf("Alignment = %d", f.Alignment)
			}
			if f.Arch() == "" {
				t.Error("no general.architecture")
			}
			toks, ok := f.Strings("tokenizer.ggml.tokens")
			if !ok || len(toks) == 0 {
				t.Fatalf("tokenizer.ggml.tokens missing (ok=%v, %d)", ok, len(toks))
			}
			if v, _ := f.Get("tokenizer.ggml.tokens"); v.Len() != len(toks) {
				t.Errorf("Len %d != %d", v.Len(), len(toks))
			}
			if types, ok := f.Int32s("tokenizer.ggml.token_type"); ok && len(types) != len(toks) {
				t.Errorf("%d token types for %d tokens", len(types), len(toks))
			}
			if scores, ok := f.Float32s("tokenizer.ggml.scores"); ok && len(scores) != len(toks) {
				t.Errorf("%d scores for %d tokens", len(scores), len(toks))
			}
			if f.DataOffset%f.Alignment != 0 {
				t.Errorf("DataOffset %d not aligned", f.DataOffset)
			}
			isModel := strings.Contains(path, string(filepath.Separator)+"models"+string(filepath.Separator))
			if isModel && len(f.Tensors) == 0 {
				t.Fatal("model has no tensors")
			}
			var end uint64
			for i := range f.Tensors {
				ti := &f.Tensors[i]
				got, ok := f.Tensor(ti.Name)
				if !ok || got != ti {
					t.Errorf("Tensor(%q) lookup failed", ti.Name)
				}
				want, err := quant.RowBytes(ti.Type, int(ti.Elems()))
				if err != nil || uint64(want) != ti.Size {
					t.Errorf("%s: Size %d, RowBytes %d (%v)", ti.Name, ti.Size, want, err)
				}
				if d := f.TensorData(ti); uint64(len(d)) != ti.Size {
					t.Errorf("%s: TensorData len %d, want %d", ti.Name, len(d), ti.Size)
				}
				end = max(end, f.DataOffset+ti.Offset+ti.Size)
			}
			if len(f.Tensors) > 0 && end > uint64(f.Size()) {
				t.Errorf("tensor data ends at %d past size %d", end, f.Size())
			}
			if isModel {
				if _, ok := f.Tensor("token_embd.weight"); !ok {
					t.Error("no token_embd.weight")
				}
				if _, ok := f.Uint32(f.Arch() + ".block_count"); !ok {
					t.Error("no block_count")
				}
			}
			if err := ValidateHeader(path); err != nil {
				t.Errorf("ValidateHeader: %v", err)
			}
		})
	}
}

func TestStories260K(t *testing.T) {
	f, err := Open(testenv.Shared(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Arch() != "llama" {
		t.Errorf("Arch = %q", f.Arch())
	}
	for key, want := range map[string]uint32{
		"llama.embedding_length":      64,
		"llama.block_count":           5,
		"llama.attention.head_count":  8,
		"llama.feed_forward_length":   172,
		"llama.rope.dimension_count":  8,
		"tokenizer.ggml.bos_token_id": 1,
	} {
		if got, ok := f.Uint32(key); !ok || got != want {
			t.Errorf("%s = %d, %v; want %d", key, got, ok, want)
		}
	}
	if eps, ok := f.Float32("llama.attention.layer_norm_rms_epsilon"); !ok || eps != 1e-5 {
		t.Errorf("rms eps = %v, %v", eps, ok)
	}
	if _, ok := f.String("llama.block_count"); ok {
		t.Error("String on an integer key succeeded")
	}
	toks, _ := f.Strings("tokenizer.ggml.tokens")
	if len(toks) != 512 || toks[0] != "<unk>" || toks[1] != "<s>" || toks[3] != "<0x00>" {
		t.Errorf("tokens: %d %q", len(toks), toks[:4])
	}
	ti, ok := f.Tensor("token_embd.weight")
	if !ok {
		t.Fatal("no token_embd.weight")
	}
	if !reflect.DeepEqual(ti.Dims, []uint64{64, 512}) || ti.Type != quant.F32 || ti.Elems() != 64*512 || ti.Size != 64*512*4 {
		t.Errorf("token_embd.weight = %+v", *ti)
	}
	data := f.TensorData(ti)
	if len(data) != 64*512*4 {
		t.Fatalf("data len %d", len(data))
	}
	// Real weights: finite, not all zero.
	nonzero := 0
	for i := 0; i < len(data); i += 4 {
		x := math.Float32frombits(binary.LittleEndian.Uint32(data[i:]))
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("non-finite weight at %d", i/4)
		}
		if x != 0 {
			nonzero++
		}
	}
	if nonzero < len(data)/4/2 {
		t.Errorf("only %d nonzero weights", nonzero)
	}
	if len(f.Tensors) != 48 {
		t.Errorf("%d tensors, want 48", len(f.Tensors))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.TensorData(ti) != nil {
		t.Error("TensorData after Close returned data")
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Metadata stays usable after Close.
	if got, ok := f.Uint32("llama.block_count"); !ok || got != 5 {
		t.Errorf("after Close: block_count %d %v", got, ok)
	}
}

// rewrite builds a Writer holding everything in f.
func rewrite(t testing.TB, f *File) *Writer {
	t.Helper()
	w := NewWriter()
	w.version = f.Version
	for _, kv := range f.KVs {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// TestRewriteShared re-writes each shared file from its parsed contents.
// llama.cpp lays tensors out in index order, each padded to the alignment,
// and this Writer does the same, so model files come out byte-identical.
// Vocab-only files (no tensors) are identical too when the tool that wrote
// them did not pad after the header; some did, and for those the rewrite is
// the same bytes minus the trailing padding.
func TestRewriteShared(t *testing.T) {
	for _, path := range sharedFiles(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Parse(orig)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			n, err := rewrite(t, f).WriteTo(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(buf.Len()) {
				t.Errorf("WriteTo returned %d, wrote %d", n, buf.Len())
			}
			got := buf.Bytes()
			if bytes.Equal(got, orig) {
				return
			}
			if len(f.Tensors) == 0 && len(got) < len(orig) && bytes.Equal(got, orig[:len(got)]) &&
				uint64(len(orig)) == f.DataOffset && allZero(orig[len(got):]) {
				t.Logf("identical except %d bytes of trailing padding", len(orig)-len(got))
				return
			}
			i := 0
			for i < len(got) && i < len(orig) && got[i] == orig[i] {
				i++
			}
			t.Fatalf("rewrite differs at byte %d (len %d vs %d)", i, len(got), len(orig))
		})
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func mustSet(t testing.TB, w *Writer, key string, v any) {
	t.Helper()
	if err := w.Set(key, v); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

// allTypesWriter writes one key of every value type, nested arrays, and
// tensors of several quant types with a 64-byte alignment.
func allTypesWriter(t testing.TB) (*Writer, map[string][]byte) {
	w := NewWriter()
	w.SetAlignment(64)
	mustSet(t, w, "general.architecture", "llama")
	mustSet(t, w, "u8", uint8(200))
	mustSet(t, w, "i8", int8(-100))
	mustSet(t, w, "u16", uint16(60000))
	mustSet(t, w, "i16", int16(-30000))
	mustSet(t, w, "u32", uint32(4000000000))
	mustSet(t, w, "i32", int32(-2000000000))
	mustSet(t, w, "f32", float32(1.5e-5))
	mustSet(t, w, "bool", true)
	mustSet(t, w, "false", false)
	mustSet(t, w, "str", "héllo\x00world")
	mustSet(t, w, "empty", "")
	mustSet(t, w, "u64", uint64(math.MaxUint64))
	mustSet(t, w, "i64", int64(math.MinInt64))
	mustSet(t, w, "f64", math.Pi)
	mustSet(t, w, "strs", []string{"a", "", "ccc", "<0x00>"})
	mustSet(t, w, "f32s", []float32{0, -1.25, float32(math.Inf(1))})
	mustSet(t, w, "i32s", []int32{-1, 0, 1, math.MaxInt32})
	mustSet(t, w, "u32s", []uint32{0, math.MaxUint32})
	mustSet(t, w, "u8s", []uint8{1, 2, 3})
	mustSet(t, w, "i8s", []int8{-1, 2})
	mustSet(t, w, "u16s", []uint16{1, 65535})
	mustSet(t, w, "i16s", []int16{-2, 3})
	mustSet(t, w, "u64s", []uint64{1 << 63})
	mustSet(t, w, "i64s", []int64{-1 << 62})
	mustSet(t, w, "f64s", []float64{math.E})
	mustSet(t, w, "bools", []bool{true, false, true})
	mustSet(t, w, "nested", []any{[]any{int32(1), int32(2)}, []any{"x", "y", "z"}, []any{[]any{true}}})
	empty, err := ArrayValue(Float32, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, w, "empty_arr", empty)
	mustSet(t, w, "u8", uint8(201)) // replace keeps position

	data := map[string][]byte{}
	add := func(name string, typ quant.Type, dims ...uint64) {
		n := uint64(1)
		for _, d := range dims {
			n *= d
		}
		size, err := quant.RowBytes(typ, int(n))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i*7 + len(name))
		}
		data[name] = b
		if err := w.AddTensor(name, typ, dims, b); err != nil {
			t.Fatal(err)
		}
	}
	add("a.f32", quant.F32, 3)
	add("b.f16", quant.F16, 5, 3)
	add("c.q4_0", quant.Q4_0, 64, 2)
	add("d.q4_k", quant.Q4_K, 256, 2, 1)
	add("e.q6_k", quant.Q6_K, 256, 1, 1, 3)
	add("f.q8_0", quant.Q8_0, 32)
	add("g.bf16", quant.BF16, 7)
	return w, data
}

func TestWriterRoundTrip(t *testing.T) {
	w, data := allTypesWriter(t)
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	wantKeys := []string{"general.alignment", "general.architecture", "u8", "i8", "u16", "i16", "u32", "i32", "f32",
		"bool", "false", "str", "empty", "u64", "i64", "f64", "strs", "f32s", "i32s", "u32s", "u8s", "i8s",
		"u16s", "i16s", "u64s", "i64s", "f64s", "bools", "nested", "empty_arr"}
	var keys []string
	for _, kv := range f.KVs {
		keys = append(keys, kv.Key)
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Fatalf("keys = %v", keys)
	}
	for i, kv := range f.KVs {
		want := w.kvs[i]
		if kv.Value.Type != want.Value.Type || !reflect.DeepEqual(kv.Value.Any(), want.Value.Any()) {
			t.Errorf("%s: got %v %v, want %v %v", kv.Key, kv.Value.Type, kv.Value, want.Value.Type, want.Value)
		}
	}
	wantAny := map[string]any{
		"u8": uint8(201), "i8": int8(-100), "u16": uint16(60000), "i16": int16(-30000),
		"u32": uint32(4000000000), "i32": int32(-2000000000), "f32": float32(1.5e-5), "bool": true,
		"str": "héllo\x00world", "u64": uint64(math.MaxUint64), "i64": int64(math.MinInt64), "f64": math.Pi,
		"strs":      []any{"a", "", "ccc", "<0x00>"},
		"bools":     []any{true, false, true},
		"nested":    []any{[]any{int32(1), int32(2)}, []any{"x", "y", "z"}, []any{[]any{true}}},
		"empty_arr": []any{},
	}
	for k, want := range wantAny {
		v, ok := f.Get(k)
		if !ok || !reflect.DeepEqual(v.Any(), want) {
			t.Errorf("%s = %#v, want %#v", k, v.Any(), want)
		}
	}
	if et, items, ok := mustGet(t, f, "nested").Array(); !ok || et != Array || len(items) != 3 {
		t.Errorf("nested Array() = %v %d %v", et, len(items), ok)
	}
	if got, _ := f.Strings("strs"); !reflect.DeepEqual(got, []string{"a", "", "ccc", "<0x00>"}) {
		t.Errorf("Strings = %q", got)
	}
	if got, _ := f.Float32s("f32s"); !reflect.DeepEqual(got, []float32{0, -1.25, float32(math.Inf(1))}) {
		t.Errorf("Float32s = %v", got)
	}
	if got, _ := f.Int32s("i32s"); !reflect.DeepEqual(got, []int32{-1, 0, 1, math.MaxInt32}) {
		t.Errorf("Int32s = %v", got)
	}
	if got, _ := f.Uint32s("u32s"); !reflect.DeepEqual(got, []uint32{0, math.MaxUint32}) {
		t.Errorf("Uint32s = %v", got)
	}
	if len(f.Tensors) != len(data) {
		t.Fatalf("%d tensors", len(f.Tensors))
	}
	for i, ti := range f.Tensors {
		want := w.tensors[i].info
		if ti.Name != want.Name || ti.Type != want.Type || !reflect.DeepEqual(ti.Dims, want.Dims) || ti.Size != want.Size {
			t.Errorf("tensor %d = %+v, want %+v", i, ti, want)
		}
		if ti.Offset%64 != 0 {
			t.Errorf("%s: offset %d", ti.Name, ti.Offset)
		}
		if !bytes.Equal(f.TensorData(&f.Tensors[i]), data[ti.Name]) {
			t.Errorf("%s: data differs", ti.Name)
		}
	}
	if len(buf.Bytes())%64 != 0 {
		t.Errorf("file size %d not padded to alignment", buf.Len())
	}
	// Writing the parsed file again gives the same bytes.
	var again bytes.Buffer
	if _, err := rewrite(t, f).WriteTo(&again); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Error("re-written file differs")
	}
}

func mustGet(t *testing.T, f *File, key string) Value {
	t.Helper()
	v, ok := f.Get(key)
	if !ok {
		t.Fatalf("no key %q", key)
	}
	return v
}

func TestAccessorConversions(t *testing.T) {
	w := NewWriter()
	mustSet(t, w, "u8", uint8(7))
	mustSet(t, w, "neg", int32(-5))
	mustSet(t, w, "big", uint64(1<<40))
	mustSet(t, w, "f64", 0.25)
	mustSet(t, w, "str", "s")
	mustSet(t, w, "u8s", []uint8{1, 2, 255})
	mustSet(t, w, "negs", []int16{-1, 2})
	mustSet(t, w, "bigs", []uint64{1 << 40})
	mustSet(t, w, "f64s", []float64{0.5, 2})
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want any, ok, wantOK bool) {
		t.Helper()
		if ok != wantOK || (ok && !reflect.DeepEqual(got, want)) {
			t.Errorf("%s = %v, %v; want %v, %v", name, got, ok, want, wantOK)
		}
	}
	u, ok := f.Uint32("u8")
	check("Uint32(u8)", u, uint32(7), ok, true)
	u, ok = f.Uint32("neg")
	check("Uint32(neg)", u, uint32(0), ok, false)
	u, ok = f.Uint32("big")
	check("Uint32(big)", u, uint32(0), ok, false)
	u64, ok := f.Uint64("big")
	check("Uint64(big)", u64, uint64(1<<40), ok, true)
	i, ok := f.Int32("neg")
	check("Int32(neg)", i, int32(-5), ok, true)
	i, ok = f.Int32("big")
	check("Int32(big)", i, int32(0), ok, false)
	fl, ok := f.Float32("f64")
	check("Float32(f64)", fl, float32(0.25), ok, true)
	fl, ok = f.Float32("u8")
	check("Float32(u8)", fl, float32(7), ok, true)
	fl, ok = f.Float32("str")
	check("Float32(str)", fl, float32(0), ok, false)
	_, ok = f.Bool("u8")
	check("Bool(u8)", nil, nil, ok, false)
	_, ok = f.Get("missing")
	check("Get(missing)", nil, nil, ok, false)
	i32s, ok := f.Int32s("u8s")
	check("Int32s(u8s)", i32s, []int32{1, 2, 255}, ok, true)
	i32s, ok = f.Int32s("negs")
	check("Int32s(negs)", i32s, []int32{-1, 2}, ok, true)
	u32s, ok := f.Uint32s("negs")
	check("Uint32s(negs)", u32s, []uint32(nil), ok, false)
	u32s, ok = f.Uint32s("bigs")
	check("Uint32s(bigs)", u32s, []uint32(nil), ok, false)
	f32s, ok := f.Float32s("f64s")
	check("Float32s(f64s)", f32s, []float32{0.5, 2}, ok, true)
	f32s, ok = f.Float32s("u8s")
	check("Float32s(u8s)", f32s, []float32{1, 2, 255}, ok, true)
	_, ok = f.Strings("u8s")
	check("Strings(u8s)", nil, nil, ok, false)
	_, ok = f.Int32s("u8")
	check("Int32s(u8)", nil, nil, ok, false)
	if f.Arch() != "" {
		t.Errorf("Arch = %q", f.Arch())
	}
}

func TestValueString(t *testing.T) {
	long := strings.Repeat("x", 100)
	many := make([]string, 1000)
	for i := range many {
		many[i] = "t"
	}
	for _, c := range []struct {
		v    any
		want string
	}{
		{uint32(7), "7"},
		{int8(-3), "-3"},
		{float32(1e-5), "1e-05"},
		{true, "true"},
		{"a\"b", `"a\"b"`},
		{long, `"` + long[:64] + `"...(100 bytes)`},
		{[]int32{1, 2, 3}, "[1, 2, 3]"},
		{many, `["t", "t", "t", "t", "t", "t", "t", "t", ... (1000 items)]`},
		{[]any{[]any{"x"}, []any{"y"}}, `[["x"], ["y"]]`},
	} {
		v, err := NewValue(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.String(); got != c.want {
			t.Errorf("String(%T) = %s, want %s", c.v, got, c.want)
		}
	}
	// Nested arrays share one item budget, so the text stays short.
	var outer []any
	for i := 0; i < 10; i++ {
		inner := make([]any, 10)
		for j := range inner {
			inner[j] = int32(j)
		}
		outer = append(outer, inner)
	}
	v, err := NewValue(outer)
	if err != nil {
		t.Fatal(err)
	}
	s := v.String()
	if len(s) > 300 || !strings.HasSuffix(s, "... (10 items)]") {
		t.Errorf("nested String = %s (%d bytes)", s, len(s))
	}
}

func TestVersion2(t *testing.T) {
	w, data := allTypesWriter(t)
	w.version = 2
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 {
		t.Fatalf("Version = %d", f.Version)
	}
	if !bytes.Equal(f.TensorData(&f.Tensors[2]), data[f.Tensors[2].Name]) {
		t.Error("tensor data differs")
	}
	// Patching a real v3 file's version field to 2 gives the same contents.
	path := testenv.Shared(t, "models", "stories260K.gguf")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Clone(orig)
	binary.LittleEndian.PutUint32(b[4:], 2)
	f2, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	f3, err := Parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	if f2.Version != 2 || len(f2.KVs) != len(f3.KVs) || len(f2.Tensors) != len(f3.Tensors) || f2.DataOffset != f3.DataOffset {
		t.Errorf("v2 patch: version %d, %d kvs, %d tensors", f2.Version, len(f2.KVs), len(f2.Tensors))
	}
}

// builder assembles raw GGUF bytes for malformed-input tests.
type builder struct{ b []byte }

func newBuilder(version uint32, nTensors, nKV uint64) *builder {
	b := &builder{b: []byte(Magic)}
	return b.u32(version).u64(nTensors).u64(nKV)
}

func (b *builder) u8(x uint8) *builder   { b.b = append(b.b, x); return b }
func (b *builder) u32(x uint32) *builder { b.b = binary.LittleEndian.AppendUint32(b.b, x); return b }
func (b *builder) u64(x uint64) *builder { b.b = binary.LittleEndian.AppendUint64(b.b, x); return b }
func (b *builder) str(s string) *builder { return b.u64(uint64(len(s))).raw(s) }
func (b *builder) raw(s string) *builder { b.b = append(b.b, s...); return b }

// tensor appends a tensor info.
func (b *builder) tensor(name string, typ quant.Type, off uint64, dims ...uint64) *builder {
	b.str(name).u32(uint32(len(dims)))
	for _, d := range dims {
		b.u64(d)
	}
	return b.u32(uint32(typ)).u64(off)
}

// data pads to 32 and appends n bytes of tensor data.
func (b *builder) data(n int) *builder {
	for len(b.b)%32 != 0 {
		b.b = append(b.b, 0)
	}
	b.b = append(b.b, make([]byte, n)...)
	return b
}

func TestMalformed(t *testing.T) {
	kv := func(nKV uint64) *builder { return newBuilder(3, 0, nKV) }
	// The value type says Array; each array body but the innermost holds
	// one array.
	nest := kv(1).str("deep").u32(uint32(Array))
	for i := 0; i < MaxArrayDepth; i++ {
		nest.u32(uint32(Array)).u64(1)
	}
	nest.u32(uint32(Uint8)).u64(1).u8(0)
	deepOK := kv(1).str("deep").u32(uint32(Array))
	for i := 0; i < MaxArrayDepth-1; i++ {
		deepOK.u32(uint32(Array)).u64(1)
	}
	deepOK.u32(uint32(Uint8)).u64(1).u8(0)
	if _, err := Parse(deepOK.b); err != nil {
		t.Fatalf("arrays nested %d deep: %v", MaxArrayDepth, err)
	}

	cases := []struct {
		name   string
		data   []byte
		kind   error
		msg    string
		key    string
		tensor string
		offset int64
	}{
		{"empty", nil, ErrTruncated, "too short for the magic", "", "", 0},
		{"bad magic", []byte("GGML\x03\x00\x00\x00"), ErrNotGGUF, `bad magic "GGML"`, "", "", 0},
		{"html", []byte("<!DOCTYPE html>"), ErrNotGGUF, "bad magic", "", "", 0},
		{"v1", newBuilder(1, 0, 0).b, ErrUnsupported, "version 1 is not supported", "", "", 4},
		{"v4", newBuilder(4, 0, 0).b, ErrUnsupported, "version 4 is not supported", "", "", 4},
		{"v0", newBuilder(0, 0, 0).b, ErrUnsupported, "version 0 is not supported", "", "", 4},
		{"big-endian v2", newBuilder(0x02000000, 0, 0).b, ErrUnsupported, "big-endian", "", "", 4},
		{"big-endian", newBuilder(0x03000000, 0, 0).b, ErrUnsupported, "big-endian", "", "", 4},
		{"no counts", []byte("GGUF\x03\x00\x00\x00\x00"), ErrTruncated, "tensor count needs 8 bytes", "", "", 8},
		{"huge kv count", newBuilder(3, 0, 1<<60).b, ErrTruncated, "metadata count 1152921504606846976 needs at least 13 bytes per pair, only 0 bytes left", "", "", 16},
		{"huge tensor count", newBuilder(3, math.MaxUint64, 0).b, ErrTruncated, "tensor count 18446744073709551615 needs at least 32 bytes per tensor", "", "", 8},
		{"kv+tensor count", newBuilder(3, 1, 2).str("a").u32(uint32(Uint8)).u8(1).raw(strings.Repeat("\x00", 26)).b, ErrTruncated, "2 metadata pairs and 1 tensors need at least 58 bytes, only 40 left", "", "", 8},
		{"key length", kv(1).u64(1 << 40).u32(0).u8(0).b, ErrTruncated, "key length 1099511627776 exceeds", "", "", 24},
		{"key too long", kv(1).str(strings.Repeat("k", MaxKeyLen+1)).u32(uint32(Uint8)).u8(0).b, ErrCorrupt, "key of 65536 bytes is longer than the 65535", "", "", 24},
		{"string length", kv(1).str("k").u32(uint32(String)).u64(1000).raw("abc").b, ErrTruncated, "string value length 1000 exceeds", "k", "", 37},
		{"value type", kv(1).str("k").u32(13).u8(0).b, ErrCorrupt, "unknown value type 13", "k", "", 33},
		{"truncated value", kv(1).str("k").u32(uint32(Uint64)).u32(0).u8(0).b, ErrTruncated, "uint64 value needs 8 bytes", "k", "", 37},
		{"bool", kv(1).str("k").u32(uint32(Bool)).u8(2).raw("\x00\x00\x00\x00").b, ErrCorrupt, "bool value 2 is not 0 or 1", "k", "", 37},
		{"bool array", kv(1).str("k").u32(uint32(Array)).u32(uint32(Bool)).u64(2).u8(1).u8(7).b, ErrCorrupt, "bool 1 of array is 7", "k", "", 50},
		{"array elem type", kv(1).str("k").u32(uint32(Array)).u32(99).u64(0).b, ErrCorrupt, "unknown array element type 99", "k", "", 37},
		{"array count", kv(1).str("k").u32(uint32(Array)).u32(uint32(Uint32)).u64(1 << 62).u32(0).b, ErrTruncated, "array of 4611686018427387904 uint32 needs", "k", "", 41},
		{"string array count", kv(1).str("k").u32(uint32(Array)).u32(uint32(String)).u64(1 << 62).u64(0).b, ErrTruncated, "array of 4611686018427387904 strings needs", "k", "", 41},
		{"string in array", kv(1).str("k").u32(uint32(Array)).u32(uint32(String)).u64(2).str("ok").u64(99).raw("x").b, ErrTruncated, "string 1 of 2 in array: length 99", "k", "", 59},
		{"array of arrays count", kv(1).str("k").u32(uint32(Array)).u32(uint32(Array)).u64(1 << 40).u64(0).b, ErrTruncated, "array of 1099511627776 arrays", "k", "", 41},
		{"nesting", nest.b, ErrCorrupt, "nested deeper than 8", "deep", "", 40 + 12*MaxArrayDepth},
		{"duplicate key", kv(2).str("k").u32(uint32(Uint8)).u8(1).str("k").u32(uint32(Uint8)).u8(2).b, ErrCorrupt, "duplicate key (also metadata pair 0)", "k", "", 38},
		{"alignment zero", kv(1).str(KeyAlignment).u32(uint32(Uint32)).u32(0).b, ErrCorrupt, "alignment 0 is not a power of two", KeyAlignment, "", 53},
		{"alignment 48", kv(1).str(KeyAlignment).u32(uint32(Uint32)).u32(48).b, ErrCorrupt, "alignment 48 is not a power of two", KeyAlignment, "", 53},
		{"alignment negative", kv(1).str(KeyAlignment).u32(uint32(Int32)).u32(math.MaxUint32).b, ErrCorrupt, "alignment must be a non-negative integer", KeyAlignment, "", 53},
		{"alignment type", kv(1).str(KeyAlignment).u32(uint32(String)).str("32").b, ErrCorrupt, "alignment must be a non-negative integer", KeyAlignment, "", 49},
		{"too many dims", newBuilder(3, 1, 0).tensor("t", quant.F32, 0, 1, 1, 1, 1, 1).data(4).b, ErrCorrupt, "5 dimensions (must be 1 to 4)", "", "t", 33},
		{"no dims", newBuilder(3, 1, 0).tensor("t", quant.F32, 0).raw(strings.Repeat("\x00", 64)).b, ErrCorrupt, "0 dimensions", "", "t", 33},
		{"zero dim", newBuilder(3, 1, 0).tensor("t", quant.F32, 0, 4, 0).data(16).b, ErrCorrupt, "dimension 1 is zero", "", "t", 45},
		{"dim overflow", newBuilder(3, 1, 0).tensor("t", quant.F32, 0, 1<<32, 1<<32).data(16).b, ErrCorrupt, "element count overflows at dimension 1", "", "t", 45},
		{"size overflow", newBuilder(3, 1, 0).tensor("t", quant.F32, 0, 1<<62).data(16).b, ErrCorrupt, "data size overflows", "", "t", 45},
		{"unknown type", newBuilder(3, 1, 0).tensor("t", quant.Type(99), 0, 4).data(16).b, ErrUnsupported, "unknown tensor type 99", "", "t", 45},
		{"block multiple", newBuilder(3, 1, 0).tensor("t", quant.Q4_0, 0, 33, 32).data(18 * 33).b, ErrCorrupt, "row length 33 (element count 1056) is not a multiple of the Q4_0 block size 32", "", "t", 53},
		{"misaligned", newBuilder(3, 1, 0).tensor("t", quant.F32, 16, 4).data(64).b, ErrCorrupt, "data offset 16 is not a multiple of the alignment 32", "", "t", 49},
		{"past end", newBuilder(3, 1, 0).tensor("t", quant.F32, 32, 4).data(40).b, ErrTruncated, "data [32, +16) extends past the end of the file (40 bytes of tensor data)", "", "t", 49},
		// The offset of the error is the data offset field, not the data (which is not in the file).
		{"offset past end", newBuilder(3, 1, 0).tensor("t", quant.F32, 1<<48, 4).data(40).b, ErrTruncated, "data [281474976710656, +16) extends past the end of the file", "", "t", 49},
		{"second offset past end", newBuilder(3, 2, 0).tensor("a", quant.F32, 0, 4).tensor("b", quant.F32, 1<<62, 4).data(64).b, ErrTruncated, "data [4611686018427387904, +16) extends past the end", "", "b", 82},
		{"data section missing", newBuilder(3, 1, 0).tensor("t", quant.F32, 0, 4).b, ErrTruncated, "tensor data section starts at 64, past the end of the 57-byte file", "", "", 57},
		{"overlap", newBuilder(3, 2, 0).tensor("a", quant.F32, 0, 16).tensor("b", quant.F32, 32, 16).data(128).b, ErrCorrupt, `data [32, 96) overlaps tensor "a" [0, 64)`, "", "b", 82},
		{"duplicate tensor", newBuilder(3, 2, 0).tensor("a", quant.F32, 0, 4).tensor("a", quant.F32, 32, 4).data(64).b, ErrCorrupt, "duplicate tensor name (also tensor 0)", "", "a", 57},
		{"tensor name length", newBuilder(3, 1, 0).u64(1 << 50).raw(strings.Repeat("\x00", 40)).b, ErrTruncated, "tensor name length 1125899906842624 exceeds", "", "", 24},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %d kvs %d tensors", len(f.KVs), len(f.Tensors))
			}
			if !errors.Is(err, c.kind) {
				t.Errorf("error %q is not %v", err, c.kind)
			}
			if c.kind != ErrUnsupported && !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %q is not ErrCorrupt", err)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError", err)
			}
			if !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("message %q does not contain %q", fe.Msg, c.msg)
			}
			if fe.Key != c.key || fe.Tensor != c.tensor {
				t.Errorf("key %q tensor %q, want %q %q", fe.Key, fe.Tensor, c.key, c.tensor)
			}
			if fe.Offset != c.offset {
				t.Errorf("offset %d, want %d (%v)", fe.Offset, c.offset, err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(c.data)) {
				t.Errorf("offset %d outside the %d-byte file", fe.Offset, len(c.data))
			}
			if c.key != "" && !strings.Contains(err.Error(), `key "`+c.key+`"`) {
				t.Errorf("error text %q does not name the key", err)
			}
			if c.tensor != "" && !strings.Contains(err.Error(), `tensor "`+c.tensor+`"`) {
				t.Errorf("error text %q does not name the tensor", err)
			}
		})
	}
}

// TestTruncation parses every proper prefix of a small file; each must fail
// with ErrTruncated (or ErrCorrupt), never panic.
func TestTruncation(t *testing.T) {
	w := NewWriter()
	mustSet(t, w, "general.architecture", "llama")
	mustSet(t, w, "toks", []string{"a", "bb", ""})
	mustSet(t, w, "nested", []any{[]any{uint8(1)}, []any{"z"}})
	mustSet(t, w, "f", float32(2))
	// Sizes that are multiples of 32 leave no trailing padding, so every
	// proper prefix cuts real data.
	if err := w.AddTensor("a", quant.F32, []uint64{8}, make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", quant.Q8_0, []uint64{32, 16}, make([]byte, 34*16)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	if _, err := Parse(full); err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(full); n++ {
		_, err := Parse(full[:n:n])
		if err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed", n, len(full))
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix %d: %v is not ErrCorrupt", n, err)
		}
	}
	// Also through Open.
	dir := t.TempDir()
	for _, n := range []int{0, 3, 4, 30, len(full) - 1} {
		p := filepath.Join(dir, "t.gguf")
		if err := os.WriteFile(p, full[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if err := ValidateHeader(p); !errors.Is(err, ErrTruncated) {
			t.Errorf("ValidateHeader of %d bytes: %v", n, err)
		} else if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name the file", err)
		}
	}
}

func TestWriteFile(t *testing.T) {
	w, data := allTypesWriter(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "out.gguf")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (temp file left?)", len(entries))
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, ok := f.Tensor("d.q4_k")
	if !ok || !bytes.Equal(f.TensorData(ti), data["d.q4_k"]) {
		t.Error("d.q4_k data differs")
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", st.Mode())
	}
	if err := w.WriteFile(filepath.Join(dir, "missing", "x.gguf")); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"empty key", w.Set("", 1), "empty metadata key"},
		{"type", w.Set("k", struct{}{}), "unsupported metadata type"},
		{"mixed", w.Set("k", []any{1, "x"}), "mixes int64 and string"},
		{"empty any", w.Set("k", []any{}), "empty array"},
		{"bad alignment", w.Set(KeyAlignment, uint32(3)), "power of two"},
		{"bad Value", w.Set("k", Value{Type: Array}), "array Value without elements"},
		{"bad Value type", w.Set("k", Value{Type: 42}), "invalid value type"},
		{"data len", w.AddTensor("t", quant.F32, []uint64{4}, make([]byte, 15)), "15 bytes of data, want 16"},
		{"block", w.AddTensor("t", quant.Q4_0, []uint64{16}, make([]byte, 9)), "not a multiple of the Q4_0 block size"},
		{"dims", w.AddTensor("t", quant.F32, nil, nil), "0 dimensions"},
		{"zero dim", w.AddTensor("t", quant.F32, []uint64{0}, nil), "dimension 0 is zero"},
		{"type", w.AddTensor("t", quant.Type(77), []uint64{1}, nil), "unknown tensor type 77"},
		{"name", w.AddTensor(strings.Repeat("n", 64), quant.F32, []uint64{1}, make([]byte, 4)), "must be 1 to 63 bytes"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, c.err, c.want)
		}
	}
	if err := w.AddTensor("t", quant.F32, []uint64{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("t", quant.F32, []uint64{1}, make([]byte, 4)); err == nil || !strings.Contains(err.Error(), "added twice") {
		t.Errorf("duplicate tensor: %v", err)
	}
	deep := any(uint8(1))
	for i := 0; i < MaxArrayDepth+1; i++ {
		deep = []any{deep}
	}
	if err := w.Set("deep", deep); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep nesting: %v", err)
	}
	w.SetAlignment(12)
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "alignment 12") {
		t.Errorf("WriteTo after SetAlignment(12): %v", err)
	}
}

// TestLargeVocab checks that reading a 128k-entry vocabulary is cheap.
func TestLargeVocab(t *testing.T) {
	f, err := Open(testenv.Shared(t, "tokenizer", "ggml-vocab-llama3-bpe.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	toks, ok := f.Strings("tokenizer.ggml.tokens")
	if !ok || len(toks) != 128256 {
		t.Fatalf("%d tokens", len(toks))
	}
	if toks[0] != "!" || toks[128000] != "<|begin_of_text|>" {
		t.Errorf("tokens[0] = %q, tokens[128000] = %q", toks[0], toks[128000])
	}
	merges, ok := f.Strings("tokenizer.ggml.merges")
	if !ok || len(merges) != 280147 || merges[0] != "Ġ Ġ" {
		t.Errorf("merges: %d %q", len(merges), merges[:1])
	}
	if id, _ := f.Uint32("tokenizer.ggml.bos_token_id"); id != 128000 {
		t.Errorf("bos = %d", id)
	}
	// The strings point into the file: a return to per-string copying
	// would allocate once per token.
	if n := testing.AllocsPerRun(3, func() { f.Strings("tokenizer.ggml.tokens") }); n > 4 {
		t.Errorf("Strings of 128256 tokens: %.0f allocations", n)
	}
}

func BenchmarkOpenVocabLlama3(b *testing.B) {
	path := testenv.Shared(b, "tokenizer", "ggml-vocab-llama3-bpe.gguf")
	b.ReportAllocs()
	for b.Loop() {
		f, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		toks, ok := f.Strings("tokenizer.ggml.tokens")
		if !ok || len(toks) != 128256 {
			b.Fatal("tokens")
		}
		f.Close()
	}
}

func BenchmarkStringsLlama3(b *testing.B) {
	f, err := Open(testenv.Shared(b, "tokenizer", "ggml-vocab-llama3-bpe.gguf"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ReportAllocs()
	for b.Loop() {
		if toks, _ := f.Strings("tokenizer.ggml.tokens"); len(toks) != 128256 {
			b.Fatal("tokens")
		}
	}
}

// TestConcurrentReaders reads one File from several goroutines; run with
// -race to check the lazy array decoding.
func TestConcurrentReaders(t *testing.T) {
	f, err := Open(testenv.Shared(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	done := make(chan error)
	for g := 0; g < 4; g++ {
		go func() {
			v, _ := f.Get("tokenizer.ggml.tokens")
			_ = v.String()
			_, items, _ := v.Array()
			toks, _ := f.Strings("tokenizer.ggml.tokens")
			_ = v.Any()
			var err error
			if len(items) != 512 || len(toks) != 512 || items[1].str != toks[1] {
				err = errors.New("inconsistent tokens")
			}
			done <- err
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
