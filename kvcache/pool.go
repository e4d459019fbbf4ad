// Package kvcache is the paged KV cache's bookkeeping: a pool of fixed-size
// blocks with ref counts, per-sequence block tables, and prefix caching by a
// hash chain over full blocks with an LRU list of free blocks that still hold
// reusable content. It only hands out block ids; the engine owns the memory
// they index.
//
// Ownership: the Pool owns every ref count, the hash→block map, the stored
// token ids of cached blocks and the free list. A Seq is a block table that
// only Pool methods modify; its owner (the scheduler's request) reads it.
// Neither type is safe for concurrent use: one goroutine (the engine's step
// loop) drives a Pool and all of its Seqs.
//
// Invariants (checked by Pool.CheckTables):
//   - refs[b] is the number of Seq block-table entries naming block b;
//   - a block is on the free list if and only if its ref count is zero, so
//     NumFree() + blocks in use = NumBlocks();
//   - a block is cached (has a hash) if and only if the hash map maps that
//     hash to it; free cached blocks keep their content until the free list
//     hands them out again, which is when their hash is dropped;
//   - only full blocks of committed (computed, non-draft) tokens are ever
//     cached, and a cached block's content never changes while cached.
//
// Every operation costs O(1) per block it touches (hashing a block reads its
// tokens once); nothing scans the pool except Check and CheckTables.
package kvcache

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DefaultBlockSize is the number of token positions per block.
const DefaultBlockSize = 16

var (
	// ErrNoBlocks reports that an allocation needs more blocks than are free.
	// Nothing was allocated.
	ErrNoBlocks = errors.New("kvcache: not enough free blocks")
	// ErrStale reports that blocks returned by Match are no longer cached
	// under the sequence's hashes (another pool call evicted them in between).
	ErrStale = errors.New("kvcache: matched blocks are no longer cached")
	// ErrInvalid reports a call that breaks the API's preconditions.
	ErrInvalid = errors.New("kvcache: invalid call")
)

// Pool is a fixed set of KV blocks. See the package doc for ownership and
// invariants.
type Pool struct {
	blockSize int
	root      Hash
	hash      hashFunc

	refs    []int32
	cached  []bool  // block is in byHash under hashes[b]
	hashes  []Hash  // valid when cached[b]
	parents []Hash  // parent hash of a cached block, checked on every hit
	tokens  []int32 // blockSize token ids per block, valid when cached[b]
	byHash  map[Hash]int32
	free    freeList

	scratch []int32 // Match's result, valid until the next Pool call

	queries, hits uint64 // prefix cache lookups and hits, in tokens
}

// NewPool returns a pool of numBlocks blocks of blockSize token positions
// (DefaultBlockSize when blockSize is 0). extraKey (the model fingerprint) is
// folded into every block hash, so caches of different models never match.
// All blocks start free, handed out in id order.
func NewPool(numBlocks, blockSize int, extraKey []byte) (*Pool, error) {
	if blockSize == 0 {
		blockSize = DefaultBlockSize
	}
	if numBlocks <= 0 || blockSize <= 0 {
		return nil, fmt.Errorf("%w: NewPool(%d blocks, block size %d): both must be positive", ErrInvalid, numBlocks, blockSize)
	}
	if int64(numBlocks)*int64(blockSize) > math.MaxInt32 {
		return nil, fmt.Errorf("%w: NewPool: %d blocks × %d tokens overflows int32 slot ids", ErrInvalid, numBlocks, blockSize)
	}
	h := &sha256Hasher{}
	return newPool(numBlocks, blockSize, extraKey, h.sum), nil
}

func newPool(numBlocks, blockSize int, extraKey []byte, hash hashFunc) *Pool {
	p := &Pool{
		blockSize: blockSize,
		hash:      hash,
		refs:      make([]int32, numBlocks),
		cached:    make([]bool, numBlocks),
		hashes:    make([]Hash, numBlocks),
		parents:   make([]Hash, numBlocks),
		tokens:    make([]int32, numBlocks*blockSize),
		byHash:    make(map[Hash]int32),
		free:      newFreeList(numBlocks),
	}
	p.root = hash(Hash{}, nil, extraKey)
	return p
}

// BlockSize returns the number of token positions per block.
func (p *Pool) BlockSize() int { return p.blockSize }

// NumBlocks returns the pool's size in blocks.
func (p *Pool) NumBlocks() int { return len(p.refs) }

// NumFree returns the number of blocks with ref count zero, cached or not.
func (p *Pool) NumFree() int { return p.free.n }

// Usage returns the fraction of blocks in use (ref count > 0), the value of
// vllm:kv_cache_usage_perc.
func (p *Pool) Usage() float64 {
	return float64(len(p.refs)-p.free.n) / float64(len(p.refs))
}

