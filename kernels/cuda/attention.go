package cuda

/*
#include "dl.h"
*/
import "C"

import (
	"errors"
	"fmt"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

// kvCache checks a KV cache tensor (F32 or F16) and returns its address.
func (b *Backend) kvCache(t *kernels.Tensor, what string) (C.sl_cu_devptr, error) {
	p, err := b.dev(t, what)
	if err != nil {
		return 0, err
	}
	if t.Type != quant.F32 && t.Type != quant.F16 {
		return 0, fmt.Errorf("cuda: %s must be F32 or F16, got %v", what, t)
	}
	return p, nil
}

// kvKernel picks the F32 or F16 cache variant of a kernel (no string
// building per op).
func kvKernel(t quant.Type, f32, f16 string) string {
	if t == quant.F16 {
		return f16
	}
	return f32
}

// StoreKV writes k(i,:), v(i,:) to rows slots[i] of the caches.
func (b *Backend) StoreKV(kc, vc, k, v *kernels.Tensor, slots []int32) error {
	kcp, err := b.kvCache(kc, "StoreKV k cache")
	if err != nil {
		return err
	}
	vcp, err := b.kvCache(vc, "StoreKV v cache")
	if err != nil {
		return err
	}
	if kc.Type != vc.Type || kc.Cols != vc.Cols {
		return fmt.Errorf("cuda: StoreKV: caches %v and %v differ", kc, vc)
	}
	kp, err := b.f32(k, "StoreKV k", len(slots), kc.Cols)
	if err != nil {
		return err
	}
	vp, err := b.f32(v, "StoreKV v", len(slots), kc.Cols)
	if err != nil {
		return err
	}
	for i, s := range slots {
		if s < 0 || int(s) >= kc.Rows || int(s) >= vc.Rows {
			return fmt.Errorf("cuda: StoreKV: slots[%d] = %d is out of range for %v", i, s, kc)
		}
	}
	if len(slots) == 0 || kc.Cols == 0 {
		return nil
	}
	m, err := b.uploadMeta(slots)
	if err != nil {
		return err
	}
	b.args.reset().ptr(kcp).ptr(vcp).ptr(kp).ptr(vp).ptr(m[0]).i32(kc.Cols)
	return b.launch(kvKernel(kc.Type, "kv_store_f32", "kv_store_f16"), grid{X: len(slots), Y: 1, Z: 1, Threads: 256})
}

// checkAttn validates the batch against the caches as the CPU backend does
// and returns the largest context length (max position + 1).
func checkAttn(ab *kernels.AttnBatch, p kernels.AttnParams, cacheRows int) (int, error) {
	n := len(ab.Pos)
	switch {
	case p.Heads <= 0 || p.KVHeads <= 0 || p.HeadDim <= 0:
		return 0, fmt.Errorf("cuda: Attention: bad head geometry %+v", p)
	case p.Heads%p.KVHeads != 0:
		return 0, fmt.Errorf("cuda: Attention: %d heads is not a multiple of %d KV heads", p.Heads, p.KVHeads)
	case p.HeadDim > maxHeadD:
		return 0, fmt.Errorf("cuda: Attention: head dim %d exceeds %d", p.HeadDim, maxHeadD)
	case len(ab.Seq) < n:
		return 0, fmt.Errorf("cuda: Attention: %d sequence ids for %d tokens", len(ab.Seq), n)
	case ab.BlockSize <= 0 || ab.MaxBlocks <= 0:
		return 0, fmt.Errorf("cuda: Attention: block size %d and max blocks %d must be positive", ab.BlockSize, ab.MaxBlocks)
	}
	numSeqs := len(ab.BlockTables) / ab.MaxBlocks
	maxCtx := 0
	for i := 0; i < n; i++ {
		s, ps := ab.Seq[i], ab.Pos[i]
		if s < 0 || int(s) >= numSeqs {
			return 0, fmt.Errorf("cuda: Attention: token %d has sequence %d, block tables hold %d", i, s, numSeqs)
		}
		if ps < 0 || int(ps)/ab.BlockSize >= ab.MaxBlocks {
			return 0, fmt.Errorf("cuda: Attention: token %d position %d is outside %d blocks of %d", i, ps, ab.MaxBlocks, ab.BlockSize)
		}
		last := int(ps) / ab.BlockSize
		for blk := 0; blk <= last; blk++ {
			id := int(ab.BlockTables[int(s)*ab.MaxBlocks+blk])
			used := ab.BlockSize
			if blk == last {
				used = int(ps)%ab.BlockSize + 1
			}
			if id < 0 || id*ab.BlockSize+used > cacheRows {
				return 0, fmt.Errorf("cuda: Attention: sequence %d block %d has id %d, outside the %d-row cache", s, blk, id, cacheRows)
			}
		}
		maxCtx = max(maxCtx, int(ps)+1)
	}
	return maxCtx, nil
}

// Attention runs paged causal attention: split-K decode when every token
// is alone in its sequence's run, flash-style prefill tiles otherwise.
func (b *Backend) Attention(out, q, kc, vc *kernels.Tensor, ab *kernels.AttnBatch, p kernels.AttnParams) error {
	if ab == nil {
		return errors.New("cuda: Attention: nil batch")
	}
	n := len(ab.Pos)
	qp, err := b.f32(q, "Attention q", n, p.Heads*p.HeadDim)
	if err != nil {
		return err
	}
	op, err := b.f32(out, "Attention out", n, p.Heads*p.HeadDim)
	if err != nil {
		return err
	}
	kcp, err := b.kvCache(kc, "Attention k cache")
	if err != nil {
		return err
	}
	vcp, err := b.kvCache(vc, "Attention v cache")
	if err != nil {
		return err
	}
	if kc.Type != vc.Type || kc.Cols != p.KVHeads*p.HeadDim || vc.Cols != kc.Cols {
		return fmt.Errorf("cuda: Attention: caches %v and %v must both have %d columns and one type",
			kc, vc, p.KVHeads*p.HeadDim)
	}
	maxCtx, err := checkAttn(ab, p, min(kc.Rows, vc.Rows))
	if err != nil || n == 0 {
		return err
	}
	var single bool
	b.tiles, single = prefillTiles(b.tiles, ab.Seq, n)
	m, err := b.uploadMeta(ab.Pos, ab.Seq, ab.BlockTables, b.tiles)
	if err != nil {
		return err
	}
	if !single {
		b.args.reset().ptr(op).ptr(qp).ptr(kcp).ptr(vcp).ptr(m[3]).ptr(m[0]).ptr(m[1]).ptr(m[2]).
			i32(ab.MaxBlocks).i32(ab.BlockSize).i32(p.Heads).i32(p.KVHeads).i32(p.HeadDim).f32(p.Scale)
		return b.launch(kvKernel(kc.Type, "attn_prefill_f32", "attn_prefill_f16"), grid{X: len(b.tiles) / 2, Y: p.Heads, Z: 1, Threads: 32 * apWarps})
	}
	splitLen, splits := decodeSplits(n, p.Heads, b.info.SMs, maxCtx)
	parts := int64(n) * int64(p.Heads) * int64(splits)
	if err := b.grow(&b.part, 4*parts*int64(p.HeadDim+2)); err != nil {
		return err
	}
	po, pml := b.part.ptr, b.part.ptr+C.sl_cu_devptr(4*parts*int64(p.HeadDim))
	b.args.reset().ptr(po).ptr(pml).ptr(qp).ptr(kcp).ptr(vcp).ptr(m[0]).ptr(m[1]).ptr(m[2]).
		i32(ab.MaxBlocks).i32(ab.BlockSize).i32(p.Heads).i32(p.KVHeads).i32(p.HeadDim).f32(p.Scale).i32(splitLen)
	if err := b.launch(kvKernel(kc.Type, "attn_decode_f32", "attn_decode_f16"), grid{X: n, Y: p.Heads, Z: splits, Threads: 32 * adWarps}); err != nil {
		return err
	}
	b.args.reset().ptr(op).ptr(po).ptr(pml).i32(p.Heads).i32(p.HeadDim).i32(splits)
	return b.launch("attn_combine", grid{X: n, Y: p.Heads, Z: 1, Threads: 128})
}
