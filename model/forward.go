package model

import (
	"fmt"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

// Batch is one forward pass worth of tokens: a flat list that may mix
// several sequences, each at its own positions (prefill chunks and decode
// steps alike), over a paged KV cache.
//
// Token i is Tokens[i] of sequence Seq[i] at position Pos[i]; its K and V
// are written to cache slot Slots[i], which must be the slot its sequence's
// block table gives for that position:
//
//	Slots[i] == BlockTables[Seq[i]*MaxBlocks + Pos[i]/BlockSize]*BlockSize + Pos[i]%BlockSize
//
// Every position 0..Pos[i] of the sequence must be in the cache by the time
// token i is computed: earlier positions from previous Forward calls or
// from earlier rows of this batch.
type Batch struct {
	Tokens []int32 // (n) token ids
	kernels.AttnBatch
	// Outputs lists the rows whose logits are wanted, in the order the
	// logits rows come out: logits row j belongs to token Outputs[j].
	Outputs []int32 // (nOut)
}

// Len is the number of tokens in the batch.
func (b *Batch) Len() int { return len(b.Tokens) }

// Reset empties the token lists, keeping their storage.
func (b *Batch) Reset() {
	b.Tokens, b.Pos, b.Seq, b.Slots, b.Outputs = b.Tokens[:0], b.Pos[:0], b.Seq[:0], b.Slots[:0], b.Outputs[:0]
}

// Add appends token tok of sequence seq at position pos, computing its slot
// from the block tables (which must already cover pos). If logits is true
// the token's row is appended to Outputs.
func (b *Batch) Add(tok, seq, pos int32, logits bool) {
	slot := int32(-1)
	if b.BlockSize > 0 && b.MaxBlocks > 0 && pos >= 0 {
		i := int(seq)*b.MaxBlocks + int(pos)/b.BlockSize
		if seq >= 0 && int(pos)/b.BlockSize < b.MaxBlocks && i < len(b.BlockTables) && b.BlockTables[i] >= 0 {
			slot = b.BlockTables[i]*int32(b.BlockSize) + pos%int32(b.BlockSize)
		}
	}
	if logits {
		b.Outputs = append(b.Outputs, int32(len(b.Tokens)))
	}
	b.Tokens = append(b.Tokens, tok)
	b.Pos = append(b.Pos, pos)
	b.Seq = append(b.Seq, seq)
	b.Slots = append(b.Slots, slot)
}

// activations are the reusable buffers of a forward pass. They grow to the
// largest batch seen (rows) and the largest number of logits rows (outRows)
// and are then reused: no allocation per step in steady state.
type activations struct {
	rows, outRows int

	x     *kernels.Tensor // (rows, dim)   residual stream
	xb    *kernels.Tensor // (rows, dim)   normalized input of attention / FFN
	q     *kernels.Tensor // (rows, qDim)  queries
	k     *kernels.Tensor // (rows, kvDim) keys of the batch
	v     *kernels.Tensor // (rows, kvDim) values of the batch
	att   *kernels.Tensor // (rows, qDim)  attention output, heads concatenated
	proj  *kernels.Tensor // (rows, dim)   output of attn_output / ffn_down
	gate  *kernels.Tensor // (rows, ffn)   silu(gate) ⊙ up after SiLUMul
	up    *kernels.Tensor // (rows, ffn)
	xOut  *kernels.Tensor // (outRows, dim)   residual rows that need logits
	xbOut *kernels.Tensor // (outRows, dim)   their normalized input
	logit *kernels.Tensor // (outRows, vocab) logits on the backend

	logits []float32 // (outRows * vocab) host copy of the logits

	// Host metadata of the last layer, which runs only the output rows.
	outPos, outSeq, outSlots []int32 // (outRows)
	outBatch                 kernels.AttnBatch
	nOut                     int     // logits rows of the last Forward
	seqMaxPos                []int32 // (numSeqs) scratch for batch validation
}

// grow makes room for batches of rows tokens with outRows logits rows.
func (a *activations) grow(m *Model, rows, outRows int) error {
	c := &m.cfg
	if rows > a.rows {
		rows = roundUp(max(rows, a.rows+a.rows/2), 16)
		a.freeMain(m.be)
		var err error
		alloc := func(cols int) *kernels.Tensor {
			if err != nil {
				return nil
			}
			var t *kernels.Tensor
			t, err = m.be.NewTensor(quant.F32, rows, cols)
			return t
		}
		a.x = alloc(c.Dim)
		a.xb = alloc(c.Dim)
		a.q = alloc(c.QDim())
		a.k = alloc(c.KVDim())
		a.v = alloc(c.KVDim())
		a.att = alloc(c.QDim())
		a.proj = alloc(c.Dim)
		a.gate = alloc(c.FFNDim)
		a.up = alloc(c.FFNDim)
		if err != nil {
			a.freeMain(m.be)
			return fmt.Errorf("model: allocating activations for %d tokens: %w", rows, err)
		}
		a.rows = rows
	}
	if outRows > a.outRows {
		outRows = roundUp(max(outRows, a.outRows+a.outRows/2), 8)
		a.freeOut(m.be)
		var err error
		alloc := func(cols int) *kernels.Tensor {
			if err != nil {
				return nil
			}
			var t *kernels.Tensor
			t, err = m.be.NewTensor(quant.F32, outRows, cols)
			return t
		}
		a.xOut = alloc(c.Dim)
		a.xbOut = alloc(c.Dim)
		a.logit = alloc(c.VocabSize)
		if err != nil {
			a.freeOut(m.be)
			return fmt.Errorf("model: allocating logits for %d rows: %w", outRows, err)
		}
		a.logits = make([]float32, outRows*c.VocabSize)
		a.outPos = make([]int32, 0, outRows)
		a.outSeq = make([]int32, 0, outRows)
		a.outSlots = make([]int32, 0, outRows)
		a.outRows = outRows
	}
	return nil
}

// headRows views an F32 activation (rows, heads·headDim) as (rows·heads,
// headDim): the same row-major storage (Host or Dev), one head per row, so
// that row ops such as RMSNorm work per head. The view owns nothing; it must
// not be freed and is only valid while t is.
func headRows(t *kernels.Tensor, headDim int) *kernels.Tensor {
	v := *t
	v.Rows, v.Cols = t.Rows*(t.Cols/headDim), headDim
	return &v
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

func (a *activations) freeMain(be kernels.Backend) {
	for _, t := range []*kernels.Tensor{a.x, a.xb, a.q, a.k, a.v, a.att, a.proj, a.gate, a.up} {
		be.Free(t)
	}
	a.x, a.xb, a.q, a.k, a.v, a.att, a.proj, a.gate, a.up = nil, nil, nil, nil, nil, nil, nil, nil, nil
	a.rows = 0
}

func (a *activations) freeOut(be kernels.Backend) {
	for _, t := range []*kernels.Tensor{a.xOut, a.xbOut, a.logit} {
		be.Free(t)
	}
	a.xOut, a.xbOut, a.logit, a.logits = nil, nil, nil, nil
	a.outRows = 0
}

func (a *activations) free(be kernels.Backend) {
	a.freeMain(be)
	a.freeOut(be)
}

// Forward runs the model over b, writing the K and V of every token into
// kv, and computes logits for the rows listed in b.Outputs (none: only the
// cache is filled). Read them with Logits or LogitsRow.
func (m *Model) Forward(b *Batch, kv *KVCache) error {
	if err := m.validate(b, kv); err != nil {
		return err
	}
	c := &m.cfg
	be := m.be
	n, nOut := len(b.Tokens), len(b.Outputs)
	if err := m.act.grow(m, n, nOut); err != nil {
		return err
	}
	a := &m.act
	a.nOut = 0

	// The last layer needs queries, attention and FFN only for the output
	// rows (their K and V for every row).
	gather, outBatch := a.outputRows(b)

	var e opErr
	// x = token_embd[tokens]                                  (n, dim)
	e.do(-1, "token_embd", be.GetRows(a.x, m.tokEmbd, b.Tokens))
	if c.EmbedScale != 1 {
		e.do(-1, "embedding_scale", be.Scale(a.x, c.EmbedScale, n))
	}

	// h, hb: the residual rows that need queries, attention and the FFN,
	// and scratch for their normalized values, nh of them with attention
	// metadata ab: all n rows, except in the last layer when gathering.
	h, hb, nh, ab := a.x, a.xb, n, &b.AttnBatch
	for l := range m.layers {
		ly := &m.layers[l]
		last := l == len(m.layers)-1

		// in = rmsnorm(x) · attn_norm, or x itself with post-norms (n, dim)
		in := a.x
		if ly.attnNorm != nil {
			e.do(l, "attn_norm", be.RMSNorm(a.xb, a.x, ly.attnNorm, n, c.NormEps))
			in = a.xb
		}
		// k = in·wkᵀ (+bk), v = in·wvᵀ (+bv)                    (n, kvDim)
		e.do(l, "attn_k", be.MatMul(a.k, in, ly.wk, n))
		e.do(l, "attn_v", be.MatMul(a.v, in, ly.wv, n))
		if ly.bk != nil {
			e.do(l, "attn_k.bias", be.AddBias(a.k, ly.bk, n))
			e.do(l, "attn_v.bias", be.AddBias(a.v, ly.bv, n))
		}
		if ly.kNorm != nil {
			// k = rmsnorm(k) · attn_k_norm, per head or per row   (n, kvDim)
			e.do(l, "attn_k_norm", normPieces(be, a.k, ly.kNorm, n, c.NormEps))
		}
		e.do(l, "rope k", be.Rope(a.k, b.Pos, m.rope))
		// cache[slot] = k, v                   (numBlocks*blockSize, kvDim)
		e.do(l, "store kv", be.StoreKV(kv.K[l], kv.V[l], a.k, a.v, b.Slots))

		qIn := in
		if last && gather {
			if nOut == 0 {
				break // the cache is filled; no logits wanted
			}
			// xOut = x[outputs], xbOut = in[outputs]             (nOut, dim)
			e.do(l, "gather x", be.GetRows(a.xOut, a.x, b.Outputs))
			e.do(l, "gather xb", be.GetRows(a.xbOut, in, b.Outputs))
			h, hb, nh, ab, qIn = a.xOut, a.xbOut, nOut, outBatch, a.xbOut
		}

		m.attend(&e, l, qIn, h, nh, ab, kv)
		m.ffn(&e, l, ly, h, hb, nh)
		if e.err != nil {
			return e.err
		}
	}
	if e.err != nil || nOut == 0 {
		return e.err
	}

	// logits = (rmsnorm(h) · output_norm)·outputᵀ            (nOut, vocab)
	e.do(-1, "output_norm", be.RMSNorm(hb, h, m.outNorm, nOut, c.NormEps))
	e.do(-1, "output", be.MatMul(a.logit, hb, m.output, nOut))
	if c.LogitScale != 1 {
		e.do(-1, "logit_scale", be.Scale(a.logit, 1/c.LogitScale, nOut))
	}
	e.do(-1, "read logits", be.Read(a.logits[:nOut*c.VocabSize], a.logit))
	if e.err == nil {
		a.nOut = nOut
	}
	return e.err
}

// outputRows prepares the last layer's rows: when b's outputs are not
// simply all rows in order, it gathers their metadata into a.outBatch
// (the caller gathers x and the attention input) and reports true.
func (a *activations) outputRows(b *Batch) (bool, *kernels.AttnBatch) {
	gather := len(b.Outputs) != len(b.Tokens)
	for j, r := range b.Outputs {
		if r != int32(j) {
			gather = true
		}
	}
	if !gather {
		return false, &b.AttnBatch
	}
	a.outPos, a.outSeq, a.outSlots = a.outPos[:0], a.outSeq[:0], a.outSlots[:0]
	for _, r := range b.Outputs {
		a.outPos = append(a.outPos, b.Pos[r])
		a.outSeq = append(a.outSeq, b.Seq[r])
		a.outSlots = append(a.outSlots, b.Slots[r])
	}
	a.outBatch = kernels.AttnBatch{
		Pos: a.outPos, Seq: a.outSeq, Slots: a.outSlots,
		BlockTables: b.BlockTables, MaxBlocks: b.MaxBlocks, BlockSize: b.BlockSize,
	}
	return true, &a.outBatch
}

// attend adds layer l's attention output for the first nh rows of qIn
// (the attention input, normalized or not) to h, reading the K and V of
// their sequences from kv (which already holds this batch's):
//
//	h += residual_scale · post_norm(wo · attention(rope(norm(wq·qIn + bq))))
func (m *Model) attend(e *opErr, l int, qIn, h *kernels.Tensor, nh int, ab *kernels.AttnBatch, kv *KVCache) {
	a, be, c, ly := &m.act, m.be, &m.cfg, &m.layers[l]
	// q = qIn·wqᵀ (+bq), normalized, rotated                   (nh, qDim)
	e.do(l, "attn_q", be.MatMul(a.q, qIn, ly.wq, nh))
	if ly.bq != nil {
		e.do(l, "attn_q.bias", be.AddBias(a.q, ly.bq, nh))
	}
	if ly.qNorm != nil {
		e.do(l, "attn_q_norm", normPieces(be, a.q, ly.qNorm, nh, c.NormEps))
	}
	e.do(l, "rope q", be.Rope(a.q, ab.Pos, m.rope))
	// att = softmax(scale · q·kᵀ, causal per sequence) · v      (nh, qDim)
	attn := kernels.AttnParams{Heads: c.Heads, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Scale: c.AttnScale}
	e.do(l, "attention", be.Attention(a.att, a.q, kv.K[l], kv.V[l], ab, attn))
	// proj = att·woᵀ (+bo), post-normalized, scaled              (nh, dim)
	e.do(l, "attn_output", be.MatMul(a.proj, a.att, ly.wo, nh))
	if ly.bo != nil {
		e.do(l, "attn_output.bias", be.AddBias(a.proj, ly.bo, nh))
	}
	if ly.postAttnNorm != nil {
		e.do(l, "post_attention_norm", be.RMSNorm(a.proj, a.proj, ly.postAttnNorm, nh, c.NormEps))
	}
	if c.ResidualScale != 1 {
		e.do(l, "residual_scale", be.Scale(a.proj, c.ResidualScale, nh))
	}
	e.do(l, "residual", be.Add(h, h, a.proj, nh))
}

// ffn adds the feed-forward block's output to the first nh rows of h,
// using hb (same shape) as scratch:
//
//	h += post_norm(w_down · (silu(w_gate·in) ⊙ w_up·in)),  in = pre_norm(h) or h
func (m *Model) ffn(e *opErr, l int, ly *layer, h, hb *kernels.Tensor, nh int) {
	a, be, eps := &m.act, m.be, m.cfg.NormEps
	in := h
	if ly.ffnNorm != nil {
		// hb = rmsnorm(h) · ffn_norm                             (nh, dim)
		e.do(l, "ffn_norm", be.RMSNorm(hb, h, ly.ffnNorm, nh, eps))
		in = hb
	}
	// gate = silu(in·w_gateᵀ) ⊙ (in·w_upᵀ)                       (nh, ffn)
	e.do(l, "ffn_gate", be.MatMul(a.gate, in, ly.wGate, nh))
	e.do(l, "ffn_up", be.MatMul(a.up, in, ly.wUp, nh))
	e.do(l, "silu", be.SiLUMul(a.gate, a.gate, a.up, nh))
	// h += post_norm(gate·w_downᵀ)                               (nh, dim)
	e.do(l, "ffn_down", be.MatMul(a.proj, a.gate, ly.wDown, nh))
	if ly.postFFNNorm != nil {
		e.do(l, "post_ffw_norm", be.RMSNorm(a.proj, a.proj, ly.postFFNNorm, nh, eps))
	}
	if rs := m.cfg.ResidualScale; rs != 1 {
		e.do(l, "residual_scale", be.Scale(a.proj, rs, nh))
	}
	e.do(l, "residual", be.Add(h, h, a.proj, nh))
}

// normPieces RMS-normalizes, in place, each w.Cols-wide piece of the first
// rows rows of the F32 activation t, scaled by w: one head per piece
// (qwen3's q/k norms) or the whole row (olmo2's).
func normPieces(be kernels.Backend, t, w *kernels.Tensor, rows int, eps float32) error {
	v := headRows(t, w.Cols)
	return be.RMSNorm(v, v, w, rows*(t.Cols/w.Cols), eps)
}

// Logits returns the logits of the last Forward: (len(b.Outputs), vocab)
// row-major, row j for token b.Outputs[j]. The slice is owned by the Model
// and overwritten by the next Forward (and invalid after a failed one);
// copy what must outlive it.
func (m *Model) Logits() []float32 {
	return m.act.logits[:m.act.nOut*m.cfg.VocabSize]
}

// LogitsRow returns logits row j (< len(b.Outputs)) of the last Forward,
// vocab values, with the same lifetime as Logits.
func (m *Model) LogitsRow(j int) []float32 {
	v := m.cfg.VocabSize
	return m.Logits()[j*v : (j+1)*v]
}

// opErr records the first failing op of a forward pass.
type opErr struct{ err error }

func (e *opErr) do(layer int, op string, err error) {
	if err == nil || e.err != nil {
		return
	}
	if layer < 0 {
		e.err = fmt.Errorf("model: %s: %w", op, err)
	} else {
		e.err = fmt.Errorf("model: layer %d %s: %w", layer, op, err)
	}
}

// validate checks a batch against the model and cache so that no kernel
// sees an out-of-range id, position, slot or block.
func (m *Model) validate(b *Batch, kv *KVCache) error {
	n := len(b.Tokens)
	if n == 0 {
		return fmt.Errorf("model: empty batch")
	}
	if kv == nil || len(kv.K) != m.cfg.Layers || len(kv.V) != m.cfg.Layers || kv.K[0].Cols != m.cfg.KVDim() {
		return fmt.Errorf("model: KV cache missing, freed, or not made for this model")
	}
	if len(b.Pos) != n || len(b.Seq) != n || len(b.Slots) != n {
		return fmt.Errorf("model: batch of %d tokens has %d positions, %d sequence ids, %d slots",
			n, len(b.Pos), len(b.Seq), len(b.Slots))
	}
	if b.BlockSize != kv.BlockSize {
		return fmt.Errorf("model: batch block size %d differs from the KV cache's %d", b.BlockSize, kv.BlockSize)
	}
	if b.MaxBlocks <= 0 || len(b.BlockTables) == 0 || len(b.BlockTables)%b.MaxBlocks != 0 {
		return fmt.Errorf("model: block tables of %d entries do not form rows of MaxBlocks=%d", len(b.BlockTables), b.MaxBlocks)
	}
	numSeqs := len(b.BlockTables) / b.MaxBlocks
	a := &m.act
	if cap(a.seqMaxPos) < numSeqs {
		a.seqMaxPos = make([]int32, numSeqs)
	}
	maxPos := a.seqMaxPos[:numSeqs]
	for s := range maxPos {
		maxPos[s] = -1
	}
	vocab := int32(m.cfg.VocabSize)
	for i, t := range b.Tokens {
		if t < 0 || t >= vocab {
			return fmt.Errorf("model: token %d at batch row %d is outside the vocabulary (size %d)", t, i, vocab)
		}
		s, p := b.Seq[i], b.Pos[i]
		if s < 0 || int(s) >= numSeqs {
			return fmt.Errorf("model: batch row %d has sequence %d, block tables have %d", i, s, numSeqs)
		}
		if p < 0 || int(p)/b.BlockSize >= b.MaxBlocks {
			return fmt.Errorf("model: batch row %d has position %d outside the block table (%d blocks of %d)",
				i, p, b.MaxBlocks, b.BlockSize)
		}
		blk := b.BlockTables[int(s)*b.MaxBlocks+int(p)/b.BlockSize]
		if want := blk*int32(b.BlockSize) + p%int32(b.BlockSize); blk < 0 || b.Slots[i] != want {
			return fmt.Errorf("model: batch row %d (sequence %d, position %d) has slot %d, its block table gives block %d",
				i, s, p, b.Slots[i], blk)
		}
		maxPos[s] = max(maxPos[s], p)
	}
	for s, p := range maxPos {
		if p < 0 {
			continue
		}
		for _, blk := range b.BlockTables[s*b.MaxBlocks : s*b.MaxBlocks+int(p)/b.BlockSize+1] {
			if blk < 0 || int(blk) >= kv.NumBlocks {
				return fmt.Errorf("model: sequence %d uses block %d, the KV cache has %d", s, blk, kv.NumBlocks)
			}
		}
	}
	for j, r := range b.Outputs {
		if r < 0 || int(r) >= n {
			return fmt.Errorf("model: output %d names batch row %d of %d", j, r, n)
		}
	}
	return nil
}
