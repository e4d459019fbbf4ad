package kvcache

// freeList is an intrusive doubly linked list over block ids: prev and next
// are indexed by block id, and index len(prev)-1 is the sentinel, so every
// operation is O(1) and nothing allocates after construction.
//
// The list holds exactly the blocks whose ref count is zero. Its front is the
// least recently freed block (the next one handed out); its back is the most
// recently freed one.
type freeList struct {
	prev, next []int32
	n          int
}

func newFreeList(numBlocks int) freeList {
	l := freeList{
		prev: make([]int32, numBlocks+1),
		next: make([]int32, numBlocks+1),
	}
	s := int32(numBlocks)
	l.prev[s], l.next[s] = s, s
	for b := int32(0); b < s; b++ {
		l.pushBack(b)
	}
	return l
}

func (l *freeList) sentinel() int32 { return int32(len(l.prev) - 1) }

func (l *freeList) insertAfter(b, at int32) {
	n := l.next[at]
	l.prev[b], l.next[b] = at, n
	l.next[at], l.prev[n] = b, b
	l.n++
}

// pushBack appends b as the most recently freed block.
func (l *freeList) pushBack(b int32) { l.insertAfter(b, l.prev[l.sentinel()]) }

// pushFront puts b first in line for reuse.
func (l *freeList) pushFront(b int32) { l.insertAfter(b, l.sentinel()) }

// remove unlinks b, which must be on the list.
func (l *freeList) remove(b int32) {
	p, n := l.prev[b], l.next[b]
	l.next[p], l.prev[n] = n, p
	l.prev[b], l.next[b] = -1, -1
	l.n--
}

// front returns the block to hand out next, or -1 when the list is empty.
func (l *freeList) front() int32 {
	if l.n == 0 {
		return -1
	}
	return l.next[l.sentinel()]
}
