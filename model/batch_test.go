package model

import (
	"math"
	"strings"
	"testing"
)

// goldenSequences returns the golden prompts of a model with their
// continuations appended: realistic token sequences of 12 to 240 tokens.
func goldenSequences(t *testing.T, name string) [][]int32 {
	var seqs [][]int32
	for _, g := range readGolden(t, name) {
		seqs = append(seqs, append(append([]int32(nil), g.PromptTokens...), g.Generated...))
	}
	return seqs
}

// rowDiff is max |a−b| relative to the largest |b|.
func rowDiff(a, b []float32) float64 {
	var d, scale float64 = 0, 1
	for j := range b {
		scale = math.Max(scale, math.Abs(float64(b[j])))
		d = math.Max(d, math.Abs(float64(a[j])-float64(b[j])))
	}
	return d / scale
}

// batchModels are the models the batching tests run on: llama with F32
// weights, qwen2 (biases, NeoX rope, one KV head) quantized.
var batchModels = []string{"stories260K", "synth-qwen2-q8_0", "synth-llama-q4_k_m"}

// batchTol is the allowed relative difference between the same token
// computed in different batch shapes. Each row's arithmetic does not depend
// on the other rows, so this is exact unless a kernel changes its blocking
// with the batch size.
const batchTol = 1e-5

// TestMixedBatch runs several sequences at different positions through
// one Forward per step (prefill chunks of different sizes mixed with
// single-token steps, some asking for all logits, some for the last only)
// and checks every logits row against each sequence run alone.
func TestMixedBatch(t *testing.T) {
	be := testBackend(t)
	for _, name := range batchModels {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, be, name+".gguf")
			seqs := goldenSequences(t, name)
			want := make([][][]float32, len(seqs))
			maxLen := 0
			for i, toks := range seqs {
				want[i] = allLogits(t, m, toks, SessionOptions{})
				maxLen = max(maxLen, len(toks))
			}
			// Block size 5 so sequences span many blocks.
			s, err := NewSession(m, len(seqs), maxLen, SessionOptions{BlockSize: 5})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			chunks := []int{7, 1, 13, 1, 3, 40, 1}
			var worst float64
			rows, steps := 0, 0
			for step := 0; ; step++ {
				var inputs []Input
				for i, toks := range seqs {
					done := s.Len(i)
					if done == len(toks) || (i+step)%5 == 4 { // finished, or sits this step out
						continue
					}
					n := min(chunks[(i+step)%len(chunks)], len(toks)-done)
					w := WantAll
					if step%3 == 1 {
						w = WantLast
					}
					inputs = append(inputs, Input{Seq: i, Tokens: toks[done : done+n], Want: w})
				}
				if len(inputs) == 0 {
					if step > 1000 {
						t.Fatal("schedule does not finish")
					}
					if allDone(s, seqs) {
						break
					}
					continue
				}
				before := make([]int, len(seqs))
				for i := range seqs {
					before[i] = s.Len(i)
				}
				if err := s.Feed(inputs...); err != nil {
					t.Fatal(err)
				}
				steps++
				r := 0
				for _, in := range inputs {
					first := 0
					if in.Want == WantLast {
						first = len(in.Tokens) - 1
					}
					for k := first; k < len(in.Tokens); k++ {
						pos := before[in.Seq] + k
						d := rowDiff(s.Row(r), want[in.Seq][pos])
						worst = math.Max(worst, d)
						if d > batchTol {
							t.Errorf("step %d: sequence %d position %d differs from running it alone by %.3g", step, in.Seq, pos, d)
						}
						r++
					}
				}
				rows += r
			}
			t.Logf("%s: %d mixed steps, %d logits rows, max relative difference from one-at-a-time %.3g", name, steps, rows, worst)
		})
	}
}

func allDone(s *Session, seqs [][]int32) bool {
	for i, toks := range seqs {
		if s.Len(i) != len(toks) {
			return false
		}
	}
	return true
}

// TestChunkedPrefill checks that a prompt fed in chunks (with different KV
// block sizes, and an F32 cache) gives the logits of one-shot prefill.
func TestChunkedPrefill(t *testing.T) {
	be := testBackend(t)
	for _, name := range batchModels {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, be, name+".gguf")
			seqs := goldenSequences(t, name)
			toks := seqs[len(seqs)-1]
			for _, kvF32 := range []bool{false, true} {
				want := allLogits(t, m, toks, SessionOptions{KVF32: kvF32})
				for _, c := range []struct{ chunk, block int }{{1, 16}, {5, 16}, {16, 16}, {64, 3}, {100, 32}} {
					s, err := NewSession(m, 1, len(toks), SessionOptions{BlockSize: c.block, KVF32: kvF32})
					if err != nil {
						t.Fatal(err)
					}
					var worst float64
					for off := 0; off < len(toks); off += c.chunk {
						end := min(off+c.chunk, len(toks))
						if err := s.Feed(Input{Seq: 0, Tokens: toks[off:end], Want: WantAll}); err != nil {
							t.Fatal(err)
						}
						for k := off; k < end; k++ {
							worst = math.Max(worst, rowDiff(s.Row(k-off), want[k]))
						}
					}
					s.Reset(0)
					last, err := s.Prefill(0, toks, c.chunk)
					if err != nil {
						t.Fatal(err)
					}
					worst = math.Max(worst, rowDiff(last, want[len(toks)-1]))
					s.Close()
					if worst > batchTol {
						t.Errorf("chunks of %d, block size %d, F32 cache %v: max relative difference %.3g from one-shot", c.chunk, c.block, kvF32, worst)
					} else {
						t.Logf("chunks of %d, block size %d, F32 cache %v: max relative difference %.3g", c.chunk, c.block, kvF32, worst)
					}
				}
			}
		})
	}
}

