package grammar

import (
	"slices"
	"sync"

	"github.com/sluice-llm/sluice/tokenizer"
)

// vocab is a tokenizer's vocabulary as the matcher sees it: every token's
// bytes, and a trie of them in preorder. Built once per tokenizer (vocabFor)
// and immutable after.
type vocab struct {
	size  int
	bytes []string // bytes of each token; "" for special tokens (never allowed)
	eog   []int32  // end-of-generation tokens: allowed where the grammar can end

	// The trie without its root, in preorder: node i holds byte tb[i] at
	// depth td[i] (1 for the root's children); its subtree ends before
	// skip[i]; toks[tlo[i]:tlo[i+1]] are the tokens whose bytes end there.
	tb   []byte
	td   []uint16
	skip []int32
	tlo  []int32
	toks []int32
	maxD int
}

var vocabs sync.Map // *tokenizer.Tokenizer -> *vocabEntry

type vocabEntry struct {
	once sync.Once
	v    *vocab
}

// vocabFor returns tok's vocabulary, building its trie on first use.
func vocabFor(tok *tokenizer.Tokenizer) *vocab {
	e, _ := vocabs.LoadOrStore(tok, &vocabEntry{})
	ve := e.(*vocabEntry)
	ve.once.Do(func() { ve.v = newVocab(tok) })
	return ve.v
}

func newVocab(tok *tokenizer.Tokenizer) *vocab {
	n := tok.VocabSize()
	v := &vocab{size: n, bytes: make([]string, n), eog: tok.EOGs()}
	ids := make([]int32, 0, n)
	for i := range n {
		id := int32(i)
		if tok.IsSpecial(id) || tok.IsControl(id) {
			continue
		}
		if p := tok.Piece(id); p != "" {
			v.bytes[i] = p
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b int32) int {
		if c := compareStr(v.bytes[a], v.bytes[b]); c != 0 {
			return c
		}
		return int(a - b)
	})
	v.buildTrie(ids)
	return v
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// buildTrie lays out the trie of the sorted token bytes in preorder.
func (v *vocab) buildTrie(ids []int32) {
	var path []int32 // open nodes, path[d-1] at depth d
	prev := ""
	for _, id := range ids {
		s := v.bytes[id]
		l := 0
		for l < len(s) && l < len(prev) && s[l] == prev[l] && l < len(path) {
			l++
		}
		for len(path) > l {
			v.skip[path[len(path)-1]] = int32(len(v.tb))
			path = path[:len(path)-1]
		}
		for d := l; d < len(s); d++ {
			path = append(path, int32(len(v.tb)))
			v.tb = append(v.tb, s[d])
			v.td = append(v.td, uint16(d+1))
			v.skip = append(v.skip, 0)
			v.tlo = append(v.tlo, int32(len(v.toks)))
		}
		// Tokens of a node are contiguous: equal bytes sort together and
		// no node opens between them.
		v.toks = append(v.toks, id)
		v.maxD = max(v.maxD, len(s))
		prev = s
	}
	for _, p := range path {
		v.skip[p] = int32(len(v.tb))
	}
	v.tlo = append(v.tlo, int32(len(v.toks)))
}
