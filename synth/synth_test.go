package synth

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/quant"
	"github.com/sluice-llm/sluice/tokenizer"
	"github.com/sluice-llm/sluice/tokenizer/template"
)

func TestSynthShapes(t *testing.T) {
	// Parameter counts of the published models.
	want := map[string]float64{
		"llama-3.2-1b": 1.236e9, "llama-3.2-3b": 3.213e9, "llama-3.1-8b": 8.030e9,
		"qwen2.5-0.5b": 0.494e9, "qwen2.5-1.5b": 1.544e9, "qwen2.5-7b": 7.616e9,
		"smollm2-135m": 0.1345e9, "qwen3-0.6b": 0.596e9, "phi-3-mini": 3.821e9, "olmo-2-1b": 1.485e9,
	}
	for _, name := range ShapeNames() {
		s := Shapes[name]
		if s.Name != name {
			t.Errorf("%s: Name = %q", name, s.Name)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if w, ok := want[name]; ok {
			if got := float64(s.Params()); math.Abs(got-w)/w > 0.002 {
				t.Errorf("%s: %.4g parameters, want %.4g", name, got, w)
			}
		}
	}
	for _, name := range []string{"llama-3.2-1b", "llama-3.1-8b", "qwen2.5-0.5b", "smollm2-135m"} {
		if _, err := LookupShape(strings.ToUpper(name)); err != nil {
			t.Errorf("LookupShape(%q): %v", name, err)
		}
	}
	_, err := LookupShape("gpt-5")
	if err == nil || !strings.Contains(err.Error(), "smollm2-135m") || strings.Contains(err.Error(), "\n") {
		t.Errorf("unknown shape error = %v; want one line listing the shapes", err)
	}
	_, err = ParseFileType("Q7_K")
	if err == nil || !strings.Contains(err.Error(), "Q4_K_M") || strings.Contains(err.Error(), "\n") {
		t.Errorf("unknown type error = %v; want one line listing the types", err)
	}
	for alias, canon := range map[string]string{"q4_k": "Q4_K_M", "Q4_k_m": "Q4_K_M", "f16": "F16", "q6_K": "Q6_K", "q5_k": "Q5_K_M"} {
		if ft, err := ParseFileType(alias); err != nil || ft.Name != canon {
			t.Errorf("ParseFileType(%q) = %v, %v; want %s", alias, ft.Name, err, canon)
		}
	}
}

// TestSynthPlanMatchesLlamaCpp compares the tensor names, dimensions and
// types that Plan chooses with the files llama-quantize wrote for the same
// shapes.
func TestSynthPlanMatchesLlamaCpp(t *testing.T) {
	dir := testenv.Shared(t, "models")
	files, _ := filepath.Glob(filepath.Join(dir, "synth-*.gguf"))
	if len(files) == 0 {
		t.Fatalf("no synth-*.gguf in %s", dir)
	}
	byID := map[uint32]FileType{}
	for _, ft := range fileTypes {
		byID[ft.ID] = ft
	}
	checked := 0
	for _, path := range files {
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := f.Uint32("general.file_type")
		ft, ok := byID[id]
		shape := Shapes["tiny-"+f.Arch()]
		if !ok {
			t.Errorf("%s: file type %d has no FileType", filepath.Base(path), id)
			f.Close()
			continue
		}
		plan, err := Plan(shape, ft)
		if err != nil {
			t.Fatal(err)
		}
		if len(plan) != len(f.Tensors) {
			t.Errorf("%s: plan has %d tensors, file %d", filepath.Base(path), len(plan), len(f.Tensors))
		}
		for _, tp := range plan {
			ti, ok := f.Tensor(tp.Name)
			if !ok {
				t.Errorf("%s: no tensor %s", filepath.Base(path), tp.Name)
				continue
			}
			if fmt.Sprint(ti.Dims) != fmt.Sprint(tp.Dims) || ti.Type != tp.Type || ti.Size != uint64(tp.Bytes()) {
				t.Errorf("%s: %s is %v %v (%d bytes), plan %v %v (%d bytes)", filepath.Base(path), tp.Name,
					ti.Dims, ti.Type, ti.Size, tp.Dims, tp.Type, tp.Bytes())
			}
		}
		f.Close()
		checked++
	}
	t.Logf("checked %d files", checked)
}

func planTypes(t *testing.T, shape, ftype string) map[string]quant.Type {
	t.Helper()
	s, _ := LookupShape(shape)
	ft, err := ParseFileType(ftype)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Plan(s, ft)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]quant.Type{}
	for _, tp := range plan {
		m[tp.Name] = tp.Type
	}
	return m
}

