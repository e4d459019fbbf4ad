package kvcache

import "fmt"

// Check verifies the pool's invariants in O(NumBlocks) and returns the first
// violation found. It is meant for tests and debugging, not for the step
// loop. Ref counts are checked against the sequences that hold them in
// CheckTables.
func (p *Pool) Check() error {
	n := len(p.refs)
	zero := 0
	for b, r := range p.refs {
		if r < 0 {
			return fmt.Errorf("kvcache: block %d has ref count %d", b, r)
		}
		if r == 0 {
			zero++
		}
	}
	if zero != p.free.n {
		return fmt.Errorf("kvcache: %d blocks have ref count 0 but the free list holds %d", zero, p.free.n)
	}
	seen := 0
	s := p.free.sentinel()
	for b, prev := p.free.next[s], s; b != s; prev, b = b, p.free.next[b] {
		if b < 0 || int(b) >= n {
			return fmt.Errorf("kvcache: free list links to %d", b)
		}
		if p.free.prev[b] != prev {
			return fmt.Errorf("kvcache: free list back link of block %d is %d, want %d", b, p.free.prev[b], prev)
		}
		if p.refs[b] != 0 {
			return fmt.Errorf("kvcache: block %d is on the free list with ref count %d", b, p.refs[b])
		}
		if seen++; seen > n {
			return fmt.Errorf("kvcache: free list has a cycle")
		}
	}
	if seen != p.free.n {
		return fmt.Errorf("kvcache: free list walk found %d blocks, count says %d", seen, p.free.n)
	}
	cached := 0
	for b := range p.cached {
		if !p.cached[b] {
			continue
		}
		cached++
		if got, ok := p.byHash[p.hashes[b]]; !ok || got != int32(b) {
			return fmt.Errorf("kvcache: cached block %d is not in the hash map (map has %d, %v)", b, got, ok)
		}
	}
	if cached != len(p.byHash) {
		return fmt.Errorf("kvcache: %d cached blocks but %d hash map entries", cached, len(p.byHash))
	}
	return nil
}

// CheckTables verifies that the ref count of every block equals the number
// of entries naming it in seqs, which must be every sequence holding blocks
// of this pool, and then runs Check.
func (p *Pool) CheckTables(seqs ...*Seq) error {
	count := make([]int32, len(p.refs))
	for _, s := range seqs {
		for _, b := range s.blocks {
			if b < 0 || int(b) >= len(count) {
				return fmt.Errorf("kvcache: block table holds %d, outside the pool", b)
			}
			count[b]++
		}
		if s.committed > len(s.blocks) {
			return fmt.Errorf("kvcache: sequence has %d committed of %d blocks", s.committed, len(s.blocks))
		}
	}
	for b, c := range count {
		if p.refs[b] != c {
			return fmt.Errorf("kvcache: block %d has ref count %d but %d table entries", b, p.refs[b], c)
		}
	}
	return p.Check()
}
