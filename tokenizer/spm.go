package tokenizer

import "strings"

// spmModel is SentencePiece-style BPE: the text (spaces written as "▁") is
// cut into characters, and the adjacent pair whose concatenation is the
// highest-scoring vocabulary token is merged until no pair forms a token.
// Characters left without a token fall back to byte tokens <0xXX>.
type spmModel struct {
	byteTok [256]int32 // token for each byte, or -1
	maxLen  int        // length of the longest token text
}

func newSPM(t *Tokenizer) *spmModel {
	m := &spmModel{}
	for _, tok := range t.tokens {
		m.maxLen = max(m.maxLen, len(tok))
	}
	const hex = "0123456789ABCDEF"
	for b := 0; b < 256; b++ {
		name := "<0x" + string(hex[b>>4]) + string(hex[b&15]) + ">"
		id, ok := t.index[name]
		if !ok {
			id, ok = t.index[string([]byte{byte(b)})]
		}
		if !ok {
			id = -1
		}
		m.byteTok[b] = id
	}
	return m
}

// symbol is a run of text in a linked list of symbols being merged.
type symbol struct {
	start, end int32 // byte span in the text being merged
	prev, next int32
	id         int32 // vocabulary id of the span, or -1
}

// bigram is a candidate merge of symbols left and right (the symbol after
// left at the time it was queued). size guards against stale entries:
// symbols only grow, so the pair is unchanged iff the sizes still add up.
type bigram struct {
	left, right int32
	size        int32
	id          int32   // token formed by the merge
	rank        float32 // lower merges first
}

// bigramHeap is a binary min-heap ordered by rank, then by left position.
type bigramHeap []bigram

// mergeBigrams runs the merge loop both vocabulary types share: it offers
// every adjacent pair of syms to tryAdd (which pushes the pairs the
// vocabulary can merge onto heap), then repeatedly applies the best merge
// still valid — both symbols unchanged since the bigram was pushed — and
// offers the merged symbol's new neighbours. Merged symbols take the
// bigram's id; emptied ones are unlinked.
func mergeBigrams(syms []symbol, heap *bigramHeap, tryAdd func(l, r int32)) {
	for i := 1; i < len(syms); i++ {
		tryAdd(int32(i-1), int32(i))
	}
	for len(*heap) > 0 {
		b := heap.pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.end == l.start || r.end == r.start || (l.end-l.start)+(r.end-r.start) != b.size {
			continue
		}
		l.end = r.end
		l.id = b.id
		r.start = r.end
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		tryAdd(l.prev, b.left)
		tryAdd(b.left, l.next)
	}
}

func (h bigramHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].left < h[j].left
}

func (h *bigramHeap) push(b bigram) {
	*h = append(*h, b)
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !a.less(i, p) {
			break
		}
		a[i], a[p] = a[p], a[i]
		i = p
	}
}

func (h *bigramHeap) pop() bigram {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && a.less(r, l) {
			m = r
		}
		if !a.less(m, i) {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top
}

// utf8Len is the length of the UTF-8 sequence a lead byte announces; stray
// continuation bytes count as one.
func utf8Len(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

// encode appends the tokens of one raw-text fragment to out.
func (m *spmModel) encode(t *Tokenizer, raw string, spacePrefix bool, out []int32) []int32 {
	var sb strings.Builder
	sb.Grow(len(raw) + len(raw)/2 + 3)
	if spacePrefix {
		sb.WriteString("▁")
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] == ' ' {
			sb.WriteString("▁")
		} else {
			sb.WriteByte(raw[i])
		}
	}
	text := sb.String()
	if text == "" {
		return out
	}

	syms := make([]symbol, 0, len(text))
	for off := 0; off < len(text); {
		n := min(utf8Len(text[off]), len(text)-off)
		i := int32(len(syms))
		syms = append(syms, symbol{start: int32(off), end: int32(off + n), prev: i - 1, next: i + 1})
		off += n
	}
	syms[len(syms)-1].next = -1

	var heap bigramHeap
	tryAdd := func(l, r int32) {
		if l < 0 || r < 0 || int(syms[r].end-syms[l].start) > m.maxLen {
			return
		}
		id, ok := t.index[text[syms[l].start:syms[r].end]]
		if !ok {
			return
		}
		heap.push(bigram{left: l, right: r, size: syms[r].end - syms[l].start, id: id, rank: -t.scores[id]})
	}
	mergeBigrams(syms, &heap, tryAdd)

	for i := int32(0); i != -1; i = syms[i].next {
		s := text[syms[i].start:syms[i].end]
		if id, ok := t.index[s]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(s); j++ {
			if id := m.byteTok[s[j]]; id >= 0 {
				out = append(out, id)
			} else if t.unk >= 0 {
				out = append(out, t.unk)
			}
		}
	}
	return out
}
