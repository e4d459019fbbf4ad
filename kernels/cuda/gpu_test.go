package cuda

// Op tests on a real GPU: each op against the CPU backend (itself tested
// against the quant reference) or, for MatMul and GetRows, against
// quant.Dequantize directly. Without the NVIDIA driver they skip, saying
// so, unless SLUICE_GPU_CHECK=1 (make gpu-check), where that is a failure.

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"testing"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/kernels/cpu"
	"github.com/sluice-llm/sluice/quant"
)

func openGPU(t *testing.T) *Backend {
	t.Helper()
	b, err := New(kernels.Options{})
	if err != nil {
		if os.Getenv("SLUICE_GPU_CHECK") == "1" {
			t.Fatalf("GPU check without a usable GPU: %v", err)
		}
		t.Skipf("no usable GPU here (%v); make gpu-check runs these on one", err)
	}
	t.Logf("device: %s", b.Device())
	t.Cleanup(func() { b.Close() })
	return b
}

func openCPU(t *testing.T) *cpu.Backend {
	t.Helper()
	c, err := cpu.New(kernels.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randF32(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// put makes an F32 (or F16 cache) tensor on be holding vals.
func put(t *testing.T, be kernels.Backend, typ quant.Type, rows, cols int, vals []float32) *kernels.Tensor {
	t.Helper()
	x, err := be.NewTensor(typ, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	if vals != nil {
		if err := be.Write(x, vals); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

func get(t *testing.T, be kernels.Backend, x *kernels.Tensor, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := be.Read(out, x); err != nil {
		t.Fatal(err)
	}
	return out
}

// closeTo fails when got and want differ by more than tol relative to the
// largest magnitude in want.
func closeTo(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	scale := 1e-6
	for _, w := range want {
		scale = math.Max(scale, math.Abs(float64(w)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*scale || math.IsNaN(float64(got[i])) {
			t.Errorf("%s: element %d = %v, want %v (tolerance %g of %g)", what, i, got[i], want[i], tol, scale)
			return
		}
	}
}

func quantWeight(t *testing.T, typ quant.Type, rows, cols int, rng *rand.Rand) ([]byte, []float32) {
	t.Helper()
	rb, err := quant.RowBytes(typ, cols)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, rows*rb)
	if err := quant.Quantize(typ, randF32(rng, rows*cols), raw); err != nil {
		t.Fatal(err)
	}
	deq := make([]float32, rows*cols)
	if err := quant.Dequantize(typ, raw, deq); err != nil {
		t.Fatal(err)
	}
	return raw, deq
}

func TestGPUMatMulAndGetRows(t *testing.T) {
	g := openGPU(t)
	rng := rand.New(rand.NewSource(2))
	const rows, cols = 200, 512
	for _, typ := range supported {
		raw, deq := quantWeight(t, typ, rows, cols, rng)
		w, err := g.Weight(typ, rows, cols, raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 3, 8, 9, 70} {
			x := randF32(rng, n*cols)
			want := make([]float32, n*rows)
			for i := 0; i < n; i++ {
				for j := 0; j < rows; j++ {
					var s float64
					for k := 0; k < cols; k++ {
						s += float64(x[i*cols+k]) * float64(deq[j*cols+k])
					}
					want[i*rows+j] = float32(s)
				}
			}
			xt, dt := put(t, g, quant.F32, n, cols, x), put(t, g, quant.F32, n, rows, nil)
			if err := g.MatMul(dt, xt, w, n); err != nil {
				t.Fatalf("%v n=%d: %v", typ, n, err)
			}
			closeTo(t, fmt.Sprintf("MatMul %v n=%d", typ, n), get(t, g, dt, n*rows), want, 1e-4)
			g.Free(xt)
			g.Free(dt)
		}
		ids := []int32{5, 0, 199, 5}
		dt := put(t, g, quant.F32, len(ids), cols, nil)
		if err := g.GetRows(dt, w, ids); err != nil {
			t.Fatal(err)
		}
		want := make([]float32, 0, len(ids)*cols)
		for _, id := range ids {
			want = append(want, deq[int(id)*cols:(int(id)+1)*cols]...)
		}
		closeTo(t, fmt.Sprintf("GetRows %v", typ), get(t, g, dt, len(ids)*cols), want, 1e-6)
		g.Free(w)
	}
}

// pair runs the same op on the GPU and the CPU backend and compares the
// first n elements of the tensors it names.
type pair struct {
	t    *testing.T
	g    *Backend
	c    *cpu.Backend
	tols float64
}

// both makes the same F32 tensor on each backend.
func (p pair) both(rows, cols int, vals []float32) (*kernels.Tensor, *kernels.Tensor) {
	return put(p.t, p.g, quant.F32, rows, cols, vals), put(p.t, p.c, quant.F32, rows, cols, vals)
}

func (p pair) same(what string, gt, ct *kernels.Tensor, n int) {
	closeTo(p.t, what, get(p.t, p.g, gt, n), get(p.t, p.c, ct, n), p.tols)
}

func TestGPUElementwiseOps(t *testing.T) {
	p := pair{t, openGPU(t), openCPU(t), 1e-5}
	rng := rand.New(rand.NewSource(3))
	const n, cols = 7, 1000
	av, bv, wv := randF32(rng, n*cols), randF32(rng, n*cols), randF32(rng, cols)
	ga, ca := p.both(n, cols, av)
	gb, cb := p.both(n, cols, bv)
	gw, cw := p.both(1, cols, wv)
	gd, cd := p.both(n, cols, nil)
	must := func(err1, err2 error) {
		t.Helper()
		if err1 != nil || err2 != nil {
			t.Fatalf("gpu: %v, cpu: %v", err1, err2)
		}
	}
	must(p.g.Add(gd, ga, gb, n), p.c.Add(cd, ca, cb, n))
	p.same("Add", gd, cd, n*cols)
	must(p.g.SiLUMul(gd, ga, gb, n), p.c.SiLUMul(cd, ca, cb, n))
	p.same("SiLUMul", gd, cd, n*cols)
	must(p.g.RMSNorm(gd, ga, gw, n, 1e-5), p.c.RMSNorm(cd, ca, cw, n, 1e-5))
	p.same("RMSNorm", gd, cd, n*cols)
	must(p.g.AddBias(ga, gw, n), p.c.AddBias(ca, cw, n))
	p.same("AddBias", ga, ca, n*cols)
	must(p.g.Scale(ga, -0.375, n), p.c.Scale(ca, -0.375, n))
	p.same("Scale", ga, ca, n*cols)
	must(p.g.Softmax(gb, n), p.c.Softmax(cb, n))
	p.same("Softmax", gb, cb, n*cols)
	gi, ci := make([]int32, n), make([]int32, n)
	must(p.g.Argmax(gi, ga), p.c.Argmax(ci, ca))
	if fmt.Sprint(gi) != fmt.Sprint(ci) {
		t.Errorf("Argmax: gpu %v, cpu %v", gi, ci)
	}
}

func TestGPURope(t *testing.T) {
	p := pair{t, openGPU(t), openCPU(t), 1e-4}
	rng := rand.New(rand.NewSource(4))
	pos := []int32{0, 1, 17, 4095, 100000}
	freqs := make([]float32, 32)
	for i := range freqs {
		freqs[i] = 1 + float32(i)/8
	}
	for _, rp := range []kernels.RopeParams{
		{HeadDim: 64, Base: 10000},
		{HeadDim: 64, Base: 500000, NeoX: true},
		{HeadDim: 128, Dims: 64, Base: 10000, Scale: 0.25},
		{HeadDim: 64, Base: 500000, Freqs: freqs},
	} {
		v := randF32(rng, len(pos)*4*rp.HeadDim)
		gx, cx := p.both(len(pos), 4*rp.HeadDim, v)
		if err := p.g.Rope(gx, pos, rp); err != nil {
			t.Fatal(err)
		}
		if err := p.c.Rope(cx, pos, rp); err != nil {
			t.Fatal(err)
		}
		p.same(fmt.Sprintf("Rope %+v", rp), gx, cx, len(pos)*4*rp.HeadDim)
	}
}

// TestGPUAttention stores K/V for a mixed batch (prefill runs and single
// decode tokens, shuffled block tables, grouped-query heads) on both
// backends and compares the attention outputs, for F32 and F16 caches.
func TestGPUAttention(t *testing.T) {
	p := pair{t, openGPU(t), openCPU(t), 2e-4}
	rng := rand.New(rand.NewSource(5))
	const heads, kvHeads, hd, bs, maxBlocks = 8, 2, 128, 16, 64
	lens := []int{1, 40, 700, 33}
	perm := rng.Perm(len(lens) * maxBlocks)
	bt := make([]int32, len(lens)*maxBlocks)
	for i := range bt {
		bt[i] = int32(perm[i])
	}
	var pos, seq, slots []int32
	for s, l := range lens {
		for q := 0; q < l; q++ {
			pos, seq = append(pos, int32(q)), append(seq, int32(s))
			slots = append(slots, bt[s*maxBlocks+q/bs]*bs+int32(q%bs))
		}
	}
	n, cacheRows := len(pos), len(bt)*bs
	for _, kvType := range []quant.Type{quant.F32, quant.F16} {
		kv := randF32(rng, n*kvHeads*hd)
		vv := randF32(rng, n*kvHeads*hd)
		gk, ck := p.both(n, kvHeads*hd, kv)
		gv, cv := p.both(n, kvHeads*hd, vv)
		gkc, gvc := put(t, p.g, kvType, cacheRows, kvHeads*hd, nil), put(t, p.g, kvType, cacheRows, kvHeads*hd, nil)
		ckc, cvc := put(t, p.c, kvType, cacheRows, kvHeads*hd, nil), put(t, p.c, kvType, cacheRows, kvHeads*hd, nil)
		if err := p.g.StoreKV(gkc, gvc, gk, gv, slots); err != nil {
			t.Fatal(err)
		}
		if err := p.c.StoreKV(ckc, cvc, ck, cv, slots); err != nil {
			t.Fatal(err)
		}
		params := kernels.AttnParams{Heads: heads, KVHeads: kvHeads, HeadDim: hd, Scale: float32(1 / math.Sqrt(hd))}
		// The whole batch (prefill tiles), then the last token of each
		// sequence alone (split-K decode).
		last := []int{0, 1 + 39, 41 + 699, 741 + 32}
		for _, sel := range [][]int{nil, last} {
			ab := kernels.AttnBatch{Pos: pos, Seq: seq, Slots: slots, BlockTables: bt, MaxBlocks: maxBlocks, BlockSize: bs}
			m := n
			if sel != nil {
				ab.Pos, ab.Seq, ab.Slots = nil, nil, nil
				for _, i := range sel {
					ab.Pos, ab.Seq, ab.Slots = append(ab.Pos, pos[i]), append(ab.Seq, seq[i]), append(ab.Slots, slots[i])
				}
				m = len(sel)
			}
			qv := randF32(rng, m*heads*hd)
			gq, cq := p.both(m, heads*hd, qv)
			gout, cout := p.both(m, heads*hd, nil)
			if err := p.g.Attention(gout, gq, gkc, gvc, &ab, params); err != nil {
				t.Fatal(err)
			}
			if err := p.c.Attention(cout, cq, ckc, cvc, &ab, params); err != nil {
				t.Fatal(err)
			}
			p.same(fmt.Sprintf("Attention %v cache, %d tokens", kvType, m), gout, cout, m*heads*hd)
		}
	}
}

// TestGPURefusesBadInput: errors, not crashes, on bad shapes and ids.
func TestGPURefusesBadInput(t *testing.T) {
	g := openGPU(t)
	x := put(t, g, quant.F32, 2, 64, nil)
	w, err := g.Weight(quant.F16, 3, 64, make([]byte, 3*64*2))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.GetRows(x, w, []int32{3}); err == nil {
		t.Error("GetRows with an id past the table: no error")
	}
	if err := g.MatMul(x, x, w, 2); err == nil {
		t.Error("MatMul into a dst of the wrong width: no error")
	}
	odd, err := g.Weight(quant.F16, 1, 48, make([]byte, 96))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.MatMul(put(t, g, quant.F32, 1, 1, nil), put(t, g, quant.F32, 1, 48, nil), odd, 1); err == nil {
		t.Error("MatMul with a 48-column F16 weight: no error")
	}
}
