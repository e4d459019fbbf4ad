package kvcache

import (
	"errors"
	"testing"
)

// TestConstructorBounds: a pool needs at least one block of at least one
// token; one block of one token is fine.
func TestConstructorBounds(t *testing.T) {
	for _, c := range [][2]int{{0, 16}, {-1, 16}, {1, -1}} {
		if _, err := NewPool(c[0], c[1], nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewPool(%d, %d): %v, want ErrInvalid", c[0], c[1], err)
		}
	}
	for _, c := range [][2]int{{1, 1}, {1, 16}, {2, 0}} {
		p, err := NewPool(c[0], c[1], nil)
		if err != nil {
			t.Errorf("NewPool(%d, %d): %v", c[0], c[1], err)
			continue
		}
		bs := c[1]
		if bs == 0 {
			bs = DefaultBlockSize
		}
		if p.NumBlocks() != c[0] || p.BlockSize() != bs {
			t.Errorf("NewPool(%d, %d): %d blocks of %d", c[0], c[1], p.NumBlocks(), p.BlockSize())
		}
	}
}

// TestCallBounds: the boundaries of each call's arguments, ids outside the
// pool included, are refused or answered without a panic.
func TestCallBounds(t *testing.T) {
	p := mustPool(t, 4, 4)
	prompt := seqOf(9, 1) // two full blocks and one token
	var a Seq
	if err := p.Allocate(&a, nil, len(prompt)); err != nil {
		t.Fatal(err)
	}
	p.Commit(&a, prompt)
	for _, b := range []int32{-1, 4, 100} {
		if n := p.RefCount(b); n != 0 {
			t.Errorf("RefCount(%d) = %d outside the pool", b, n)
		}
	}
	if p.RefCount(0) != 1 || p.RefCount(2) != 1 || p.RefCount(3) != 0 {
		t.Errorf("ref counts %d %d %d %d", p.RefCount(0), p.RefCount(1), p.RefCount(2), p.RefCount(3))
	}
	// A sequence holding blocks (but no hashes) cannot take a key, and
	// matches nothing even when its tokens are cached.
	var b Seq
	if err := p.Allocate(&b, nil, 1); err != nil {
		t.Fatal(err)
	}
	if err := p.SetKey(&b, []byte("k")); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetKey on a sequence holding a block: %v", err)
	}
	if blocks, hit := p.Match(&b, prompt); hit != 0 || len(blocks) != 0 {
		t.Errorf("Match for a sequence holding a block: %d tokens hit", hit)
	}
	p.Free(&b)
	// Truncating to exactly the committed blocks is fine, one token less
	// is not; an empty uncommitted sequence truncates to 0.
	if err := p.Truncate(&a, 8); err != nil {
		t.Errorf("Truncate to the committed 8 tokens: %v", err)
	}
	if err := p.Truncate(&a, 7); !errors.Is(err, ErrInvalid) {
		t.Errorf("Truncate into a committed block: %v", err)
	}
	p.Free(&a)
	var c Seq
	if err := p.Allocate(&c, nil, 0); err != nil {
		t.Errorf("Allocate of 0 tokens: %v", err)
	}
	if err := p.Allocate(&c, nil, -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Allocate of -1 tokens: %v", err)
	}
	if err := p.Truncate(&c, 0); err != nil {
		t.Errorf("Truncate of an empty sequence to 0: %v", err)
	}
	if err := p.Truncate(&c, -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("Truncate to -1: %v", err)
	}
	// Cached ids that are not what Match returned are stale, never used.
	for _, bad := range []int32{-1, 4} {
		var s Seq
		if _, hit := p.Match(&s, prompt); hit != 8 {
			t.Fatalf("Match hit %d tokens, want 8", hit)
		}
		if err := p.Allocate(&s, []int32{bad}, len(prompt)); !errors.Is(err, ErrStale) {
			t.Errorf("Allocate with cached id %d: %v, want ErrStale", bad, err)
		}
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestSingleCachedBlock: one hit block is committed at once (it cannot be
// truncated into) and a one-token lookup is counted.
func TestSingleCachedBlock(t *testing.T) {
	p := mustPool(t, 4, 4)
	prompt := seqOf(5, 1)
	var a Seq
	if err := p.Allocate(&a, nil, len(prompt)); err != nil {
		t.Fatal(err)
	}
	p.Commit(&a, prompt)
	p.Free(&a)
	var s Seq
	cached, hit := p.Match(&s, prompt)
	if hit != 4 || len(cached) != 1 {
		t.Fatalf("Match: %d tokens in %d blocks", hit, len(cached))
	}
	if err := p.Allocate(&s, cached, len(prompt)); err != nil {
		t.Fatal(err)
	}
	if s.Committed() != 1 {
		t.Errorf("%d committed blocks after a one-block hit", s.Committed())
	}
	if err := p.Truncate(&s, 3); !errors.Is(err, ErrInvalid) {
		t.Errorf("Truncate into the hit block: %v", err)
	}
	p.Free(&s)
	q0 := p.Stats().QueryTokens
	var one Seq
	p.Match(&one, prompt[:1])
	if err := p.Allocate(&one, nil, 1); err != nil {
		t.Fatal(err)
	}
	if q := p.Stats().QueryTokens - q0; q != 1 {
		t.Errorf("a one-token lookup counted %d query tokens", q)
	}
}

// TestCheckFindsCorruption: Check and CheckTables report each kind of
// damage instead of passing it or panicking.
func TestCheckFindsCorruption(t *testing.T) {
	build := func() (*Pool, *Seq) {
		p := mustPool(t, 4, 4)
		s := &Seq{}
		prompt := seqOf(8, 1)
		if err := p.Allocate(s, nil, len(prompt)); err != nil {
			t.Fatal(err)
		}
		p.Commit(s, prompt)
		return p, s
	}
	for name, damage := range map[string]func(p *Pool, s *Seq){
		"free list link outside the pool": func(p *Pool, _ *Seq) { p.free.next[p.free.sentinel()] = 100 },
		"hash map names another block":    func(p *Pool, s *Seq) { p.byHash[p.hashes[s.blocks[1]]] = s.blocks[0] },
		"block table entry outside pool":  func(p *Pool, s *Seq) { s.blocks = append(s.blocks, 4) },
		"negative block table entry":      func(p *Pool, s *Seq) { s.blocks = append(s.blocks, -1) },
	} {
		p, s := build()
		if err := p.CheckTables(s); err != nil {
			t.Fatalf("%s: undamaged pool: %v", name, err)
		}
		damage(p, s)
		if err := p.CheckTables(s); err == nil {
			t.Errorf("%s: CheckTables passed", name)
		}
	}
}