func TestSynthQ4KMRules(t *testing.T) {
	// llama-3.2-1b: 16 layers; use_more_bits: 0, 1, 4, 7, 10, 13, 14, 15.
	m := planTypes(t, "llama-3.2-1b", "Q4_K")
	if m["token_embd.weight"] != quant.Q6_K {
		t.Errorf("tied token_embd is %v, want Q6_K", m["token_embd.weight"])
	}
	if _, ok := m["output.weight"]; ok {
		t.Error("tied model has output.weight")
	}
	if m["rope_freqs.weight"] != quant.F32 {
		t.Errorf("rope_freqs is %v", m["rope_freqs.weight"])
	}
	more := map[int]bool{0: true, 1: true, 4: true, 7: true, 10: true, 13: true, 14: true, 15: true}
	for i := 0; i < 16; i++ {
		want := quant.Q4_K
		if more[i] {
			want = quant.Q6_K
		}
		for _, n := range []string{"attn_v", "ffn_down"} {
			if got := m[fmt.Sprintf("blk.%d.%s.weight", i, n)]; got != want {
				t.Errorf("llama-3.2-1b blk.%d.%s = %v, want %v", i, n, got, want)
			}
		}
		for _, n := range []string{"attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"} {
			if got := m[fmt.Sprintf("blk.%d.%s.weight", i, n)]; got != quant.Q4_K {
				t.Errorf("llama-3.2-1b blk.%d.%s = %v, want Q4_K", i, n, got)
			}
		}
		if got := m[fmt.Sprintf("blk.%d.attn_norm.weight", i)]; got != quant.F32 {
			t.Errorf("norm is %v", got)
		}
	}
	// llama-3.1-8b: untied; token_embd stays Q4_K, output is Q6_K.
	m = planTypes(t, "llama-3.1-8b", "Q4_K_M")
	if m["token_embd.weight"] != quant.Q4_K || m["output.weight"] != quant.Q6_K {
		t.Errorf("llama-3.1-8b token_embd %v output %v; want Q4_K Q6_K", m["token_embd.weight"], m["output.weight"])
	}
	// qwen2.5-0.5b: rows of 896 are not whole super-blocks: Q4_K falls back
	// to Q5_0, Q6_K to Q8_0, the tied output to Q8_0; ffn_down rows (4864)
	// keep K-quants.
	m = planTypes(t, "qwen2.5-0.5b", "Q4_K_M")
	checks := map[string]quant.Type{
		"token_embd.weight":        quant.Q8_0,
		"blk.0.attn_q.weight":      quant.Q5_0,
		"blk.0.attn_v.weight":      quant.Q8_0, // use_more_bits(0, 24)
		"blk.3.attn_v.weight":      quant.Q5_0,
		"blk.0.ffn_down.weight":    quant.Q6_K,
		"blk.3.ffn_down.weight":    quant.Q4_K,
		"blk.0.ffn_gate.weight":    quant.Q5_0,
		"blk.0.attn_output.weight": quant.Q5_0,
		"blk.0.attn_q.bias":        quant.F32,
	}
	for name, want := range checks {
		if m[name] != want {
			t.Errorf("qwen2.5-0.5b Q4_K_M %s = %v, want %v", name, m[name], want)
		}
	}
	m = planTypes(t, "qwen2.5-0.5b", "Q6_K")
	if m["blk.0.attn_q.weight"] != quant.Q8_0 || m["blk.0.ffn_down.weight"] != quant.Q6_K {
		t.Errorf("qwen2.5-0.5b Q6_K: attn_q %v ffn_down %v; want Q8_0 Q6_K", m["blk.0.attn_q.weight"], m["blk.0.ffn_down.weight"])
	}
	m = planTypes(t, "smollm2-135m", "F16")
	if m["token_embd.weight"] != quant.F16 || m["blk.0.attn_q.weight"] != quant.F16 || m["output_norm.weight"] != quant.F32 {
		t.Errorf("F16 plan: %v %v %v", m["token_embd.weight"], m["blk.0.attn_q.weight"], m["output_norm.weight"])
	}
}

