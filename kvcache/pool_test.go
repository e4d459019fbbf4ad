package kvcache

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func mustPool(t testing.TB, numBlocks, blockSize int) *Pool {
	t.Helper()
	p, err := NewPool(numBlocks, blockSize, []byte("model-a"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freeOrder lists the free list from front (next handed out) to back.
func freeOrder(p *Pool) []int32 {
	var out []int32
	s := p.free.sentinel()
	for b := p.free.next[s]; b != s; b = p.free.next[b] {
		out = append(out, b)
	}
	return out
}

func seqOf(n int, start int32) []int32 {
	t := make([]int32, n)
	for i := range t {
		t[i] = start + int32(i)
	}
	return t
}

func check(t *testing.T, p *Pool, seqs ...*Seq) {
	t.Helper()
	if err := p.CheckTables(seqs...); err != nil {
		t.Fatal(err)
	}
}

func wantBlocks(t *testing.T, what string, got []int32, want ...int32) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// admit runs Match and Allocate for numTokens positions, as the scheduler
// does at admission, and returns the hit length.
func admit(t *testing.T, p *Pool, s *Seq, tokens []int32, numTokens int) int {
	t.Helper()
	cached, hit := p.Match(s, tokens)
	if err := p.Allocate(s, cached, numTokens); err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	return hit
}

func TestNewPoolRejectsBadSizes(t *testing.T) {
	for _, c := range []struct{ n, bs int }{{0, 16}, {-1, 16}, {4, -2}, {1 << 30, 16}} {
		if _, err := NewPool(c.n, c.bs, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("NewPool(%d, %d) err = %v, want ErrInvalid", c.n, c.bs, err)
		}
	}
	p := mustPool(t, 3, 0)
	if p.BlockSize() != DefaultBlockSize || p.NumBlocks() != 3 || p.NumFree() != 3 || p.Usage() != 0 {
		t.Fatalf("pool %d×%d free %d usage %v", p.NumBlocks(), p.BlockSize(), p.NumFree(), p.Usage())
	}
}

func TestBlocksHandedOutInFreeListOrder(t *testing.T) {
	p := mustPool(t, 8, 4)
	var a, b, c Seq
	if err := p.Allocate(&a, nil, 6); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "a", a.Blocks(), 0, 1)
	if err := p.Allocate(&b, nil, 9); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "b", b.Blocks(), 2, 3, 4)
	// Growing an existing table appends from the front of the free list;
	// a table already big enough is left alone.
	if err := p.Allocate(&a, nil, 9); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "a grown", a.Blocks(), 0, 1, 5)
	if err := p.Allocate(&a, nil, 3); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "a unchanged", a.Blocks(), 0, 1, 5)
	check(t, p, &a, &b)

	// Uncached blocks are freed tail first, each to the front: 0 ends up
	// first in line, then 1, then 5.
	p.Free(&a)
	wantBlocks(t, "free list", freeOrder(p), 0, 1, 5, 6, 7)
	if err := p.Allocate(&c, nil, 8); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "c", c.Blocks(), 0, 1)
	if p.NumFree() != 3 || p.Usage() != 5.0/8 {
		t.Fatalf("free %d usage %v", p.NumFree(), p.Usage())
	}
	check(t, p, &b, &c)
}