// BlocksFor returns the number of blocks that numTokens positions need.
func (p *Pool) BlocksFor(numTokens int) int {
	return (numTokens + p.blockSize - 1) / p.blockSize
}

// RefCount returns block b's ref count (0 for an id outside the pool).
func (p *Pool) RefCount(b int32) int {
	if b < 0 || int(b) >= len(p.refs) {
		return 0
	}
	return int(p.refs[b])
}

// Stats is a snapshot of the pool's counters.
type Stats struct {
	NumBlocks    int
	FreeBlocks   int     // ref count zero, including cached ones
	CachedBlocks int     // blocks holding a reusable hashed prefix block
	Usage        float64 // (NumBlocks-FreeBlocks)/NumBlocks
	// QueryTokens and HitTokens count prefix cache lookups of admitted
	// sequences (vllm:prefix_cache_queries / vllm:prefix_cache_hits).
	QueryTokens, HitTokens uint64
}

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{
		NumBlocks:    len(p.refs),
		FreeBlocks:   p.free.n,
		CachedBlocks: len(p.byHash),
		Usage:        p.Usage(),
		QueryTokens:  p.queries,
		HitTokens:    p.hits,
	}
}

// SetKey gives s its own chain root derived from the pool's extra key and
// key (an adapter id, say), so its blocks only match sequences with the same
// key. s must be empty (new or Reset).
func (p *Pool) SetKey(s *Seq, key []byte) error {
	if len(s.blocks) != 0 || len(s.hashes) != 0 {
		return fmt.Errorf("%w: SetKey on a sequence already in use", ErrInvalid)
	}
	s.root = p.hash(p.root, nil, key)
	s.keyed = true
	return nil
}

func (p *Pool) seqRoot(s *Seq) Hash {
	if s.keyed {
		return s.root
	}
	return p.root
}

// chainHash returns the hash of full block i of s, whose tokens are blk,
// computing and caching it if needed. Blocks are hashed in order, so i is
// at most len(s.hashes).
func (p *Pool) chainHash(s *Seq, i int, blk []int32) Hash {
	if i < len(s.hashes) {
		return s.hashes[i]
	}
	parent := p.seqRoot(s)
	if i > 0 {
		parent = s.hashes[i-1]
	}
	h := p.hash(parent, blk, nil)
	s.hashes = append(s.hashes, h)
	return h
}

func (p *Pool) blockTokens(b int32) []int32 {
	o := int(b) * p.blockSize
	return p.tokens[o : o+p.blockSize]
}

// Match finds the longest cached prefix of tokens for the empty sequence s:
// whole blocks whose hash is in the cache and whose stored parent hash and
// token ids equal the sequence's (a hash match with other content is a
// miss). The hit is capped at len(tokens)-1 tokens, rounded down to whole
// blocks, so at least one token is left to compute and produce logits: a
// prompt of exactly two blocks hits at most one block and computes the 16
// positions of the second.
//
// Match changes no ref counts. It returns the hit block ids (a view into a
// pool buffer, valid until the next Pool call, to be passed to Allocate) and
// the number of hit tokens. It caches the hashes it computed in s.
func (p *Pool) Match(s *Seq, tokens []int32) (blocks []int32, hitTokens int) {
	p.scratch = p.scratch[:0]
	if len(s.blocks) != 0 || len(tokens) == 0 {
		return p.scratch, 0
	}
	bs := p.blockSize
	limit := (len(tokens) - 1) / bs
	parent := p.seqRoot(s)
	for i := 0; i < limit; i++ {
		blk := tokens[i*bs : (i+1)*bs]
		h := p.chainHash(s, i, blk)
		b, ok := p.byHash[h]
		if !ok || p.parents[b] != parent || !slices.Equal(p.blockTokens(b), blk) {
			break
		}
		p.scratch = append(p.scratch, b)
		parent = h
	}
	s.query = len(tokens)
	return p.scratch, len(p.scratch) * bs
}