func TestSynthRopeFreqs(t *testing.T) {
	s := Shapes["llama-3.2-1b"]
	f := llama3RopeFactors(s.RopeScaling, s.RopeBase, s.HeadDimension())
	if len(f) != 32 || f[0] != 1 || f[31] != 32 {
		t.Fatalf("factors %v", f)
	}
	for i := 1; i < len(f); i++ {
		if f[i] < f[i-1] {
			t.Fatalf("factors not increasing at %d: %v", i, f)
		}
	}
}

// testTypes are the file types every shape is written in by the tests.
var testTypes = []string{"F16", "Q8_0", "Q4_0", "Q4_K_M", "Q6_K"}

// smallOpts cuts a shape to one layer and a 512-token vocabulary.
func smallOpts(shape, typ string) Options {
	return Options{Shape: Shapes[shape], Type: typ, Seed: 7, Layers: 1, Vocab: 512}
}

func TestSynthWriteShapes(t *testing.T) {
	dir := t.TempDir()
	for _, name := range ShapeNames() {
		big := Shapes[name].Params() > 1e9
		for _, typ := range testTypes {
			if Shapes[name].Params() > 2e9 && typ != "Q8_0" && typ != "Q4_K_M" {
				continue // one layer is 100-200M weights: two types suffice
			}
			if big && typ == "F16" {
				continue // F16 is not pooled; the small shapes cover it
			}
			// Even cut to one layer, the big shapes' quantized tensors take
			// seconds: build those from block pools.
			fast := big && typ != "F16"
			t.Run(fmt.Sprintf("%s/%s/fast=%v", name, typ, fast), func(t *testing.T) {
				opts := smallOpts(name, typ)
				opts.Fast = fast
				path := filepath.Join(dir, name+"-"+typ+".gguf")
				if err := Write(path, opts); err != nil {
					t.Fatal(err)
				}
				checkFile(t, path, opts)
				os.Remove(path)
			})
		}
	}
}

// checkFile opens a written model and checks its metadata, tensor index and
// values against opts.
func checkFile(t *testing.T, path string, opts Options) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, ft, _, err := opts.resolve()
	if err != nil {
		t.Fatal(err)
	}
	a := s.Arch
	if f.Arch() != a {
		t.Errorf("architecture %q, want %q", f.Arch(), a)
	}
	u32 := map[string]int{
		a + ".embedding_length": s.Dim, a + ".block_count": s.Layers, a + ".attention.head_count": s.Heads,
		a + ".attention.head_count_kv": s.KVHeads, a + ".feed_forward_length": s.FFN, a + ".vocab_size": s.Vocab,
		a + ".context_length": s.ContextLength, a + ".rope.dimension_count": s.HeadDimension(),
		"general.file_type": int(ft.ID),
	}
	for k, want := range u32 {
		if got, ok := f.Uint32(k); !ok || int(got) != want {
			t.Errorf("%s = %d (%v), want %d", k, got, ok, want)
		}
	}
	if got, _ := f.Float32(a + ".rope.freq_base"); got != s.RopeBase {
		t.Errorf("rope.freq_base = %v, want %v", got, s.RopeBase)
	}
	if got, _ := f.Float32(a + ".attention.layer_norm_rms_epsilon"); got != s.NormEps {
		t.Errorf("norm eps = %v, want %v", got, s.NormEps)
	}
	if toks, _ := f.Strings("tokenizer.ggml.tokens"); len(toks) != s.Vocab {
		t.Errorf("%d tokens, want %d", len(toks), s.Vocab)
	}
	plan, _ := Plan(s, ft)
	if len(f.Tensors) != len(plan) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(plan))
	}
	for i, tp := range plan {
		ti := &f.Tensors[i]
		if ti.Name != tp.Name || fmt.Sprint(ti.Dims) != fmt.Sprint(tp.Dims) || ti.Type != tp.Type {
			t.Errorf("tensor %d: %s %v %v, want %s %v %v", i, ti.Name, ti.Dims, ti.Type, tp.Name, tp.Dims, tp.Type)
			continue
		}
		checkValues(t, f, ti, tp.Kind)
	}
	// Every architecture's tensors by llama.cpp's names.
	need := []string{"token_embd.weight", "output_norm.weight",
		"blk.0.attn_output.weight", "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"}
	if s.PostNorms {
		need = append(need, "blk.0.post_attention_norm.weight", "blk.0.post_ffw_norm.weight",
			"blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight")
	} else {
		need = append(need, "blk.0.attn_norm.weight", "blk.0.ffn_norm.weight")
	}
	if s.Fused {
		need = append(need, "blk.0.attn_qkv.weight")
	} else {
		need = append(need, "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.ffn_gate.weight")
	}
	if s.QKNorm {
		need = append(need, "blk.0.attn_q_norm.weight", "blk.0.attn_k_norm.weight")
	}
	if !s.Tied {
		need = append(need, "output.weight")
	}
	if s.Biases {
		need = append(need, "blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias")
	}
	if s.RopeScaling != nil {
		need = append(need, "rope_freqs.weight")
	}
	for _, n := range need {
		if _, ok := f.Tensor(n); !ok {
			t.Errorf("missing tensor %s", n)
		}
	}
	if _, ok := f.Tensor("output.weight"); ok && s.Tied {
		t.Error("tied shape has output.weight")
	}
}