func TestSharedPrefixRefCounts(t *testing.T) {
	p := mustPool(t, 10, 4)
	prompt := seqOf(14, 100) // 3 full blocks + 2 tokens
	var a, b Seq
	if hit := admit(t, p, &a, prompt, len(prompt)); hit != 0 {
		t.Fatalf("cold hit %d", hit)
	}
	wantBlocks(t, "a", a.Blocks(), 0, 1, 2, 3)
	p.Commit(&a, prompt)
	if a.Committed() != 3 {
		t.Fatalf("a committed %d blocks, want 3", a.Committed())
	}

	hit := admit(t, p, &b, prompt, len(prompt))
	if hit != 12 {
		t.Fatalf("hit %d tokens, want 12", hit)
	}
	wantBlocks(t, "b", b.Blocks(), 0, 1, 2, 4)
	for blk, want := range []int{2, 2, 2, 1, 1} {
		if got := p.RefCount(int32(blk)); got != want {
			t.Errorf("ref(%d) = %d, want %d", blk, got, want)
		}
	}
	check(t, p, &a, &b)

	p.Free(&a)
	for blk, want := range []int{1, 1, 1, 0, 1} {
		if got := p.RefCount(int32(blk)); got != want {
			t.Errorf("after Free(a): ref(%d) = %d, want %d", blk, got, want)
		}
	}
	// a's private partial block 3 went to the front of the free list.
	wantBlocks(t, "free list", freeOrder(p), 3, 5, 6, 7, 8, 9)
	p.Free(&b)
	// b's partial block 4 to the front, then the shared chain tail first to
	// the back.
	wantBlocks(t, "free list", freeOrder(p), 4, 3, 5, 6, 7, 8, 9, 2, 1, 0)
	check(t, p)
	if s := p.Stats(); s.QueryTokens != 28 || s.HitTokens != 12 || s.CachedBlocks != 3 || s.FreeBlocks != 10 {
		t.Fatalf("stats %+v", s)
	}
}

func TestHitCappedBelowPromptLength(t *testing.T) {
	p := mustPool(t, 16, 4)
	long := seqOf(12, 7)
	var a Seq
	admit(t, p, &a, long, len(long))
	p.Commit(&a, long)

	for _, c := range []struct{ n, hit int }{
		{1, 0}, {4, 0}, // a one-block prompt can hit nothing
		{5, 4},
		{8, 4}, // exactly two blocks: one block hit, four positions computed
		{9, 8},
		{12, 8}, // fully cached prompt still computes its last block
	} {
		var s Seq
		blocks, hit := p.Match(&s, long[:c.n])
		if hit != c.hit || len(blocks)*4 != hit {
			t.Errorf("Match(%d tokens) = %v, %d; want hit %d", c.n, blocks, hit, c.hit)
		}
	}
	var s Seq
	if blocks, hit := p.Match(&s, nil); len(blocks) != 0 || hit != 0 {
		t.Errorf("Match(empty) = %v, %d", blocks, hit)
	}
}

func TestLRUEvictionOrder(t *testing.T) {
	p := mustPool(t, 4, 2)
	pa := []int32{1, 2, 3, 4, 9}
	pc := []int32{5, 6, 7, 8, 9}
	var a, c Seq
	admit(t, p, &a, pa, 4)
	p.Commit(&a, pa[:4])
	admit(t, p, &c, pc, 4)
	p.Commit(&c, pc[:4])
	wantBlocks(t, "a", a.Blocks(), 0, 1)
	wantBlocks(t, "c", c.Blocks(), 2, 3)
	p.Free(&a)
	p.Free(&c)
	// Least recently freed first; within a sequence the tail goes first.
	wantBlocks(t, "free list", freeOrder(p), 1, 0, 3, 2)
	if p.Stats().CachedBlocks != 4 {
		t.Fatalf("cached %d", p.Stats().CachedBlocks)
	}

	// A hit on a free cached block takes it off the free list (ref 0→1),
	// without touching the others' order.
	var c2 Seq
	if hit := admit(t, p, &c2, pc, 4); hit != 4 {
		t.Fatalf("c2 hit %d, want 4", hit)
	}
	wantBlocks(t, "c2", c2.Blocks(), 2, 3)
	if p.RefCount(2) != 1 || p.NumFree() != 2 {
		t.Fatalf("ref(2)=%d free=%d", p.RefCount(2), p.NumFree())
	}
	wantBlocks(t, "free list", freeOrder(p), 1, 0)
	p.Free(&c2)
	wantBlocks(t, "free list", freeOrder(p), 1, 0, 3, 2)

	// A fresh allocation reuses the least recently freed block (1, a's
	// tail) and drops its hash: a's prompt now hits its first block only.
	var d Seq
	if err := p.Allocate(&d, nil, 1); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "d", d.Blocks(), 1)
	var a2 Seq
	blocks, hit := p.Match(&a2, pa)
	if hit != 2 {
		t.Fatalf("after evicting a's tail, hit %d (%v), want 2", hit, blocks)
	}
	wantBlocks(t, "a2 match", blocks, 0)
	if _, ok := p.byHash[a2.hashes[1]]; ok {
		t.Fatal("evicted block's hash still maps to a block")
	}
	if p.Stats().CachedBlocks != 3 {
		t.Fatalf("cached %d", p.Stats().CachedBlocks)
	}
	check(t, p, &d)
}

