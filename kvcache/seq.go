package kvcache

import "fmt"

// Seq is one sequence's block table: the ids of the blocks holding its token
// positions in order (position p lives in Blocks()[p/blockSize] at offset
// p%blockSize). The zero value is an empty sequence keyed by its pool's
// extra key. Only Pool methods change a Seq.
//
// A Seq also caches the chain hashes of its leading full blocks. They are a
// function of the token prefix, so the token stream a Seq is used with may
// only grow, or shrink through Pool.Truncate; Reset clears everything for a
// different stream.
type Seq struct {
	blocks    []int32
	hashes    []Hash // chain hashes of blocks 0..len(hashes)-1 of the token stream
	committed int    // leading blocks whose content is final and offered to the cache
	root      Hash   // chain root when keyed is set; otherwise the pool's root
	keyed     bool
	query     int // tokens looked up by the last Match, counted on admission
}

// Blocks returns the block table. The slice is owned by the Seq: read it,
// don't keep it past the next Pool call on this Seq.
func (s *Seq) Blocks() []int32 { return s.blocks }

// Committed returns how many leading blocks are final: hit at admission or
// hashed by Commit.
func (s *Seq) Committed() int { return s.committed }

// Reset empties a Seq that holds no blocks so it can serve another token
// stream. It fails with ErrInvalid if blocks are still held (Free first).
func (s *Seq) Reset() error {
	if len(s.blocks) != 0 {
		return fmt.Errorf("%w: Reset of a sequence holding %d blocks", ErrInvalid, len(s.blocks))
	}
	*s = Seq{blocks: s.blocks[:0], hashes: s.hashes[:0]}
	return nil
}
