package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// bpeModel is byte-level BPE: each pre-tokenized word is written in GPT-2's
// byte alphabet (every byte one printable rune), then the adjacent pair with
// the lowest merge rank is merged until no ranked pair is left.
type bpeModel struct {
	pre          *preTokenizer
	ignoreMerges bool

	// merges maps a pair of token ids to its rank and result.
	merges map[uint64]merge
	// strMerges holds the merges whose halves are not both tokens.
	strMerges map[[2]string]merge

	byteRune [256]string // byte -> its rune in the byte alphabet, as UTF-8
	byteID   [256]int32  // token of byteRune, or -1
}

type merge struct {
	rank int32
	id   int32 // token of the concatenation, or -1
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// byteAlphabet returns GPT-2's mapping of bytes to printable runes: the
// printable Latin-1 bytes map to themselves, the others to U+0100 onwards.
func byteAlphabet() (enc [256]rune) {
	n := rune(0)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			enc[b] = rune(b)
		} else {
			enc[b] = 256 + n
			n++
		}
	}
	return enc
}

var byteDecoder = func() map[rune]byte {
	m := make(map[rune]byte, 256)
	for b, r := range byteAlphabet() {
		m[r] = byte(b)
	}
	return m
}()

func newBPE(t *Tokenizer, merges []string, pre *preTokenizer, ignoreMerges bool) *bpeModel {
	m := &bpeModel{pre: pre, ignoreMerges: ignoreMerges, merges: make(map[uint64]merge, len(merges))}
	for b, r := range byteAlphabet() {
		m.byteRune[b] = string(r)
		if id, ok := t.index[m.byteRune[b]]; ok {
			m.byteID[b] = id
		} else {
			m.byteID[b] = -1
		}
	}
	for rank, s := range merges {
		var a, b string
		// The halves are separated by the first space after the first byte.
		if k := strings.IndexByte(s[min(1, len(s)):], ' '); k >= 0 {
			k += min(1, len(s))
			a, b = s[:k], s[k+1:]
		}
		res, ok := t.index[a+b]
		if !ok {
			res = -1
		}
		mg := merge{rank: int32(rank), id: res}
		ia, oka := t.index[a]
		ib, okb := t.index[b]
		if oka && okb {
			k := pairKey(ia, ib)
			if _, dup := m.merges[k]; !dup {
				m.merges[k] = mg
			}
			continue
		}
		if m.strMerges == nil {
			m.strMerges = make(map[[2]string]merge)
		}
		k := [2]string{a, b}
		if _, dup := m.strMerges[k]; !dup {
			m.strMerges[k] = mg
		}
	}
	return m
}

// encode appends the tokens of one raw-text fragment to out.
func (m *bpeModel) encode(t *Tokenizer, raw string, out []int32) []int32 {
	if raw == "" {
		return out
	}
	runes := []rune(raw)
	seg := &segmenter{r: runes, cls: make([]uint8, len(runes))}
	for i, r := range runes {
		seg.cls[i] = classOf(r)
	}
	words := m.pre.split(seg)

	var (
		word []byte
		enc  []byte
		syms []symbol
		heap bigramHeap
	)
	start := 0
	for _, n := range words {
		word = word[:0]
		for _, r := range runes[start : start+n] {
			word = utf8.AppendRune(word, r)
		}
		start += n

		enc = enc[:0]
		for _, b := range word {
			enc = append(enc, m.byteRune[b]...)
		}
		if m.ignoreMerges {
			if id, ok := t.index[string(enc)]; ok {
				out = append(out, id)
				continue
			}
		}

		// One symbol per byte of the word, spanning its rune in enc.
		syms = syms[:0]
		off := int32(0)
		for i, b := range word {
			w := int32(len(m.byteRune[b]))
			syms = append(syms, symbol{start: off, end: off + w, prev: int32(i) - 1, next: int32(i) + 1, id: m.byteID[b]})
			off += w
		}
		syms[len(syms)-1].next = -1

		heap = heap[:0]
		tryAdd := func(l, r int32) {
			if l < 0 || r < 0 {
				return
			}
			mg, ok := m.lookup(enc, &syms[l], &syms[r])
			if !ok {
				return
			}
			heap.push(bigram{left: l, right: r, size: syms[r].end - syms[l].start, id: mg.id, rank: float32(mg.rank)})
		}
		mergeBigrams(syms, &heap, tryAdd)

		for i := int32(0); i != -1; i = syms[i].next {
			s := &syms[i]
			if s.id >= 0 {
				out = append(out, s.id)
				continue
			}
			// No token for this piece: emit the tokens of its single
			// bytes, dropping those that have none.
			for _, c := range enc[s.start:s.end] {
				if id, ok := t.index[string([]byte{c})]; ok {
					out = append(out, id)
				}
			}
		}
	}
	return out
}

// lookup finds the merge of two adjacent symbols.
func (m *bpeModel) lookup(enc []byte, l, r *symbol) (merge, bool) {
	if l.id >= 0 && r.id >= 0 {
		mg, ok := m.merges[pairKey(l.id, r.id)]
		return mg, ok
	}
	if m.strMerges == nil {
		return merge{}, false
	}
	mg, ok := m.strMerges[[2]string{string(enc[l.start:l.end]), string(enc[r.start:r.end])}]
	return mg, ok
}

// bpePiece turns the text of a byte-level BPE token back into bytes. Runes
// outside the byte alphabet are kept as they are.
func bpePiece(tok string) string {
	var b []byte
	for _, r := range tok {
		if c, ok := byteDecoder[r]; ok {
			b = append(b, c)
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	return string(b)
}
