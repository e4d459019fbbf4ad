package sample

import (
	"fmt"
	"runtime"
	"testing"
)

// The benchmark logits are roughly normal (spread 2) with a few tokens
// boosted by about 10, like a trained model's; "flat" rows have no boost, the
// worst case for top-p without top-k. cpu-ns/op is the benchmark thread's
// CPU time per call, steadier than ns/op on a shared machine.
func BenchmarkSample(b *testing.B) {
	for _, vocab := range []int{32000, 151936} {
		peaked := testLogits(vocab, 1, 2, 5)
		flat := testLogits(vocab, 1, 2, 0)
		for _, c := range []struct {
			name   string
			logits []float32
			mod    func(*Params)
		}{
			{"greedy", peaked, func(p *Params) { p.Temperature = 0 }},
			{"greedy-logprobs5", peaked, func(p *Params) { p.Temperature = 0; p.Logprobs = true; p.TopLogprobs = 5 }},
			{"greedy-reppen", peaked, func(p *Params) { p.Temperature = 0; p.RepetitionPenalty = 1.1 }},
			{"topk40", peaked, func(p *Params) { p.TopK = 40; p.Temperature = 0.8 }},
			{"topp0.9", peaked, func(p *Params) { p.TopP = 0.9; p.Temperature = 0.8 }},
			{"topp0.9-flat", flat, func(p *Params) { p.TopP = 0.9; p.Temperature = 0.8 }},
			{"minp0.05", peaked, func(p *Params) { p.MinP = 0.05 }},
			{"full", peaked, func(p *Params) {}},
		} {
			b.Run(fmt.Sprintf("%s/V=%d", c.name, vocab), func(b *testing.B) {
				s := mustNew(b, params(c.mod), vocab)
				s.AcceptPrompt([]int32{1, 2, 3, 4, 5, 6, 7, 8})
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := threadCPU()
				for i := 0; i < b.N; i++ {
					if _, err := s.Sample(c.logits); err != nil {
						b.Fatal(err)
					}
				}
				if cpu0 >= 0 {
					b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
				}
			})
		}
	}
}

// BenchmarkBaseline is one plain pass summing a 151936-entry row, to
// calibrate the Sample numbers against the machine's memory pass speed.
func BenchmarkBaseline(b *testing.B) {
	row := testLogits(151936, 1, 2, 5)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	var z float32
	for i := 0; i < b.N; i++ {
		for _, v := range row {
			z += v
		}
	}
	if cpu0 >= 0 {
		b.ReportMetric(float64(threadCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	}
	if z == 0 {
		b.Log(z)
	}
}
