package spec

import (
	"fmt"

	"github.com/sluice-llm/sluice/model"
)

// slotCache is a model with a KV cache of fixed contiguous slots, one
// sequence each (slot s owns blocks s·B..s·B+B−1), that remembers which
// tokens each slot's cache holds, so that a slot can be cut back to any
// length (rejected draft tokens) and then overwritten.
type slotCache struct {
	m         *model.Model
	kv        *model.KVCache
	maxTokens int
	tables    []int32
	toks      [][]int32 // per slot: the tokens whose K/V the cache holds, in order
	batch     model.Batch
	started   []int32 // slots with tokens in the batch being built
	startLen  []int   // per slot: its length before the batch
}

// Its KV cache has element type model.DefaultKVType.
func newSlotCache(m *model.Model, slots, maxTokens, blockSize int) (*slotCache, error) {
	if slots <= 0 || maxTokens <= 0 {
		return nil, fmt.Errorf("spec: cache needs at least one slot and one token, got %d, %d", slots, maxTokens)
	}
	if blockSize <= 0 {
		blockSize = 16
	}
	perSeq := (maxTokens + blockSize - 1) / blockSize
	kv, err := m.NewKVCache(slots*perSeq, blockSize, model.DefaultKVType)
	if err != nil {
		return nil, err
	}
	c := &slotCache{
		m: m, kv: kv, maxTokens: maxTokens,
		tables:   make([]int32, slots*perSeq),
		toks:     make([][]int32, slots),
		startLen: make([]int, slots),
	}
	for i := range c.tables {
		c.tables[i] = int32(i)
	}
	for i := range c.startLen {
		c.startLen[i] = -1
	}
	c.batch.BlockTables, c.batch.MaxBlocks, c.batch.BlockSize = c.tables, perSeq, blockSize
	return c, nil
}

func (c *slotCache) close() { c.kv.Free() }

func (c *slotCache) slots() int { return len(c.toks) }

// len is the number of tokens in slot's cache.
func (c *slotCache) len(slot int) int { return len(c.toks[slot]) }

// truncate cuts slot back to n tokens (n ≤ its length).
func (c *slotCache) truncate(slot, n int) {
	if n < len(c.toks[slot]) {
		c.toks[slot] = c.toks[slot][:n]
	}
}

// add appends tok to slot in the batch being built, wanting its logits or
// not, and returns the logits row it will have (-1 if none). The slot must
// have room (len < maxTokens).
func (c *slotCache) add(slot int, tok int32, logits bool) int {
	if c.startLen[slot] < 0 {
		c.startLen[slot] = len(c.toks[slot])
		c.started = append(c.started, int32(slot))
	}
	if c.toks[slot] == nil {
		c.toks[slot] = make([]int32, 0, c.maxTokens)
	}
	row := -1
	if logits {
		row = len(c.batch.Outputs)
	}
	c.batch.Add(tok, int32(slot), int32(len(c.toks[slot])), logits)
	c.toks[slot] = append(c.toks[slot], tok)
	return row
}

// pending is the number of tokens in the batch being built.
func (c *slotCache) pending() int { return c.batch.Len() }

// forward runs the batch being built and starts a new one. On failure the
// slots are cut back to their lengths before the batch (their cache content
// past that is unknown).
func (c *slotCache) forward() error {
	var err error
	if c.batch.Len() > 0 {
		err = c.m.Forward(&c.batch, c.kv)
	}
	for _, s := range c.started {
		if err != nil {
			c.truncate(int(s), c.startLen[s])
		}
		c.startLen[s] = -1
	}
	c.started = c.started[:0]
	c.batch.Reset()
	return err
}

// row returns logits row j of the last forward.
func (c *slotCache) row(j int) []float32 { return c.m.LogitsRow(j) }

// sync makes slot hold a prefix of ctx that is as long as possible but
// shorter than ctx, and queues the rest of ctx with logits at its last
// token, whose row it returns. The cached tokens that agree with ctx are
// kept; the rest of the slot is cut (and will be overwritten).
func (c *slotCache) sync(slot int, ctx []int32) int {
	have := c.toks[slot]
	n := min(len(have), len(ctx)-1)
	common := 0
	for common < n && have[common] == ctx[common] {
		common++
	}
	c.truncate(slot, common)
	row := -1
	for i := common; i < len(ctx); i++ {
		row = c.add(slot, ctx[i], i == len(ctx)-1)
	}
	return row
}
