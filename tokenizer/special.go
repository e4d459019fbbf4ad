package tokenizer

import "slices"

// specialTrie finds which special tokens occur anywhere in a text, so that
// partition only searches for those. Nodes are numbered from 1 (0 is the
// root); the root's children are in an array, deeper edges in a map.
type specialTrie struct {
	root  [256]int32
	edges map[uint64]int32
	term  []int32 // per node: index in Tokenizer.specials, or -1
}

func newSpecialTrie(t *Tokenizer) *specialTrie {
	tr := &specialTrie{edges: map[uint64]int32{}, term: []int32{-1}}
	for k, id := range t.specials {
		tok := t.tokens[id]
		node := int32(0)
		for i := 0; i < len(tok); i++ {
			var child int32
			if node == 0 {
				child = tr.root[tok[i]]
			} else {
				child = tr.edges[uint64(node)<<8|uint64(tok[i])]
			}
			if child == 0 {
				child = int32(len(tr.term))
				tr.term = append(tr.term, -1)
				if node == 0 {
					tr.root[tok[i]] = child
				} else {
					tr.edges[uint64(node)<<8|uint64(tok[i])] = child
				}
			}
			node = child
		}
		if tr.term[node] < 0 {
			tr.term[node] = int32(k)
		}
	}
	return tr
}

// present returns the indexes into Tokenizer.specials of the tokens that
// occur in text, in increasing order, keeping only those allowed.
func (tr *specialTrie) present(t *Tokenizer, text string, allowControl bool) []int32 {
	var found []int32
	for i := 0; i < len(text); i++ {
		node := tr.root[text[i]]
		for j := i + 1; node != 0; j++ {
			if k := tr.term[node]; k >= 0 {
				if allowControl || t.attrs[t.specials[k]]&(attrControl|attrUnknown) == 0 {
					found = append(found, k)
				}
			}
			if j >= len(text) {
				break
			}
			node = tr.edges[uint64(node)<<8|uint64(text[j])]
		}
	}
	if len(found) > 1 {
		slices.Sort(found)
		found = slices.Compact(found)
	}
	return found
}