// forgePool builds a pool whose hash function is deliberately weak.
func forgePool(numBlocks, blockSize int, fn hashFunc) *Pool {
	return newPool(numBlocks, blockSize, []byte("model-a"), fn)
}

func TestForgedCollisionIsAMiss(t *testing.T) {
	// Every block at the same depth collides: the hash sees only the parent.
	ignoreTokens := func(parent Hash, tokens []int32, extra []byte) Hash {
		h := parent
		h[0]++
		for i, c := range extra {
			h[1+i%15] ^= c
		}
		return h
	}
	p := forgePool(8, 2, ignoreTokens)
	pa := []int32{1, 2, 3, 4, 5}
	pb := []int32{1, 2, 9, 9, 5}
	var a, b Seq
	admit(t, p, &a, pa, len(pa))
	p.Commit(&a, pa[:4])
	if a.hashes[1] != func() Hash { var s Seq; p.Match(&s, pb); return s.hashes[1] }() {
		t.Fatal("the forged hash does not collide")
	}
	// Block 0 really matches; block 1 has the same hash but other tokens.
	if hit := admit(t, p, &b, pb, len(pb)); hit != 2 {
		t.Fatalf("hit %d, want 2 (block 1 collides with different tokens)", hit)
	}
	wantBlocks(t, "b", b.Blocks(), 0, 3, 4)
	// b's block 1 cannot take the colliding hash; a's copy keeps serving.
	p.Commit(&b, pb[:4])
	if p.cached[3] || p.byHash[a.hashes[1]] != 1 {
		t.Fatalf("colliding commit replaced the cached block")
	}
	check(t, p, &a, &b)

	// Same tokens under another key: a collision that only the parent
	// check catches (the forged hash ignores the tokens, and the keyed root
	// differs from the pool root only by extra bytes it also ignores here).
	ignoreAll := func(parent Hash, tokens []int32, extra []byte) Hash {
		if tokens == nil {
			h := parent
			h[0] ^= byte(len(extra)) // root: depends on the key's length only
			return h
		}
		return Hash{1} // every block collides with every other
	}
	q := forgePool(8, 2, ignoreAll)
	var x, y Seq
	if err := q.SetKey(&y, []byte("adapter-7")); err != nil {
		t.Fatal(err)
	}
	admit(t, q, &x, pa, 4)
	q.Commit(&x, pa[:4])
	if hit := admit(t, q, &y, pa, 5); hit != 0 {
		t.Fatalf("keyed sequence hit %d tokens of another key's blocks", hit)
	}
	check(t, q, &x, &y)
}

func TestKeysSeparateCaches(t *testing.T) {
	p := mustPool(t, 8, 2)
	prompt := []int32{1, 2, 3, 4, 5}
	var a, b, c Seq
	admit(t, p, &a, prompt, 5)
	p.Commit(&a, prompt[:4])
	if err := p.SetKey(&b, []byte("lora-1")); err != nil {
		t.Fatal(err)
	}
	if hit := admit(t, p, &b, prompt, 5); hit != 0 {
		t.Fatalf("adapter sequence hit %d", hit)
	}
	if hit := admit(t, p, &c, prompt, 5); hit != 4 {
		t.Fatalf("same-key sequence hit %d, want 4", hit)
	}
	if err := p.SetKey(&c, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetKey on a used sequence: %v", err)
	}
	other, _ := NewPool(8, 2, []byte("model-b"))
	if other.root == p.root {
		t.Fatal("different model fingerprints share a root hash")
	}
}

