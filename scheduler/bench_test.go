package scheduler

import (
	"testing"

	"github.com/sluice-llm/sluice/kvcache"
)

// decodeLoop is a minimal engine: 64 requests decoding, each replaced by a
// new one (same 32-token prompt, so admissions hit the prefix cache) when
// it finishes. Lengths are staggered so a few requests turn over each step.
type decodeLoop struct {
	s      *Scheduler
	res    []Result
	tok    []int32
	prompt []int32
	next   uint64
}

func newDecodeLoop(tb testing.TB) *decodeLoop {
	pool, err := kvcache.NewPool(1024, 16, []byte("bench"))
	if err != nil {
		tb.Fatal(err)
	}
	d := &decodeLoop{s: mustNew(tb, pool), tok: []int32{7}, prompt: tokens(32, 1)}
	for range 64 {
		d.submit(tb)
	}
	return d
}

func (d *decodeLoop) submit(tb testing.TB) {
	d.next++
	if err := d.s.Submit(Request{ID: d.next, Prompt: d.prompt, MaxTokens: 64 + int(d.next%64)}); err != nil {
		tb.Fatal(err)
	}
}

func (d *decodeLoop) step(tb testing.TB) {
	p, err := d.s.Schedule()
	if err != nil {
		tb.Fatal(err)
	}
	d.res = d.res[:0]
	for i := range p.Seqs {
		if p.Seqs[i].Logits {
			d.res = append(d.res, Result{ID: p.Seqs[i].ID, Tokens: d.tok})
		}
	}
	if err := d.s.Update(d.res); err != nil {
		tb.Fatal(err)
	}
	for d.s.NumRunning()+d.s.NumWaiting() < 64 {
		d.submit(tb)
	}
}

func TestSteadyStateStepDoesNotAllocate(t *testing.T) {
	d := newDecodeLoop(t)
	for range 400 { // every request slot has turned over at least once
		d.step(t)
	}
	if d.s.NumRunning() < 63 || d.s.NumRunning()+d.s.NumWaiting() != 64 {
		t.Fatalf("%d running, %d waiting", d.s.NumRunning(), d.s.NumWaiting())
	}
	if n := testing.AllocsPerRun(500, func() { d.step(t) }); n != 0 {
		t.Fatalf("%v allocations per step", n)
	}
}

// BenchmarkScheduleDecode64 measures one step (Schedule + Update) with 64
// running decodes, including their turnover.
func BenchmarkScheduleDecode64(b *testing.B) {
	d := newDecodeLoop(b)
	for range 400 {
		d.step(b)
	}
	b.ReportAllocs()
	for b.Loop() {
		d.step(b)
	}
}