// checkValues dequantizes up to 8 rows of a tensor and checks that they are
// finite and have the intended mean and spread.
func checkValues(t *testing.T, f *gguf.File, ti *gguf.TensorInfo, kind TensorKind) {
	t.Helper()
	ne0 := int(ti.Dims[0])
	rows := int(ti.Elems()) / ne0
	rb, _ := quant.RowBytes(ti.Type, ne0)
	data := f.TensorData(ti)
	n := min(rows, 8)
	x := make([]float32, n*ne0)
	if err := quant.Dequantize(ti.Type, data[:n*rb], x); err != nil {
		t.Fatalf("%s: %v", ti.Name, err)
	}
	var sum, sq float64
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("%s: non-finite value", ti.Name)
		}
		sum += float64(v)
	}
	mean := sum / float64(len(x))
	for _, v := range x {
		sq += (float64(v) - mean) * (float64(v) - mean)
	}
	std := math.Sqrt(sq / float64(len(x)))
	switch kind {
	case KindWeight, KindBias:
		if math.Abs(mean) > 0.01 || std < 0.015 || std > 0.025 {
			t.Errorf("%s (%v): mean %.4f std %.4f, want about 0 and 0.02", ti.Name, ti.Type, mean, std)
		}
	case KindNorm:
		if math.Abs(mean-1) > 0.02 || std < 0.03 || std > 0.07 {
			t.Errorf("%s: mean %.4f std %.4f, want about 1 and 0.05", ti.Name, mean, std)
		}
	case KindRopeFreqs:
		if x[0] != 1 {
			t.Errorf("%s starts at %v, want 1", ti.Name, x[0])
		}
	}
}

func TestSynthDeterministic(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, opts Options) []byte {
		p := filepath.Join(dir, name)
		if err := Write(p, opts); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	opts := Options{Shape: Shapes["tiny-qwen2"], Type: "Q4_K_M", Seed: 3, Threads: 1}
	a := write("a.gguf", opts)
	opts.Threads = 3
	b := write("b.gguf", opts)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed, different thread counts: files differ")
	}
	opts.Seed = 4
	c := write("c.gguf", opts)
	if len(c) != len(a) || bytes.Equal(a, c) {
		t.Fatalf("seed 4 vs 3: sizes %d %d, equal %v; want same size, different bytes", len(c), len(a), bytes.Equal(a, c))
	}
	opts.Fast = true
	d := write("d.gguf", opts)
	opts.Threads = 1
	e := write("e.gguf", opts)
	if !bytes.Equal(d, e) || len(d) != len(c) || bytes.Equal(c, d) {
		t.Fatal("Fast: not deterministic across thread counts, or same bytes as a full quantization")
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(dir)
	if len(ents) != 5 {
		t.Errorf("%d files in the output directory, want 5", len(ents))
	}
}