func TestAllocateAllOrNothing(t *testing.T) {
	p := mustPool(t, 5, 2)
	prompt := []int32{1, 2, 3, 4, 5}
	var a, b, c, d Seq
	admit(t, p, &a, prompt, 5) // blocks 0 1 2
	p.Commit(&a, prompt[:4])   // 0 and 1 cached
	p.Free(&a)                 // free list: 2 3 4 1 0
	if err := p.Allocate(&b, nil, 4); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "b", b.Blocks(), 2, 3)
	before := freeOrder(p)
	wantBlocks(t, "free list", before, 4, 1, 0)

	// c would take both cached free blocks and two fresh ones: four of three.
	cached, hit := p.Match(&c, append(slices.Clone(prompt), 6, 7, 8))
	if hit != 4 {
		t.Fatalf("hit %d", hit)
	}
	if err := p.Allocate(&c, cached, 8); !errors.Is(err, ErrNoBlocks) {
		t.Fatalf("Allocate = %v, want ErrNoBlocks", err)
	}
	if len(c.Blocks()) != 0 || p.NumFree() != 3 || p.Stats().QueryTokens != 5 {
		t.Fatalf("failed allocation leaked: c %v free %d", c.Blocks(), p.NumFree())
	}
	wantBlocks(t, "free list after failure", freeOrder(p), before...)
	if p.RefCount(0) != 0 || p.RefCount(1) != 0 || p.Stats().CachedBlocks != 2 {
		t.Fatal("failed allocation touched cached blocks")
	}
	// A plain allocation past the free count fails the same way.
	if err := p.Allocate(&b, nil, 12); !errors.Is(err, ErrNoBlocks) {
		t.Fatalf("grow b = %v", err)
	}
	wantBlocks(t, "b", b.Blocks(), 2, 3)
	check(t, p, &b)

	// Exactly enough succeeds: two cached blocks plus the last free one.
	cached, _ = p.Match(&d, prompt)
	if err := p.Allocate(&d, cached, 5); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "d", d.Blocks(), 0, 1, 4)
	if p.NumFree() != 0 || p.Usage() != 1 {
		t.Fatalf("free %d usage %v", p.NumFree(), p.Usage())
	}
	check(t, p, &b, &d)
}

func TestAllocateRejectsStaleAndMisuse(t *testing.T) {
	p := mustPool(t, 3, 2)
	prompt := []int32{1, 2, 3, 4, 5}
	var a, b, c Seq
	admit(t, p, &a, prompt, 4)
	p.Commit(&a, prompt[:4])
	p.Free(&a) // free list: 2 1 0
	cached, hit := p.Match(&b, prompt)
	if hit != 4 {
		t.Fatalf("hit %d", hit)
	}
	held := slices.Clone(cached)
	// Another sequence takes the whole pool, evicting blocks 1 and 0.
	if err := p.Allocate(&c, nil, 6); err != nil {
		t.Fatal(err)
	}
	if err := p.Allocate(&b, held, 5); !errors.Is(err, ErrStale) {
		t.Fatalf("Allocate with evicted blocks = %v, want ErrStale", err)
	}
	if err := p.Allocate(&c, []int32{0}, 2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("cached blocks for a non-empty table = %v", err)
	}
	if err := p.Allocate(&b, nil, -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative size = %v", err)
	}
	if err := c.Reset(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Reset of a holding sequence = %v", err)
	}
	check(t, p, &c)
}

