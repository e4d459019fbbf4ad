package model

import (
	"fmt"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

// DefaultKVType is the KV cache element type used unless a caller asks for
// another: F16, as llama.cpp uses by default (and used for the golden data).
const DefaultKVType = quant.F16

// KVCache is the paged key/value store of one model: for every layer a K
// and a V tensor of NumBlocks*BlockSize rows, one row per token slot, of
// KVHeads*HeadDim columns. Slot s belongs to block s/BlockSize. Which blocks
// belong to which sequence is the caller's business (block tables in the
// Batch); the cache itself is just storage.
type KVCache struct {
	Type      quant.Type        // F16 or F32
	NumBlocks int               // blocks in the pool
	BlockSize int               // token slots per block
	K, V      []*kernels.Tensor // (Layers) each (NumBlocks*BlockSize, KVHeads*HeadDim)

	be kernels.Backend
}

// NewKVCache allocates a cache of numBlocks blocks of blockSize token slots
// for every layer. typ is F16 (DefaultKVType) or F32.
func (m *Model) NewKVCache(numBlocks, blockSize int, typ quant.Type) (*KVCache, error) {
	if numBlocks <= 0 || blockSize <= 0 {
		return nil, fmt.Errorf("model: KV cache needs positive block count and size, got %d blocks of %d", numBlocks, blockSize)
	}
	if typ != quant.F16 && typ != quant.F32 {
		return nil, fmt.Errorf("model: KV cache type %s is not supported (F16 or F32)", typ)
	}
	rows := numBlocks * blockSize
	if rows/blockSize != numBlocks || rows > 1<<31-1 {
		return nil, fmt.Errorf("model: KV cache of %d blocks of %d slots is too large", numBlocks, blockSize)
	}
	kv := &KVCache{Type: typ, NumBlocks: numBlocks, BlockSize: blockSize, be: m.be}
	cols := m.cfg.KVDim()
	for range m.cfg.Layers {
		k, err := m.be.NewTensor(typ, rows, cols)
		if err != nil {
			kv.Free()
			return nil, fmt.Errorf("model: allocating KV cache (%d slots, %d bytes): %w",
				rows, m.cfg.KVBytesPerToken(typ)*rows, err)
		}
		kv.K = append(kv.K, k)
		v, err := m.be.NewTensor(typ, rows, cols)
		if err != nil {
			kv.Free()
			return nil, fmt.Errorf("model: allocating KV cache (%d slots, %d bytes): %w",
				rows, m.cfg.KVBytesPerToken(typ)*rows, err)
		}
		kv.V = append(kv.V, v)
	}
	return kv, nil
}

// Slots is the number of token slots (NumBlocks*BlockSize).
func (kv *KVCache) Slots() int { return kv.NumBlocks * kv.BlockSize }

// Free releases the cache's tensors. The cache must not be used afterwards.
func (kv *KVCache) Free() {
	for _, t := range kv.K {
		kv.be.Free(t)
	}
	for _, t := range kv.V {
		kv.be.Free(t)
	}
	kv.K, kv.V = nil, nil
}

// KVBytesPerToken is the KV cache memory one token slot takes over all
// layers (K and V) for element type typ (F16 or F32).
func (c *Config) KVBytesPerToken(typ quant.Type) int {
	rb, err := quant.RowBytes(typ, c.KVDim())
	if err != nil {
		return 0
	}
	return 2 * c.Layers * rb
}

// KVBlocksFor is the number of blocks of blockSize slots that fit in budget
// bytes of KV cache memory of element type typ.
func (c *Config) KVBlocksFor(budget int64, blockSize int, typ quant.Type) int {
	per := int64(c.KVBytesPerToken(typ)) * int64(blockSize)
	if per <= 0 {
		return 0
	}
	return int(budget / per)
}
