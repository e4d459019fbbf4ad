package engine

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFairAcrossClients: client "a" sends six requests (one request with
// n=6, as the server submits it) and takes both sequence slots; client
// "b"'s single request, sent while they run, is admitted at the next free
// slot instead of after all of a's.
func TestFairAcrossClients(t *testing.T) {
	var (
		engPtr   atomic.Pointer[Engine]
		mu       sync.Mutex
		order    []string
		recorded = map[string]bool{}
		gated    bool
		ready    = make(chan struct{})
		gate     = make(chan struct{})
	)
	// The hook runs on the loop goroutine: it records the order in which
	// requests are first scheduled, and holds the loop once a's first two
	// run until b has been submitted.
	hook := func() {
		e := engPtr.Load()
		if e == nil {
			return
		}
		var fresh []*request
		for _, r := range e.lp.live {
			if r.seen && !recorded[r.extID] {
				recorded[r.extID] = true
				fresh = append(fresh, r)
			}
		}
		sort.Slice(fresh, func(i, j int) bool { return fresh[i].id < fresh[j].id })
		mu.Lock()
		for _, r := range fresh {
			order = append(order, r.extID)
		}
		n := len(order)
		mu.Unlock()
		if !gated && n == 2 {
			gated = true
			close(ready)
			<-gate
		}
	}
	e := newTestEngineHook(t, stories, Config{MaxNumSeqs: 2}, hook)
	engPtr.Store(e)
	var streams []*Stream
	for i := 1; i <= 6; i++ {
		streams = append(streams, submit(t, e, &Request{ID: fmt.Sprintf("a%d", i), Client: "a",
			Prompt: []int32{1, 403, int32(300 + i)}, MaxTokens: 20 + i, IgnoreEOS: true}))
	}
	<-ready
	streams = append(streams, submit(t, e, &Request{ID: "b", Client: "b", Prompt: []int32{1, 403, 299}, MaxTokens: 4, IgnoreEOS: true}))
	close(gate)
	for _, s := range streams {
		if r := collect(t, s); r.final.Finish != FinishLength {
			t.Errorf("finish %v", r.final.Finish)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"a1", "a2", "b", "a3", "a4", "a5", "a6"}; !slices.Equal(order, want) {
		t.Errorf("admission order %v, want %v", order, want)
	}
}