func TestCommitOnlyFullBlocksAndDuplicates(t *testing.T) {
	p := mustPool(t, 8, 4)
	prompt := seqOf(10, 1)
	var a, b Seq
	// Both are admitted before either commits: no hits, same content twice.
	admit(t, p, &a, prompt, 10)
	admit(t, p, &b, prompt, 10)
	p.Commit(&a, prompt[:3]) // no full block yet
	if a.Committed() != 0 || p.Stats().CachedBlocks != 0 {
		t.Fatal("partial block committed")
	}
	p.Commit(&a, prompt) // two full blocks; the partial third stays private
	p.Commit(&b, prompt)
	if a.Committed() != 2 || b.Committed() != 2 || p.Stats().CachedBlocks != 2 {
		t.Fatalf("committed a=%d b=%d cached=%d", a.Committed(), b.Committed(), p.Stats().CachedBlocks)
	}
	if !p.cached[0] || !p.cached[1] || p.cached[3] || p.cached[4] {
		t.Fatal("the second copy should stay private")
	}
	// The private duplicates are reused first once freed.
	p.Free(&b)
	wantBlocks(t, "free list", freeOrder(p), 3, 4, 5, 6, 7)
	check(t, p, &a)
}

func TestTruncateReleasesOnlySurplusTail(t *testing.T) {
	p := mustPool(t, 8, 4)
	tokens := seqOf(6, 1)
	var s Seq
	admit(t, p, &s, tokens, 6)
	p.Commit(&s, tokens) // block 0 committed
	// Three draft tokens then five more positions: 14 positions, 4 blocks.
	if err := p.Allocate(&s, nil, 14); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "s", s.Blocks(), 0, 1, 2, 3)
	// Drafts rejected: back to 7 positions, blocks 2 and 3 released.
	if err := p.Truncate(&s, 7); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "s", s.Blocks(), 0, 1)
	wantBlocks(t, "free list", freeOrder(p), 2, 3, 4, 5, 6, 7)
	if err := p.Truncate(&s, 3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Truncate into a committed block = %v", err)
	}
	if err := p.Truncate(&s, 4); err != nil {
		t.Fatal(err)
	}
	wantBlocks(t, "s", s.Blocks(), 0)
	check(t, p, &s)
}

func TestStatsCountAdmissionsOnce(t *testing.T) {
	p := mustPool(t, 4, 2)
	prompt := []int32{1, 2, 3, 4, 5}
	var a, b, big Seq
	admit(t, p, &a, prompt, 5)
	p.Commit(&a, prompt[:4])
	if err := p.Allocate(&big, nil, 2); err != nil {
		t.Fatal(err)
	}
	// b retries while blocked: three lookups, one admission.
	for range 3 {
		cached, _ := p.Match(&b, prompt)
		if err := p.Allocate(&b, cached, 8); !errors.Is(err, ErrNoBlocks) {
			t.Fatal(err)
		}
	}
	p.Free(&big)
	admit(t, p, &b, prompt, 5)
	if s := p.Stats(); s.QueryTokens != 10 || s.HitTokens != 4 {
		t.Fatalf("queries %d hits %d, want 10 and 4", s.QueryTokens, s.HitTokens)
	}
}