// Allocate makes s hold enough blocks for numTokens token positions. If
// cached is not empty (the blocks Match just returned for s, possibly a
// prefix of them), s must be empty and those blocks become its first entries,
// shared: their ref counts go up, and any that were free leave the free list
// without losing their content. Further blocks come from the front of the
// free list (least recently freed first); a cached block handed out this way
// loses its hash.
//
// Allocation is all or nothing: if the blocks cannot all be had, it returns
// ErrNoBlocks and nothing changed. A sequence that already holds enough
// blocks is left alone. The first successful Allocate after Match counts
// that lookup in Stats.
func (p *Pool) Allocate(s *Seq, cached []int32, numTokens int) error {
	if numTokens < 0 {
		return fmt.Errorf("%w: Allocate of %d tokens", ErrInvalid, numTokens)
	}
	if len(cached) > 0 {
		if len(s.blocks) != 0 {
			return fmt.Errorf("%w: Allocate with cached blocks for a sequence that already holds blocks", ErrInvalid)
		}
		if len(cached) > len(s.hashes) {
			return ErrStale
		}
		for i, b := range cached {
			if b < 0 || int(b) >= len(p.refs) || !p.cached[b] || p.hashes[b] != s.hashes[i] {
				return ErrStale
			}
		}
	}
	need := p.BlocksFor(numTokens) - len(s.blocks) - len(cached)
	if need < 0 {
		need = 0
	}
	take := need
	for _, b := range cached {
		if p.refs[b] == 0 {
			take++
		}
	}
	if take > p.free.n {
		return ErrNoBlocks
	}
	if len(s.blocks) == 0 && s.query > 0 {
		p.queries += uint64(s.query)
		p.hits += uint64(len(cached) * p.blockSize)
		s.query = 0
	}
	for _, b := range cached {
		if p.refs[b] == 0 {
			p.free.remove(b)
		}
		p.refs[b]++
		s.blocks = append(s.blocks, b)
	}
	if len(cached) > 0 {
		s.committed = len(cached)
	}
	for ; need > 0; need-- {
		b := p.free.front()
		p.free.remove(b)
		p.uncache(b)
		p.refs[b] = 1
		s.blocks = append(s.blocks, b)
	}
	return nil
}

// uncache drops block b's hash so its content can be overwritten.
func (p *Pool) uncache(b int32) {
	if p.cached[b] {
		delete(p.byHash, p.hashes[b])
		p.cached[b] = false
	}
}

// Commit declares that the KV entries of tokens (the sequence's tokens from
// position 0, all computed, no draft tokens) are written, and offers each
// newly full block to the prefix cache under its chain hash. A block whose
// hash is already cached in another block stays private (the existing copy
// serves hits). Partial blocks are never hashed. Only the engine's step loop
// calls Commit, after the forward pass that wrote the entries.
func (p *Pool) Commit(s *Seq, tokens []int32) {
	bs := p.blockSize
	full := min(len(tokens)/bs, len(s.blocks))
	for i := s.committed; i < full; i++ {
		blk := tokens[i*bs : (i+1)*bs]
		h := p.chainHash(s, i, blk)
		b := s.blocks[i]
		if p.cached[b] {
			continue
		}
		if _, dup := p.byHash[h]; dup {
			continue
		}
		parent := p.seqRoot(s)
		if i > 0 {
			parent = s.hashes[i-1]
		}
		p.cached[b] = true
		p.hashes[b] = h
		p.parents[b] = parent
		copy(p.blockTokens(b), blk)
		p.byHash[h] = b
	}
	if full > s.committed {
		s.committed = full
	}
}

// Truncate shrinks s to numTokens token positions, releasing the blocks
// past them (speculative tokens that were rejected). Committed blocks are
// final, so cutting into them fails with ErrInvalid.
func (p *Pool) Truncate(s *Seq, numTokens int) error {
	if numTokens < s.committed*p.blockSize || numTokens < 0 {
		return fmt.Errorf("%w: Truncate to %d tokens cuts into %d committed blocks", ErrInvalid, numTokens, s.committed)
	}
	keep := p.BlocksFor(numTokens)
	for i := len(s.blocks) - 1; i >= keep; i-- {
		p.release(s.blocks[i])
	}
	if keep < len(s.blocks) {
		s.blocks = s.blocks[:keep]
	}
	if full := numTokens / p.blockSize; full < len(s.hashes) {
		s.hashes = s.hashes[:full]
	}
	return nil
}

// Free releases all of s's blocks, last block first, so that of a freed
// chain the tail is evicted before the head (a head block is useful without
// its tail, not the other way round). Cached blocks go to the back of the
// free list and keep their content; uncached ones go to the front, to be
// reused before anything still worth hitting. s keeps its hash cache, so a
// preempted sequence can Match its own blocks again.
func (p *Pool) Free(s *Seq) {
	for i := len(s.blocks) - 1; i >= 0; i-- {
		p.release(s.blocks[i])
	}
	s.blocks = s.blocks[:0]
	s.committed = 0
}

func (p *Pool) release(b int32) {
	p.refs[b]--
	if p.refs[b] > 0 {
		return
	}
	if p.cached[b] {
		p.free.pushBack(b)
	} else {
		p.free.pushFront(b)
	}
}
