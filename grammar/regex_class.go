package grammar

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

var (
	digitSet = []runeRange{{'0', '9'}}
	wordSet  = []runeRange{{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}
	spaceSet = []runeRange{{'\t', '\r'}, {' ', ' '}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
		{0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}, {0xFEFF, 0xFEFF}}
)

// normalize sorts and merges rs.
func normalize(rs []runeRange) []runeRange {
	slices.SortFunc(rs, func(a, b runeRange) int { return int(a.lo - b.lo) })
	var out []runeRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

// negate is every Unicode scalar value outside rs.
func negate(rs []runeRange) []runeRange {
	rs = normalize(slices.Clone(rs))
	var out []runeRange
	next := rune(0)
	for _, r := range rs {
		if r.lo > next {
			out = append(out, runeRange{next, r.lo - 1})
		}
		next = max(next, r.hi+1)
	}
	if next <= utf8.MaxRune {
		out = append(out, runeRange{next, utf8.MaxRune})
	}
	return out
}

// class parses the rest of a [...] class.
func (p *regexParser) class() ([]runeRange, error) {
	neg := p.more() && p.peek() == '^'
	if neg {
		p.pos++
	}
	var rs []runeRange
	first := true
	for {
		if !p.more() {
			return nil, p.errf("missing ']'")
		}
		c := p.peek()
		if c == ']' && !first {
			p.pos++
			break
		}
		if c == ']' { // "[]" matches nothing in ECMAScript; "[^]" anything
			p.pos++
			if neg {
				return negate(nil), nil
			}
			return nil, nil
		}
		first = false
		lo, set, err := p.classAtom()
		if err != nil {
			return nil, err
		}
		if set != nil || !p.rangeFollows() {
			rs = append(rs, set...)
			if set == nil {
				rs = append(rs, runeRange{lo, lo})
			}
			continue
		}
		p.pos++ // '-'
		hi, hiSet, err := p.classAtom()
		if err != nil {
			return nil, err
		}
		if hiSet != nil || hi < lo {
			return nil, p.errf("invalid range in a character class")
		}
		rs = append(rs, runeRange{lo, hi})
	}
	if neg {
		return negate(rs), nil
	}
	return normalize(rs), nil
}

// rangeFollows reports whether "-x" (not "-]") comes next.
func (p *regexParser) rangeFollows() bool {
	return p.pos+1 < len(p.src) && p.src[p.pos] == '-' && p.src[p.pos+1] != ']'
}

// classAtom is one character of a class, or a set escape such as \d.
func (p *regexParser) classAtom() (rune, []runeRange, error) {
	c := p.peek()
	p.pos++
	if c != '\\' {
		return c, nil, nil
	}
	rs, err := p.escape(true)
	if err != nil {
		return 0, nil, err
	}
	if len(rs) == 1 && rs[0].lo == rs[0].hi {
		return rs[0].lo, nil, nil
	}
	return 0, rs, nil
}

// escape parses the rest of an escape (after '\'): a character or a set.
func (p *regexParser) escape(inClass bool) ([]runeRange, error) {
	if !p.more() {
		return nil, p.errf("trailing '\\'")
	}
	c := p.peek()
	p.pos++
	one := func(r rune) ([]runeRange, error) { return []runeRange{{r, r}}, nil }
	switch c {
	case 'd':
		return digitSet, nil
	case 'D':
		return negate(digitSet), nil
	case 'w':
		return wordSet, nil
	case 'W':
		return negate(wordSet), nil
	case 's':
		return spaceSet, nil
	case 'S':
		return negate(spaceSet), nil
	case 'n':
		return one('\n')
	case 't':
		return one('\t')
	case 'r':
		return one('\r')
	case 'f':
		return one('\f')
	case 'v':
		return one('\v')
	case '0':
		return one(0)
	case 'b':
		if inClass {
			return one('\b')
		}
		return nil, p.errf("word boundaries are not supported")
	case 'x':
		return p.hexEscape(2)
	case 'u':
		return p.hexEscape(4)
	}
	switch {
	case c >= '1' && c <= '9':
		return nil, p.errf("backreferences are not supported")
	case c == 'B' || c == 'p' || c == 'P' || c == 'c' || c == 'k':
		return nil, p.errf("the escape \\%c is not supported", c)
	}
	return one(c) // an escaped literal such as \. or \/
}

func (p *regexParser) hexEscape(n int) ([]runeRange, error) {
	if p.pos+n > len(p.src) {
		return nil, p.errf("short hex escape")
	}
	v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
	if err != nil {
		return nil, p.errf("bad hex escape")
	}
	p.pos += n
	return []runeRange{{rune(v), rune(v)}}, nil
}

// utf8Seqs returns the byte-class sequences whose concatenations are the
// UTF-8 encodings of lo..hi (surrogates excluded).
func utf8RangeSeqs(lo, hi rune) [][][2]byte {
	var out [][][2]byte
	for _, b := range [][2]rune{{0, 0x7F}, {0x80, 0x7FF}, {0x800, 0xD7FF}, {0xE000, 0xFFFF}, {0x10000, utf8.MaxRune}} {
		if l, h := max(lo, b[0]), min(hi, b[1]); l <= h {
			splitUTF8(l, h, &out)
		}
	}
	return out
}

// splitUTF8 splits lo..hi (of one encoded length) until each piece's
// encodings are a product of byte ranges.
func splitUTF8(lo, hi rune, out *[][][2]byte) {
	n := utf8.RuneLen(lo)
	for i := 1; i < n; i++ {
		m := rune(1)<<(6*i) - 1
		if lo&^m != hi&^m {
			if lo&m != 0 {
				splitUTF8(lo, lo|m, out)
				splitUTF8((lo|m)+1, hi, out)
				return
			}
			if hi&m != m {
				splitUTF8(lo, (hi&^m)-1, out)
				splitUTF8(hi&^m, hi, out)
				return
			}
		}
	}
	a, b := utf8.AppendRune(nil, lo), utf8.AppendRune(nil, hi)
	seq := make([][2]byte, n)
	for i := range seq {
		seq[i] = [2]byte{a[i], b[i]}
	}
	*out = append(*out, seq)
}

// rawChar is one character of rs as raw UTF-8.
func (b *builder) rawChar(rs []runeRange) []sym {
	var alts [][]sym
	for _, r := range rs {
		for _, seq := range utf8RangeSeqs(r.lo, r.hi) {
			alt := make([]sym, len(seq))
			for i, br := range seq {
				alt[i] = symRange(br[0], br[1])
			}
			alts = append(alts, alt)
		}
	}
	return []sym{b.rule(mergeFirstBytes(alts)...)}
}

// mergeFirstBytes joins single-byte alternatives into one class, so a set
// of ASCII characters is one byte element.
func mergeFirstBytes(alts [][]sym) [][]sym {
	var one sym
	one.rule = -1
	var out [][]sym
	for _, a := range alts {
		if len(a) == 1 && a[0].rule < 0 {
			for i := range one.cls {
				one.cls[i] |= a[0].cls[i]
			}
			continue
		}
		out = append(out, a)
	}
	if one.cls != (class{}) {
		out = append([][]sym{{one}}, out...)
	}
	return out
}

// jsonStrChar is one character of rs as written inside a JSON string:
// '"', '\\' and control characters escaped, others raw.
func (b *builder) jsonStrChar(rs []runeRange) []sym {
	var raw []runeRange
	var alts [][]sym
	for _, r := range rs {
		for c := r.lo; c <= min(r.hi, 0x1F); c++ {
			alts = append(alts, bytesOf(controlEscape(c)))
		}
		for _, c := range []rune{'"', '\\'} {
			if r.lo <= c && c <= r.hi {
				alts = append(alts, bytesOf(`\`+string(c)))
			}
		}
		lo := max(r.lo, 0x20)
		for _, cut := range []rune{'"', '\\'} {
			if lo <= cut && cut <= r.hi {
				if lo < cut {
					raw = append(raw, runeRange{lo, cut - 1})
				}
				lo = cut + 1
			}
		}
		if lo <= r.hi {
			raw = append(raw, runeRange{lo, r.hi})
		}
	}
	if len(raw) > 0 {
		alts = append(alts, b.rawChar(raw))
	}
	return []sym{b.rule(mergeFirstBytes(alts)...)}
}

// controlEscape is the JSON escape of control character c, as encoders
// write it.
func controlEscape(c rune) string {
	switch c {
	case '\n':
		return `\n`
	case '\t':
		return `\t`
	case '\r':
		return `\r`
	case '\b':
		return `\b`
	case '\f':
		return `\f`
	}
	return `\u00` + string("0123456789abcdef"[c>>4]) + string("0123456789abcdef"[c&15])
}

// singleClassRepeat recognizes a pattern that is one character set
// repeated, anchored at both ends ("^[a-z0-9_]+$", "^\\d{3,5}$"): its
// language is then a length range over the set, which length bounds
// beside it can narrow exactly. hi < 0: unbounded.
func singleClassRepeat(pattern string) (rs []runeRange, lo, hi int, ok bool) {
	src := []rune(pattern)
	n := len(src)
	if n < 3 || src[0] != '^' || src[n-1] != '$' || src[n-2] == '\\' {
		return nil, 0, 0, false
	}
	p := &regexParser{src: src[:n-1], pat: pattern, pos: 1, b: &builder{}}
	if !p.more() {
		return nil, 0, 0, false
	}
	var err error
	switch c := p.peek(); c {
	case '[':
		p.pos++
		rs, err = p.class()
	case '\\':
		p.pos++
		rs, err = p.escape(false)
	case '.':
		p.pos++
		rs = negate([]runeRange{{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}})
	default:
		if c == '(' || c == ')' || c == '|' || c == '*' || c == '+' || c == '?' || c == '{' || c == '^' || c == '$' {
			return nil, 0, 0, false
		}
		p.pos++
		rs = []runeRange{{c, c}}
	}
	if err != nil || len(rs) == 0 {
		return nil, 0, 0, false
	}
	lo, hi = 1, 1
	if p.more() {
		switch p.peek() {
		case '*':
			lo, hi = 0, -1
		case '+':
			lo, hi = 1, -1
		case '?':
			lo, hi = 0, 1
		case '{':
			var braced bool
			if lo, hi, braced = p.braces(); !braced {
				return nil, 0, 0, false
			}
		default:
			return nil, 0, 0, false
		}
		p.pos++
	}
	if p.more() {
		return nil, 0, 0, false
	}
	return rs, lo, hi, true
}
