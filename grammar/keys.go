package grammar

import "slices"

// keyTrie is a byte trie of property names.
type keyTrie struct {
	kids  map[byte]*keyTrie
	final bool
}

// excludedKey is a JSON string key that is none of names: written with
// plain characters only (no escapes, which could spell a name another
// way), it leaves the names' trie at the first character no name has
// there, or closes where no name ends. Within a multi-byte character of a
// name it may only follow that name (stricter, never looser).
func (j *jsonBuilder) excludedKey(names []string) sym {
	root := &keyTrie{}
	for _, n := range names {
		t := root
		for i := 0; i < len(n); i++ {
			if t.kids == nil {
				t.kids = map[byte]*keyTrie{}
			}
			k := t.kids[n[i]]
			if k == nil {
				k = &keyTrie{}
				t.kids[n[i]] = k
			}
			t = k
		}
		t.final = true
	}
	return j.rule(cat(bytesOf(`"`), []sym{j.keyFrom(root, 0)}))
}

// keyFrom is the rest of an excluded key at trie node t; pending is the
// continuation bytes still due in the current character.
func (j *jsonBuilder) keyFrom(t *keyTrie, pending int) sym {
	var alts [][]sym
	if pending == 0 && !t.final {
		alts = append(alts, bytesOf(`"`))
	}
	kids := make([]byte, 0, len(t.kids))
	for b := range t.kids {
		kids = append(kids, b)
	}
	slices.Sort(kids)
	var excl class
	for _, b := range kids {
		next, ok := -1, false
		switch {
		case pending > 0:
			next, ok = pending-1, b >= 0x80 && b <= 0xBF
		case b >= 0x20 && b < 0x80 && b != '"' && b != '\\':
			next, ok = 0, true
		case b >= 0xC2 && b <= 0xDF:
			next, ok = 1, true
		case b >= 0xE0 && b <= 0xEF:
			next, ok = 2, true
		case b >= 0xF0 && b <= 0xF4:
			next, ok = 3, true
		}
		excl.add(b, b)
		if ok {
			alts = append(alts, []sym{symRange(b, b), j.keyFrom(t.kids[b], next)})
		}
	}
	if pending == 0 {
		rest := j.keyRestRule()
		for _, ch := range plainChars(&excl) {
			alts = append(alts, append(ch, rest))
		}
	}
	return j.rule(alts...)
}