// TestOutputOrder asks for logits rows in an arbitrary order with repeats
// and checks each against the all-rows run.
func TestOutputOrder(t *testing.T) {
	be := testBackend(t)
	m := loadModel(t, be, "synth-qwen2-q4_0.gguf")
	toks := goldenSequences(t, "synth-qwen2-q4_0")[1][:20]
	want := allLogits(t, m, toks, SessionOptions{})
	kv, err := m.NewKVCache(2, 16, DefaultKVType)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Free()
	b := &Batch{}
	b.BlockTables, b.MaxBlocks, b.BlockSize = []int32{1, 0}, 2, 16 // blocks in reverse order
	for i, tok := range toks {
		b.Add(tok, 0, int32(i), false)
	}
	b.Outputs = []int32{19, 3, 0, 3, 11}
	if err := m.Forward(b, kv); err != nil {
		t.Fatal(err)
	}
	if got := len(m.Logits()); got != len(b.Outputs)*m.Config().VocabSize {
		t.Fatalf("Logits() has %d values, want %d rows", got, len(b.Outputs))
	}
	for j, r := range b.Outputs {
		if d := rowDiff(m.LogitsRow(j), want[r]); d > batchTol {
			t.Errorf("logits row %d (batch row %d) differs by %.3g", j, r, d)
		}
	}
}

// TestForwardRejectsBadBatches checks that malformed batches are refused
// with an error before any kernel runs.
func TestForwardRejectsBadBatches(t *testing.T) {
	be := testBackend(t)
	m := loadModel(t, be, "stories260K.gguf")
	kv, err := m.NewKVCache(4, 8, DefaultKVType)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Free()
	good := func() *Batch {
		b := &Batch{}
		b.BlockTables, b.MaxBlocks, b.BlockSize = []int32{0, 1, 2, 3}, 2, 8
		b.Add(1, 0, 0, false)
		b.Add(5, 1, 3, true)
		return b
	}
	if err := m.Forward(good(), kv); err != nil {
		t.Fatalf("good batch: %v", err)
	}
	cases := []struct {
		name, msg string
		edit      func(b *Batch)
	}{
		{"empty", "empty batch", func(b *Batch) { b.Reset() }},
		{"token", "outside the vocabulary", func(b *Batch) { b.Tokens[1] = 512 }},
		{"negative token", "outside the vocabulary", func(b *Batch) { b.Tokens[0] = -1 }},
		{"sequence", "sequence 2", func(b *Batch) { b.Seq[1] = 2 }},
		{"position", "outside the block table", func(b *Batch) { b.Pos[1] = 16 }},
		{"slot", "has slot", func(b *Batch) { b.Slots[1] = 0 }},
		{"block id", "the KV cache has 4", func(b *Batch) { b.BlockTables[2] = 9; b.Slots[1] = 9*8 + 3 }},
		{"lengths", "positions", func(b *Batch) { b.Pos = b.Pos[:1] }},
		{"block size", "block size", func(b *Batch) { b.BlockSize = 4 }},
		{"outputs", "names batch row", func(b *Batch) { b.Outputs = []int32{2} }},
	}
	for _, c := range cases {
		b := good()
		c.edit(b)
		err := m.Forward(b, kv)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: got error %v, want one mentioning %q", c.name, err, c.msg)
		}
	}
}

// TestSteadyStateAllocs checks that decoding allocates nothing once the
// buffers have grown to the batch sizes in use.
func TestSteadyStateAllocs(t *testing.T) {
	be := testBackend(t)
	m := loadModel(t, be, "synth-qwen2-q4_0.gguf")
	s, err := NewSession(m, 2, 512, SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	toks := goldenSequences(t, "synth-qwen2-q4_0")[1]
	if _, err := s.Prefill(0, toks[:10], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prefill(1, toks[:3], 0); err != nil {
		t.Fatal(err)
	}
	in := []Input{{Seq: 0, Tokens: toks[10:11]}, {Seq: 1, Tokens: toks[3:5], Want: WantAll}}
	if err := s.Feed(in...); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := s.Feed(in...); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per decode step", allocs)
	}
}
