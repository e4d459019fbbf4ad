package model

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/quant"
)

// rewrite copies a shared model into a temporary GGUF, letting edit change
// metadata (return the value to store, or nil to drop the key) and tensors
// (return false to drop one; it may change the TensorInfo's type and dims
// and the data it points to).
func rewrite(t *testing.T, file string,
	editKV func(key string, v gguf.Value) any,
	editTensor func(ti *gguf.TensorInfo, data *[]byte) bool,
	extra func(w *gguf.Writer)) string {
	t.Helper()
	return rewriteFile(t, testenv.Shared(t, "models", file), editKV, editTensor, extra)
}

// rewriteFile is rewrite for a model at any path.
func rewriteFile(t *testing.T, path string,
	editKV func(key string, v gguf.Value) any,
	editTensor func(ti *gguf.TensorInfo, data *[]byte) bool,
	extra func(w *gguf.Writer)) string {
	t.Helper()
	src, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	w := gguf.NewWriter()
	for _, kv := range src.KVs {
		var v any = kv.Value
		if editKV != nil {
			v = editKV(kv.Key, kv.Value)
		}
		if v == nil {
			continue
		}
		if err := w.Set(kv.Key, v); err != nil {
			t.Fatal(err)
		}
	}
	for i := range src.Tensors {
		ti := src.Tensors[i]
		ti.Dims = append([]uint64(nil), ti.Dims...)
		data := src.TensorData(&ti)
		if editTensor != nil && !editTensor(&ti, &data) {
			continue
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, data); err != nil {
			t.Fatal(err)
		}
	}
	if extra != nil {
		extra(w)
	}
	out := filepath.Join(t.TempDir(), "edited.gguf")
	if err := w.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// loadPath loads a GGUF file on the test backend, returning Load's error.
func loadPath(t *testing.T, path string) (*Model, error) {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(f, testBackend(t), Options{})
	if err != nil {
		f.Close()
		return nil, err
	}
	t.Cleanup(func() { m.Close(); f.Close() })
	return m, nil
}

func TestLoadErrors(t *testing.T) {
	const file = "stories260K.gguf"
	setKV := func(key string, val any) func(string, gguf.Value) any {
		return func(k string, v gguf.Value) any {
			if k == key {
				return val
			}
			return v
		}
	}
	dropKV := func(key string) func(string, gguf.Value) any {
		return func(k string, v gguf.Value) any {
			if k == key {
				return nil
			}
			return v
		}
	}
	cases := []struct {
		name   string
		kv     func(string, gguf.Value) any
		tensor func(*gguf.TensorInfo, *[]byte) bool
		extra  func(*gguf.Writer)
		want   []string
	}{
		{name: "unsupported architecture", kv: setKV("general.architecture", "mamba"),
			want: []string{`unsupported architecture "mamba"`}},
		{name: "known unsupported architecture", kv: setKV("general.architecture", "gemma3"),
			want: []string{`unsupported architecture "gemma3": needs sliding-window attention`}},
		{name: "missing architecture", kv: dropKV("general.architecture"),
			want: []string{"general.architecture is missing"}},
		{name: "missing tensor", tensor: func(ti *gguf.TensorInfo, _ *[]byte) bool { return ti.Name != "blk.2.ffn_up.weight" },
			want: []string{"blk.2.ffn_up.weight is missing", "[64, 172]"}},
		{name: "missing norm", tensor: func(ti *gguf.TensorInfo, _ *[]byte) bool { return ti.Name != "output_norm.weight" },
			want: []string{"output_norm.weight is missing"}},
		{name: "transposed tensor", tensor: func(ti *gguf.TensorInfo, _ *[]byte) bool {
			if ti.Name == "blk.1.attn_k.weight" {
				ti.Dims[0], ti.Dims[1] = ti.Dims[1], ti.Dims[0]
			}
			return true
		}, want: []string{"blk.1.attn_k.weight has shape [32 64], want [64, 32]"}},
		{name: "norm type", tensor: func(ti *gguf.TensorInfo, d *[]byte) bool {
			if ti.Name == "blk.0.ffn_norm.weight" {
				ti.Type = quant.F16
				*d = make([]byte, 2*64)
			}
			return true
		}, want: []string{"blk.0.ffn_norm.weight has type F16, want F32"}},
		{name: "missing hyperparameter", kv: dropKV("llama.embedding_length"),
			want: []string{"llama.embedding_length is missing"}},
		{name: "bad head count", kv: setKV("llama.attention.head_count_kv", uint32(3)),
			want: []string{"head_count_kv=3"}},
		{name: "string hyperparameter", kv: setKV("llama.block_count", "five"),
			want: []string{"llama.block_count", "not a non-negative integer"}},
		{name: "yarn", kv: setKV("llama.rope.freq_base", float32(10000)), extra: func(w *gguf.Writer) {
			w.Set("llama.rope.scaling.type", "yarn")
		}, want: []string{`rope.scaling.type="yarn" is not supported`}},
		{name: "mixture of experts", extra: func(w *gguf.Writer) { w.Set("llama.expert_count", uint32(8)) },
			want: []string{"8 experts"}},
		{name: "negative rope base", extra: func(w *gguf.Writer) { w.Set("llama.rope.freq_base", float32(-1)) },
			want: []string{"llama.rope.freq_base=-1", "positive"}},
		{name: "zero rope base", extra: func(w *gguf.Writer) { w.Set("llama.rope.freq_base", float32(0)) },
			want: []string{"llama.rope.freq_base=0", "positive"}},
		{name: "NaN norm epsilon", kv: setKV("llama.attention.layer_norm_rms_epsilon", float32(math.NaN())),
			want: []string{"layer_norm_rms_epsilon=NaN"}},
		{name: "negative norm epsilon", kv: setKV("llama.attention.layer_norm_rms_epsilon", float32(-1e-5)),
			want: []string{"layer_norm_rms_epsilon=-1e-05", "non-negative"}},
		{name: "infinite attention scale", extra: func(w *gguf.Writer) { w.Set("llama.attention.scale", float32(math.Inf(1))) },
			want: []string{"llama.attention.scale=+Inf"}},
		{name: "infinite rope factor", extra: func(w *gguf.Writer) {
			w.Set("llama.rope.scaling.type", "linear")
			w.Set("llama.rope.scaling.factor", float32(math.Inf(1)))
		}, want: []string{"not finite"}},
		{name: "huge block count", kv: setKV("llama.block_count", uint32(math.MaxInt32)),
			want: []string{"llama.block_count=2147483647", "only 48 tensors"}},
		{name: "vocab size", extra: func(w *gguf.Writer) { w.Set("llama.vocab_size", uint32(1000)) },
			want: []string{"vocab_size=1000", "512 rows"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadPath(t, rewrite(t, file, c.kv, c.tensor, c.extra))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			t.Log(err)
		})
	}
}

func TestConfig(t *testing.T) {
	be := testBackend(t)
	c := loadModel(t, be, "stories260K.gguf").Config()
	want := Config{Arch: "llama", VocabSize: 512, Dim: 64, Layers: 5, Heads: 8, KVHeads: 4, HeadDim: 8, FFNDim: 172,
		RopeDims: 8, RopeBase: 10000, RopeScale: 1, RopeScaling: "none", AttnScale: float32(1 / math.Sqrt(8))}
	if c.Arch != want.Arch || c.VocabSize != want.VocabSize || c.Dim != want.Dim || c.Layers != want.Layers ||
		c.Heads != want.Heads || c.KVHeads != want.KVHeads || c.HeadDim != want.HeadDim || c.FFNDim != want.FFNDim ||
		c.RopeDims != want.RopeDims || c.RopeBase != want.RopeBase || c.RopeScale != want.RopeScale ||
		c.RopeScaling != want.RopeScaling || c.AttnScale != want.AttnScale || c.RopeNeoX || c.QKVBias {
		t.Errorf("stories260K config %+v", c)
	}
	if c.NormEps <= 0 || c.NormEps > 1e-4 || c.BOS != 1 || len(c.EOS) == 0 {
		t.Errorf("stories260K eps %g bos %d eos %v", c.NormEps, c.BOS, c.EOS)
	}
	if got := c.KVBytesPerToken(quant.F16); got != 2*5*32*2 {
		t.Errorf("KVBytesPerToken(F16) = %d", got)
	}

	q := loadModel(t, be, "synth-qwen2-q4_0.gguf").Config()
	if q.Arch != "qwen2" || !q.RopeNeoX || !q.QKVBias || !q.TiedOutput || q.RopeBase != 1e6 ||
		q.Heads != 2 || q.KVHeads != 1 || q.HeadDim != 128 || q.Layers != 3 || q.FFNDim != 512 {
		t.Errorf("synth-qwen2 config %+v", q)
	}
	l := loadModel(t, be, "synth-llama-q6_k.gguf").Config()
	if l.TiedOutput || l.HeadDim != 32 || l.KVHeads != 4 || l.Dim != 256 {
		t.Errorf("synth-llama config %+v", l)
	}
}

// TestReadConfig checks that ReadConfig, which reads no weights, agrees
// with Load on every shared model.
func TestReadConfig(t *testing.T) {
	be := testBackend(t)
	files, err := filepath.Glob(filepath.Join(testenv.Shared(t, "models"), "*.gguf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no shared models: %v", err)
	}
	for _, path := range files {
		f, err := gguf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadConfig(f)
		if err != nil {
			t.Errorf("%s: ReadConfig: %v", filepath.Base(path), err)
			f.Close()
			continue
		}
		m, err := Load(f, be, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if want := m.Config(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: ReadConfig %+v\n      Load %+v", filepath.Base(path), got, want)
		}
		m.Close()
		f.Close()
	}
	// Errors name the key at fault, as Load's do.
	path := rewrite(t, "stories260K.gguf", func(k string, v gguf.Value) any {
		if k == "llama.block_count" {
			return nil
		}
		return v
	}, nil, nil)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := ReadConfig(f); err == nil || !strings.Contains(err.Error(), "llama.block_count") {
		t.Errorf("ReadConfig without block_count: %v", err)
	}
}

// TestRopeScalingMetadata checks that linear scaling and llama3-style
// rope_freqs are read from the file and reach the rope parameters.
func TestRopeScalingMetadata(t *testing.T) {
	const file = "stories260K.gguf"
	path := rewrite(t, file, nil, nil, func(w *gguf.Writer) {
		w.Set("llama.rope.scaling.type", "linear")
		w.Set("llama.rope.scaling.factor", float32(4))
		freqs := make([]byte, 4*4)
		for i := range 4 {
			binary.LittleEndian.PutUint32(freqs[4*i:], math.Float32bits(float32(1+i)))
		}
		if err := w.AddTensor("rope_freqs.weight", quant.F32, []uint64{4}, freqs); err != nil {
			t.Fatal(err)
		}
	})
	m, err := loadPath(t, path)
	if err != nil {
		t.Fatal(err)
	}
	c := m.Config()
	if c.RopeScale != 0.25 || c.RopeScaling != "llama3" || len(m.rope.Freqs) != 4 || m.rope.Freqs[3] != 4 || m.rope.Scale != 0.25 {
		t.Errorf("config %+v, rope %+v", c, m.rope)
	}
	// The scaled model runs and differs from the unscaled one.
	s, err := NewSession(m, 1, 16, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	toks := []int32{1, 403, 407, 261, 378}
	got, err := s.Prefill(0, toks, 0)
	if err != nil {
		t.Fatal(err)
	}
	plain := allLogits(t, loadModel(t, m.Backend(), file), toks, SessionOptions{})
	if rowDiff(got, plain[len(toks)-1]) == 0 {
		t.Error("rope scaling changed nothing")
	}
}

func TestFingerprint(t *testing.T) {
	be := testBackend(t)
	a := loadModel(t, be, "stories260K.gguf").Fingerprint()
	b := loadModel(t, be, "stories260K.gguf").Fingerprint()
	c := loadModel(t, be, "synth-llama-q4_0.gguf").Fingerprint()
	d := loadModel(t, be, "synth-llama-q8_0.gguf").Fingerprint()
	if a != b || len(a) != 64 {
		t.Errorf("fingerprint not stable: %s %s", a, b)
	}
	if a == c || c == d {
		t.Errorf("different models share a fingerprint: %s %s %s", a, c, d)
	}
	// Same shapes and types, one weight changed: a fine-tune.
	path := rewrite(t, "stories260K.gguf", nil, func(ti *gguf.TensorInfo, data *[]byte) bool {
		if ti.Name == "blk.0.attn_q.weight" {
			*data = append([]byte(nil), *data...)
			(*data)[0] ^= 1
		}
		return true
	}, nil)
	m, err := loadPath(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if m.Fingerprint() == a {
		t.Error("changing a weight kept the fingerprint")
	}
	same, err := loadPath(t, rewrite(t, "stories260K.gguf", nil, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if same.Fingerprint() != a {
		t.Error("a byte-for-byte rewrite changed the fingerprint")
	}
}

// TestGenerate checks the greedy driver against llama.cpp's continuation
// of the first golden prompt, with and without chunked prefill.
func TestGenerate(t *testing.T) {
	be := testBackend(t)
	m := loadModel(t, be, "stories260K.gguf")
	g := readGolden(t, "stories260K")[0]
	s, err := NewSession(m, 2, 128, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for seq, chunk := range []int{0, 3} {
		out, err := s.Generate(seq, g.PromptTokens, len(g.Generated), chunk, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !equalIDs(out, g.Generated) {
			t.Errorf("chunk %d: generated %v, llama.cpp %v", chunk, out, g.Generated)
		}
	}
	if _, err := s.Generate(0, g.PromptTokens, 200, 0, nil); err == nil || !strings.Contains(err.Error(), "exceed") {
		t.Errorf("overflowing the session: %v", err)
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWeightsAreMapped checks that on the CPU backend the weights are the
// file's mapped bytes, not copies.
func TestWeightsAreMapped(t *testing.T) {
	be := testBackend(t)
	if be.Name() != "cpu" {
		t.Skip("host-memory check is for the cpu backend")
	}
	f, err := gguf.Open(testenv.Shared(t, "models", "synth-llama-q4_k_m.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(f, be, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for name, w := range map[string][]byte{
		"token_embd.weight":        m.tokEmbd.Host,
		"output.weight":            m.output.Host,
		"blk.3.ffn_down.weight":    m.layers[3].wDown.Host,
		"blk.0.attn_norm.weight":   m.layers[0].attnNorm.Host,
		"blk.2.attn_output.weight": m.layers[2].wo.Host,
	} {
		ti, _ := f.Tensor(name)
		d := f.TensorData(ti)
		if len(w) != len(d) || &w[0] != &d[0] {
			t.Errorf("%s is not the mapped file data", name)
		}
	}
}
