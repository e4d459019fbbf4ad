package grammar

// patternLengths returns the least and the greatest number of characters
// of the strings pattern matches, as JSON Schema's pattern reads it (a
// search: unanchored ends match anything); hi < 0: unbounded.
func patternLengths(pattern string) (lo, hi int, err error) {
	b := &builder{}
	oneChar := symRange('a', 'a') // every character counts one
	one := func([]runeRange) []sym { return []sym{oneChar} }
	seq, err := regexSyms(b, pattern, one, []sym{b.star([]sym{oneChar})})
	if err != nil {
		return 0, 0, err
	}
	root := b.rule(seq)
	if b.err != nil {
		return 0, 0, b.err
	}
	return minLength(b.rules, root.rule), maxLength(b.rules, root.rule), nil
}

// lenCap bounds the lengths computed (beyond it: unbounded).
const lenCap = 1 << 24

// minLength is the length of the shortest string rule r derives.
func minLength(rules [][][]sym, r int32) int {
	m := make([]int, len(rules))
	for i := range m {
		m[i] = lenCap
	}
	for changed := true; changed; {
		changed = false
		for i, alts := range rules {
			for _, alt := range alts {
				n := 0
				for _, s := range alt {
					if s.rule >= 0 {
						n += m[s.rule]
					} else {
						n++
					}
				}
				if n = min(n, lenCap); n < m[i] {
					m[i], changed = n, true
				}
			}
		}
	}
	return m[r]
}

// maxLength is the length of the longest string rule r derives, -1 when
// unbounded (a rule that reaches itself repeats).
func maxLength(rules [][][]sym, r int32) int {
	memo := make([]int, len(rules))
	state := make([]uint8, len(rules)) // 0 new, 1 on the path, 2 done
	var visit func(r int32) int
	visit = func(r int32) int {
		switch state[r] {
		case 1:
			return -1
		case 2:
			return memo[r]
		}
		state[r] = 1
		best := 0
		for _, alt := range rules[r] {
			n := 0
			for _, s := range alt {
				k := 1
				if s.rule >= 0 {
					if k = visit(s.rule); k < 0 {
						state[r] = 2
						memo[r] = -1
						return -1
					}
				}
				n += k
			}
			best = max(best, n)
		}
		if best > lenCap {
			best = -1
		}
		state[r], memo[r] = 2, best
		return best
	}
	return visit(r)
}