var tokTexts = []string{
	"Hello, wörld! 🦙",
	"Once upon a time, there was a little girl named Lily.",
	"  leading spaces and\ttabs\nnewlines 12345 ",
	"",
}

func TestSynthTokenizerCopy(t *testing.T) {
	srcPath := testenv.Shared(t, "models", "stories260K.gguf")
	src, err := gguf.Open(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want, err := tokenizer.FromGGUF(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, vocab := range []int{0, 600} {
		opts := Options{Shape: Shapes["smollm2-135m"], Type: "Q8_0", Layers: 1, Vocab: vocab, TokenizerPath: srcPath}
		if vocab == 0 {
			// The shape's 49152 rows would be slow to write here; a
			// tokenizer larger than an explicit vocabulary is an error,
			// and one the same size is copied as is.
			opts.Vocab = 512
		}
		path := filepath.Join(dir, fmt.Sprintf("v%d.gguf", vocab))
		if err := Write(path, opts); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tokenizer.FromGGUF(f)
		if err != nil {
			t.Fatal(err)
		}
		if got.VocabSize() != opts.Vocab {
			t.Errorf("vocab %d, want %d", got.VocabSize(), opts.Vocab)
		}
		for _, kv := range src.KVs {
			if !isTokenizerKey(kv.Key) {
				continue
			}
			v, ok := f.Get(kv.Key)
			if !ok || v.Type != kv.Value.Type {
				t.Errorf("key %s: %v %v, want type %v", kv.Key, v.Type, ok, kv.Value.Type)
			} else if opts.Vocab == 512 && v.String() != kv.Value.String() {
				t.Errorf("key %s = %v, want %v", kv.Key, v, kv.Value)
			}
		}
		for _, s := range tokTexts {
			for _, special := range []bool{false, true} {
				a, b := want.Encode(s, special, special), got.Encode(s, special, special)
				if fmt.Sprint(a) != fmt.Sprint(b) {
					t.Errorf("vocab %d: Encode(%q) = %v, source gives %v", opts.Vocab, s, b, a)
				}
			}
		}
		f.Close()
	}
	// A tokenizer larger than an explicit vocabulary is refused; without
	// one the vocabulary grows to the tokenizer's.
	opts := Options{Shape: Shapes["tiny-llama"], Type: "Q8_0", Vocab: 300, TokenizerPath: srcPath}
	if err := Write(filepath.Join(dir, "x.gguf"), opts); err == nil || !strings.Contains(err.Error(), "512 tokens") {
		t.Errorf("tokenizer larger than the vocabulary: err = %v", err)
	}
	small := Shapes["tiny-llama"]
	small.Vocab = 320
	s, _, _, err := (&Options{Shape: small, Tokenizer: src}).resolve()
	if err != nil || s.Vocab != 512 {
		t.Errorf("vocab %d, %v; want 512 (the tokenizer's)", s.Vocab, err)
	}
}

// TestSynthTokenizerLlama3 copies a real 128256-token Llama 3 vocabulary
// into a shape with a smaller one, which grows to the tokenizer's size.
func TestSynthTokenizerLlama3(t *testing.T) {
	srcPath := testenv.Shared(t, "tokenizer", "ggml-vocab-llama3-bpe.gguf")
	src, err := gguf.Open(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want, err := tokenizer.FromGGUF(src)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	opts := Options{Shape: Shapes["tiny-llama"], Type: "Q4_0", Layers: 1, Tokenizer: src, Fast: true}
	if err := Write(path, opts); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	ti, _ := f.Tensor("token_embd.weight")
	if got.VocabSize() != 128256 || ti.Dims[1] != 128256 {
		t.Errorf("vocab %d, token_embd %v; want 128256", got.VocabSize(), ti.Dims)
	}
	if got.Pre() != want.Pre() || got.BOS() != want.BOS() || got.EOT() != want.EOT() {
		t.Errorf("pre %q bos %d eot %d; source %q %d %d", got.Pre(), got.BOS(), got.EOT(), want.Pre(), want.BOS(), want.EOT())
	}
	for _, s := range append(tokTexts, "<|start_header_id|>user<|end_header_id|>\n\nHi 3333 ?!<|eot_id|>") {
		a, b := want.Encode(s, true, true), got.Encode(s, true, true)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("Encode(%q) = %v, source gives %v", s, b, a)
		}
	}
}

func TestSynthBuiltinTokenizer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := Write(path, Options{Shape: Shapes["tiny-llama"], Type: "Q4_0", Vocab: 1000}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 1000 || tok.Kind() != "gpt2" {
		t.Errorf("vocab %d kind %s", tok.VocabSize(), tok.Kind())
	}
	for _, s := range tokTexts {
		ids := tok.Encode(s, false, false)
		if len(ids) != len(s) {
			t.Errorf("Encode(%q): %d tokens for %d bytes", s, len(ids), len(s))
		}
		if got := tok.Decode(ids); got != s {
			t.Errorf("round trip %q -> %v -> %q", s, ids, got)
		}
	}
	ids := tok.Encode("Hello, wörld! 🦙", true, false)
	if len(ids) == 0 || ids[0] != tok.BOS() || tok.Token(tok.BOS()) != BuiltinBOS {
		t.Errorf("Encode with specials = %v; want BOS %s first", ids, BuiltinBOS)
	}
	im, _ := tok.TokenID(BuiltinIMEnd)
	if !tok.IsEOG(im) || !tok.IsEOG(tok.EOS()) || tok.EOT() != im {
		t.Errorf("EOG: im_end %d eos %d eot %d", im, tok.EOS(), tok.EOT())
	}
	if got := tok.Encode("<|im_start|>user", false, true); len(got) != 5 || got[0] != im-1 {
		t.Errorf("special parsing: %v", got)
	}
	if id, ok := tok.TokenID("<|reserved_0|>"); !ok || !tok.IsControl(id) {
		t.Errorf("reserved token %d %v", id, ok)
	}
	src, ok := f.String("tokenizer.chat_template")
	if !ok {
		t.Fatal("no chat template")
	}
	tmpl, err := template.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.RenderChat([]any{map[string]any{"role": "user", "content": "hi"}}, template.ChatOptions{AddGenerationPrompt: true})
	if want := "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"; err != nil || out != want {
		t.Errorf("chat template renders %q, %v; want %q", out, err, want)
	}
	if id, ok := tok.TokenID("<|reserved_255|>"); !ok || id != 515 {
		t.Errorf("<|reserved_255|> is %d %v, want 515", id, ok)
	}
	if got := tok.Decode([]int32{516, 517, 516 + 75}); got != " ba be baba" {
		t.Errorf("pseudo-words decode to %q", got)
	}
	if _, err := builtinTokenizer(MinBuiltinVocab - 1); err == nil {
		t.Error("built-in tokenizer in a too-small vocabulary")
	}
	// A full-size vocabulary has unique tokens.
	kvs, err := builtinTokenizer(152064)
	if err != nil {
		t.Fatal(err)
	}
	toks, _ := kvs[2].Value.Strings()
	seen := map[string]bool{}
	for _, s := range toks {
		if seen[s] {
			t.Fatalf("duplicate token %q", s)
		}
		seen[s] = true
	}
	if len(toks) != 152064 {
		t.Errorf("%d tokens", len(toks))
	}
}

func TestSynthParseRef(t *testing.T) {
	o, ok, err := ParseRef("dummy:smollm2-135m:q4_k")
	if !ok || err != nil || o.Shape.Name != "smollm2-135m" || o.Type != "Q4_K_M" {
		t.Errorf("ParseRef = %+v %v %v", o, ok, err)
	}
	if CanonicalRef(o) != "dummy:smollm2-135m:Q4_K_M" {
		t.Errorf("CanonicalRef = %s", CanonicalRef(o))
	}
	if o, ok, err := ParseRef("dummy:llama-3.2-1b"); !ok || err != nil || o.Type != DefaultType {
		t.Errorf("no type: %+v %v %v", o, ok, err)
	}
	if _, ok, err := ParseRef("models/x.gguf"); ok || err != nil {
		t.Errorf("path: ok %v err %v", ok, err)
	}
	for _, bad := range []string{"dummy:", "dummy:nope:Q4_0", "dummy:smollm2-135m:Q9"} {
		if _, ok, err := ParseRef(bad); !ok || err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParseRef(%q): ok %v err %v", bad, ok, err)
		}
	}
}

func TestSynthCached(t *testing.T) {
	dir := t.TempDir()
	p, err := Cached("dummy:tiny-llama:q4_0", dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != "tiny-llama-Q4_0.gguf" || filepath.Dir(p) != dir {
		t.Errorf("path %s", p)
	}
	st1, _ := os.Stat(p)
	time.Sleep(10 * time.Millisecond)
	p2, err := Cached("dummy:tiny-llama:Q4_0", dir)
	if err != nil || p2 != p {
		t.Fatalf("second call: %s %v", p2, err)
	}
	if st2, _ := os.Stat(p); !st2.ModTime().Equal(st1.ModTime()) {
		t.Error("cached file was regenerated")
	}
	// A damaged file is regenerated.
	os.WriteFile(p, []byte("GGUF garbage"), 0o644)
	if _, err := Cached("dummy:tiny-llama:Q4_0", dir); err != nil {
		t.Fatal(err)
	}
	if err := gguf.ValidateHeader(p); err != nil {
		t.Errorf("after regeneration: %v", err)
	}
	t.Setenv("SLUICE_HOME", filepath.Join(dir, "home"))
	if d, _ := DefaultCacheDir(); d != filepath.Join(dir, "home", "dummy") {
		t.Errorf("DefaultCacheDir = %s", d)
	}
	if _, err := Cached("models/x.gguf", dir); err == nil {
		t.Error("non-dummy reference accepted")
	}
}

func TestSynthCancel(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := WriteContext(ctx, filepath.Join(dir, "m.gguf"), Options{Shape: Shapes["tiny-llama"], Type: "Q4_K_M"})
	if err == nil {
		t.Fatal("cancelled write succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %d files behind", len(ents))
	}
}

func TestSynthProgress(t *testing.T) {
	var buf bytes.Buffer
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := Write(path, Options{Shape: Shapes["tiny-qwen2"], Type: "Q8_0", Progress: &buf}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "synth tiny-qwen2 Q8_0: 38 tensors") || !strings.Contains(out, "wrote "+path) {
		t.Errorf("progress output:\n%s", out)
	}
}

// BenchmarkSynthSmolLM2Q4_0 writes the full smollm2-135m shape in Q4_0.
func BenchmarkSynthSmolLM2Q4_0(b *testing.B) {
	path := filepath.Join(b.TempDir(), "m.gguf")
	for i := 0; i < b.N; i++ {
		if err := Write(path, Options{Shape: Shapes["smollm2-135m"], Type: "Q4_0"}); err != nil {
			b.Fatal(err)
		}
	}
	if st, err := os.Stat(path); err == nil {
		b.ReportMetric(float64(st.Size())/1e6, "MB")
	}
}

// TestSynthMatchesGGUFWriter rebuilds a written file with gguf.Writer from
// its own metadata and tensor data: the streamed file must be byte for byte
// what the writer produces.
func TestSynthMatchesGGUFWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := Write(path, Options{Shape: Shapes["tiny-qwen2"], Type: "Q4_K_M", Vocab: 300}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := gguf.NewWriter()
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
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, buf.Bytes()) {
		t.Fatalf("streamed file (%d bytes) differs from gguf.Writer's (%d bytes)", len(got), buf.Len())
	}
}

// TestPlanFusedQKV checks llama-quantize's type for phi3's fused attn_qkv
// (category ATTENTION_QKV in llama_tensor_get_type): one step up in the
// _M mixes, the base type elsewhere.
func TestPlanFusedQKV(t *testing.T) {
	for typ, want := range map[string]quant.Type{"Q4_K_M": quant.Q5_K, "Q5_K_M": quant.Q6_K, "Q3_K_M": quant.Q4_K, "Q4_0": quant.Q4_0} {
		m := planTypes(t, "phi-3-mini", typ)
		if got := m["blk.0.attn_qkv.weight"]; got != want {
			t.Errorf("phi-3-mini %s: attn_qkv %v, want %v", typ, got, want)
		}
	}
}
