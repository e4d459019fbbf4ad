package model

import (
	"fmt"
	"slices"

	"github.com/sluice-llm/sluice/quant"
)

// Session is a minimal driver for tests, benchmarks and the CLI (the real
// scheduler lives elsewhere): a KV cache with a fixed, contiguous block
// allocation for a fixed number of sequences. Sequence s owns blocks
// s*B .. s*B+B-1 (in order), where B = ceil(MaxTokens/BlockSize).
type Session struct {
	m         *Model
	kv        *KVCache
	maxTokens int
	lens      []int   // (numSeqs) tokens already in the cache per sequence
	next      []int   // (numSeqs) lens after the batch being built
	tables    []int32 // (numSeqs, blocksPerSeq) block tables
	batch     Batch
}

// SessionOptions configure NewSession.
type SessionOptions struct {
	BlockSize int  // KV block size in tokens; 0 means 16
	KVF32     bool // F32 KV cache instead of the default F16
}

// NewSession allocates a KV cache for numSeqs sequences of up to maxTokens
// tokens each.
func NewSession(m *Model, numSeqs, maxTokens int, opts SessionOptions) (*Session, error) {
	if numSeqs <= 0 || maxTokens <= 0 {
		return nil, fmt.Errorf("model: session needs at least one sequence and one token, got %d, %d", numSeqs, maxTokens)
	}
	bs := opts.BlockSize
	if bs <= 0 {
		bs = 16
	}
	typ := DefaultKVType
	if opts.KVF32 {
		typ = quant.F32
	}
	perSeq := (maxTokens + bs - 1) / bs
	kv, err := m.NewKVCache(numSeqs*perSeq, bs, typ)
	if err != nil {
		return nil, err
	}
	s := &Session{m: m, kv: kv, maxTokens: maxTokens, lens: make([]int, numSeqs)}
	s.tables = make([]int32, numSeqs*perSeq)
	for i := range s.tables {
		s.tables[i] = int32(i)
	}
	s.batch.BlockTables, s.batch.MaxBlocks, s.batch.BlockSize = s.tables, perSeq, bs
	return s, nil
}

// Close frees the session's KV cache (the Model stays usable).
func (s *Session) Close() { s.kv.Free() }

// Model returns the session's model.
func (s *Session) Model() *Model { return s.m }

// Len is the number of tokens of sequence seq already in the cache.
func (s *Session) Len(seq int) int { return s.lens[seq] }

// Reset forgets sequence seq's tokens (its blocks are simply overwritten).
func (s *Session) Reset(seq int) { s.lens[seq] = 0 }

// Want says which logits rows an Input asks for.
type Want int

const (
	WantLast Want = iota // the input's last token only
	WantAll              // every token of the input
	WantNone             // none: only fill the cache
)

// Input is one sequence's share of a Feed: tokens appended at the
// sequence's current length.
type Input struct {
	Seq    int
	Tokens []int32
	Want   Want
}

// Feed runs the inputs, which may belong to different sequences at
// different positions, as one batch. Logits rows come out in input order
// (per input: its last row, all rows, or none) and are read with Row until
// the next Feed or Forward on the model.
func (s *Session) Feed(inputs ...Input) error {
	b := &s.batch
	b.Reset()
	s.next = append(s.next[:0], s.lens...)
	for _, in := range inputs {
		if in.Seq < 0 || in.Seq >= len(s.lens) {
			return fmt.Errorf("model: session has no sequence %d", in.Seq)
		}
		start := s.next[in.Seq]
		s.next[in.Seq] += len(in.Tokens)
		for i, t := range in.Tokens {
			p := start + i
			if p >= s.maxTokens {
				return fmt.Errorf("model: sequence %d would exceed the session's %d tokens", in.Seq, s.maxTokens)
			}
			want := in.Want == WantAll || (in.Want == WantLast && i == len(in.Tokens)-1)
			b.Add(t, int32(in.Seq), int32(p), want)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	if err := s.m.Forward(b, s.kv); err != nil {
		return err
	}
	copy(s.lens, s.next)
	return nil
}

// Row returns logits row j of the last Feed (see Model.LogitsRow).
func (s *Session) Row(j int) []float32 { return s.m.LogitsRow(j) }

// Prefill appends tokens to sequence seq in chunks of at most chunk tokens
// (chunk ≤ 0: one batch) and returns the logits after the last token.
func (s *Session) Prefill(seq int, tokens []int32, chunk int) ([]float32, error) {
	if len(tokens) == 0 {
		return nil, fmt.Errorf("model: prefill of no tokens")
	}
	if chunk <= 0 {
		chunk = len(tokens)
	}
	for off := 0; off < len(tokens); off += chunk {
		end := min(off+chunk, len(tokens))
		want := WantNone
		if end == len(tokens) {
			want = WantLast
		}
		if err := s.Feed(Input{Seq: seq, Tokens: tokens[off:end], Want: want}); err != nil {
			return nil, err
		}
	}
	return s.Row(0), nil
}

// Generate prefills prompt into sequence seq (after whatever it holds) in
// chunks of chunk tokens, then decodes up to maxNew tokens one at a time.
// next picks each token from the logits and may stop generation; nil means
// greedy decoding that stops after an end-of-generation token of the
// model's metadata. It returns the generated tokens (including a final
// end-of-generation token).
func (s *Session) Generate(seq int, prompt []int32, maxNew, chunk int, next func(logits []float32) (tok int32, stop bool)) ([]int32, error) {
	if next == nil {
		eos := s.m.cfg.EOS
		next = func(logits []float32) (int32, bool) {
			t := Argmax(logits)
			return t, slices.Contains(eos, t)
		}
	}
	logits, err := s.Prefill(seq, prompt, chunk)
	if err != nil {
		return nil, err
	}
	var out []int32
	for len(out) < maxNew {
		t, stop := next(logits)
		out = append(out, t)
		if stop || len(out) == maxNew {
			break
		}
		if err := s.Feed(Input{Seq: seq, Tokens: []int32{t}}); err != nil {
			return out, err
		}
		logits = s.Row(0)
	}
	return out, nil
}

// Argmax returns the index of the largest logit (the lowest on ties).
func Argmax(logits []float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best)
}
