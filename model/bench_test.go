package model

import (
	"testing"
)

// benchModels are the models the benchmarks run on.
var benchModels = []string{"stories260K", "synth-llama-q4_0"}

// BenchmarkPrefill64 measures prefill of a 64-token prompt in one batch
// (reported as prompt tokens per second).
func BenchmarkPrefill64(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			be := testBackend(b)
			m := loadModel(b, be, name+".gguf")
			toks := benchTokens(m, 64)
			s, err := NewSession(m, 1, len(toks), SessionOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ResetTimer()
			for b.Loop() {
				s.Reset(0)
				if _, err := s.Prefill(0, toks, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(toks))/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkDecode measures single-sequence greedy decoding after a 64-token
// prompt: one token per Forward, at positions 64..191 (tokens per second).
func BenchmarkDecode(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			be := testBackend(b)
			m := loadModel(b, be, name+".gguf")
			const prompt, gen = 64, 128
			toks := benchTokens(m, prompt)
			s, err := NewSession(m, 1, prompt+gen, SessionOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			logits, err := s.Prefill(0, toks, 0)
			if err != nil {
				b.Fatal(err)
			}
			tok := Argmax(logits)
			b.ResetTimer()
			for b.Loop() {
				if s.Len(0) == prompt+gen {
					s.lens[0] = prompt // rewind: decode the same positions again
				}
				if err := s.Feed(Input{Seq: 0, Tokens: []int32{tok}}); err != nil {
					b.Fatal(err)
				}
				tok = Argmax(s.Row(0))
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkDecodeBatch8 measures decoding 8 sequences together, one token
// each per Forward (tokens per second over all sequences).
func BenchmarkDecodeBatch8(b *testing.B) {
	for _, name := range benchModels {
		b.Run(name, func(b *testing.B) {
			be := testBackend(b)
			m := loadModel(b, be, name+".gguf")
			const seqs, prompt, gen = 8, 64, 128
			toks := benchTokens(m, prompt)
			s, err := NewSession(m, seqs, prompt+gen, SessionOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			inputs := make([]Input, seqs)
			next := make([]int32, seqs)
			for i := range inputs {
				if _, err := s.Prefill(i, toks[i:], 0); err != nil {
					b.Fatal(err)
				}
				next[i] = Argmax(s.Row(0))
				inputs[i] = Input{Seq: i, Tokens: next[i : i+1]}
			}
			b.ResetTimer()
			for b.Loop() {
				for i := range inputs {
					if s.Len(i) == prompt+gen {
						s.lens[i] = prompt - i
					}
				}
				if err := s.Feed(inputs...); err != nil {
					b.Fatal(err)
				}
				for i := range inputs {
					next[i] = Argmax(s.Row(i))
				}
			}
			b.ReportMetric(float64(b.N*seqs)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// benchTokens is a deterministic token sequence inside the vocabulary.
func benchTokens(m *Model, n int) []int32 {
	v := m.Config().VocabSize
	toks := make([]int32, n)
	for i := range toks {
		toks[i] = int32((i*7919 + 13) % v)
	}
	if m.Config().BOS >= 0 {
		toks[0] = m.Config().BOS
	}
	return toks
}