func TestDefaultHash(t *testing.T) {
	var h sha256Hasher
	a := h.sum(Hash{}, []int32{1, 2}, nil)
	if a != h.sum(Hash{}, []int32{1, 2}, nil) {
		t.Fatal("hash is not deterministic")
	}
	for _, other := range []Hash{
		h.sum(Hash{}, []int32{2, 1}, nil),
		h.sum(Hash{1}, []int32{1, 2}, nil),
		h.sum(Hash{}, []int32{1, 2}, []byte{0}),
		h.sum(Hash{}, []int32{1, 2, 0}, nil),
		h.sum(Hash{}, nil, nil),
	} {
		if other == a {
			t.Fatal("distinct inputs hash alike")
		}
	}
	if h.sum(Hash{}, nil, nil) == h.sum(Hash{}, []int32{}, nil) {
		t.Fatal("root and empty block hash alike")
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	p := mustPool(t, 64, 16)
	prompt := seqOf(300, 1)
	var s Seq
	cycle := func() {
		cached, _ := p.Match(&s, prompt)
		if err := p.Allocate(&s, cached, len(prompt)+5); err != nil {
			t.Fatal(err)
		}
		p.Commit(&s, prompt)
		if err := p.Truncate(&s, len(prompt)); err != nil {
			t.Fatal(err)
		}
		p.Free(&s)
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	cycle()
	if n := testing.AllocsPerRun(50, cycle); n != 0 {
		t.Fatalf("%v allocations per admission cycle", n)
	}
}

func BenchmarkMatch4096(b *testing.B) {
	p := mustPool(b, 512, 16)
	prompt := seqOf(4096, 1)
	var warm Seq
	cached, _ := p.Match(&warm, prompt)
	if err := p.Allocate(&warm, cached, len(prompt)); err != nil {
		b.Fatal(err)
	}
	p.Commit(&warm, prompt)
	b.Run("cold", func(b *testing.B) { // hashes computed, 255 blocks hit
		b.ReportAllocs()
		var s Seq
		for b.Loop() {
			_ = s.Reset()
			if _, hit := p.Match(&s, prompt); hit != 4080 {
				b.Fatal(hit)
			}
		}
	})
	b.Run("warm", func(b *testing.B) { // hashes cached in the Seq
		b.ReportAllocs()
		var s Seq
		for b.Loop() {
			if _, hit := p.Match(&s, prompt); hit != 4080 {
				b.Fatal(hit)
			}
		}
	})
}

// TestHashEveryInput is a property test of the default hash: for random
// blocks of every length up to 32, changing the token at any one position
// (to any other value), the parent hash at any one byte, or the extra key
// changes the hash; so does moving a token from one block into the next.
func TestHashEveryInput(t *testing.T) {
	var h sha256Hasher
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 32; n++ {
		toks := make([]int32, n)
		for i := range toks {
			toks[i] = rng.Int32N(1 << 17)
		}
		var parent Hash
		for i := range parent {
			parent[i] = byte(rng.Uint32())
		}
		base := h.sum(parent, toks, nil)
		for i := range toks {
			orig := toks[i]
			for _, v := range []int32{orig + 1, orig - 1, orig ^ 1<<16, -orig - 1, 0} {
				if v == orig {
					continue
				}
				toks[i] = v
				if h.sum(parent, toks, nil) == base {
					t.Fatalf("block of %d tokens: token %d changed from %d to %d, hash unchanged", n, i, orig, v)
				}
			}
			toks[i] = orig
		}
		if h.sum(parent, toks, nil) != base {
			t.Fatalf("block of %d tokens: hash not restored with its input", n)
		}
		for i := range parent {
			p := parent
			p[i] ^= 1 << (i % 8)
			if h.sum(p, toks, nil) == base {
				t.Fatalf("block of %d tokens: parent byte %d changed, hash unchanged", n, i)
			}
		}
		if h.sum(parent, toks, []byte{0}) == base {
			t.Fatalf("block of %d tokens: extra key ignored", n)
		}
		if n > 2 {
			// Same tokens split differently between two chained blocks.
			a := h.sum(h.sum(parent, toks[:1], nil), toks[1:], nil)
			b := h.sum(h.sum(parent, toks[:n-1], nil), toks[n-1:], nil)
			if a == b {
				t.Fatalf("%d tokens chained as 1+%d and %d+1 hash alike", n, n-1, n-1)
			}
		}
	}
	// Root hashes differ by their key at every byte.
	key := []byte("model-fingerprint")
	root := h.sum(Hash{}, nil, key)
	for i := range key {
		k := slices.Clone(key)
		k[i] ^= 0x20
		if h.sum(Hash{}, nil, k) == root {
			t.Fatalf("root key byte %d changed, hash unchanged", i)
		}
	}
}
