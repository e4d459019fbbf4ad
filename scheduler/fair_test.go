package scheduler

import (
	"slices"
	"testing"
)

// submitAs submits like harness.submit, for a client.
func submitAs(h *harness, id uint64, client string, prompt []int32, maxTokens, priority int) {
	h.t.Helper()
	err := h.s.Submit(Request{ID: id, Prompt: prompt, MaxTokens: maxTokens, Priority: priority, Client: client})
	if err != nil {
		h.t.Fatal(err)
	}
	h.reqs[id] = submitted{slices.Clone(prompt), maxTokens}
	h.stream[id] = slices.Clone(prompt)
}

// admissionOrder steps until h is drained and returns the ids in the order
// they were first scheduled.
func admissionOrder(h *harness, limit int) []uint64 {
	h.t.Helper()
	var order []uint64
	seen := map[uint64]bool{}
	for i := 0; h.s.NumRunning()+h.s.NumWaiting() > 0; i++ {
		if i == limit {
			h.t.Fatalf("not drained after %d steps", limit)
		}
		for _, e := range h.step().Seqs {
			if !seen[e.ID] {
				seen[e.ID] = true
				order = append(order, e.ID)
			}
		}
	}
	return order
}

// With one sequence slot, two clients' waiting requests are admitted in
// turns, FCFS within each client, whatever order they arrived in.
func TestFairTwoClients(t *testing.T) {
	h := newHarness(t, 64, 16, Config{MaxNumSeqs: 1})
	for id := uint64(1); id <= 4; id++ {
		submitAs(h, id, "a", tokens(5, int32(10*id)), 2, 0)
	}
	submitAs(h, 5, "b", tokens(5, 100), 2, 0)
	submitAs(h, 6, "b", tokens(5, 200), 2, 0)
	if got, want := admissionOrder(h, 100), []uint64{1, 5, 2, 6, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("admission order %v, want %v", got, want)
	}
}

// Three clients; one of them arrives while another's requests are already
// being admitted: it joins the current round, ahead of the busy client's
// later turns, but does not overtake what is already running.
func TestFairThreeClients(t *testing.T) {
	h := newHarness(t, 64, 16, Config{MaxNumSeqs: 1})
	for id := uint64(1); id <= 4; id++ {
		submitAs(h, id, "a", tokens(5, int32(10*id)), 2, 0)
	}
	submitAs(h, 5, "b", tokens(5, 100), 2, 0)
	submitAs(h, 6, "b", tokens(5, 200), 2, 0)
	submitAs(h, 7, "b", tokens(5, 300), 2, 0)
	// Request 1 (a, turn 0) is admitted and decodes.
	if p := h.step(); len(p.Seqs) != 1 || p.Seqs[0].ID != 1 {
		t.Fatalf("first step %+v", chunks(p))
	}
	submitAs(h, 8, "c", tokens(5, 400), 2, 0)
	submitAs(h, 9, "c", tokens(5, 500), 2, 0)
	got := admissionOrder(h, 100)
	// 1 is still running: its entries come first; then turn 0 of b and
	// c, turn 1 of a, b, c, turn 2 of a, b, turn 3 of a.
	if want := []uint64{1, 5, 8, 2, 6, 9, 3, 7, 4}; !slices.Equal(got, want) {
		t.Fatalf("admission order %v, want %v", got, want)
	}
}

// Priorities still come first; round-robin is within a priority.
func TestFairWithinPriority(t *testing.T) {
	h := newHarness(t, 64, 16, Config{MaxNumSeqs: 1})
	submitAs(h, 1, "a", tokens(5, 10), 2, 0)
	submitAs(h, 2, "a", tokens(5, 20), 2, 0)
	submitAs(h, 3, "b", tokens(5, 30), 2, 0)
	submitAs(h, 4, "a", tokens(5, 40), 2, 1)
	submitAs(h, 5, "a", tokens(5, 50), 2, 1)
	if got, want := admissionOrder(h, 100), []uint64{4, 5, 1, 3, 2}; !slices.Equal(got, want) {
		t.Fatalf("admission order %v, want %v", got, want)
	}
	if len(h.s.clients) != 0 {
		t.Errorf("clients left after draining: %d", len(h.s.clients))
	}
}

// A client with many requests holding every slot does not keep another
// client's single request waiting until they all finish: it gets the next
// free slot, ahead of the rest of the big client's requests.
func TestFairSlotGoesToOtherClient(t *testing.T) {
	h := newHarness(t, 256, 16, Config{MaxNumSeqs: 4})
	for id := uint64(1); id <= 16; id++ {
		submitAs(h, id, "big", tokens(4, int32(10*id)), 3+int(id%4), 0)
	}
	first := chunks(h.step())
	if len(first) != 4 || first[0].id != 1 || first[3].id != 4 {
		t.Fatalf("first step %+v", first)
	}
	submitAs(h, 100, "small", tokens(4, 900), 2, 0)
	order := admissionOrder(h, 200)
	if len(order) != 17 || !slices.Equal(order[:4], []uint64{1, 2, 3, 4}) || order[4] != 100 {
		t.Fatalf("admission order %v: 100 should follow the four running requests", order)
	}
}
