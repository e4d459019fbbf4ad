package cuda

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

func fakeTensor(t *testing.T, b *Backend, typ quant.Type, rows, cols int) *kernels.Tensor {
	t.Helper()
	x, err := b.NewTensor(typ, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func fakeWeight(t *testing.T, b *Backend, typ quant.Type, rows, cols int) *kernels.Tensor {
	t.Helper()
	rb, _ := quant.RowBytes(typ, cols)
	raw := make([]byte, rows*rb)
	if err := quant.Quantize(typ, randF32(rand.New(rand.NewSource(1)), rows*cols), raw); err != nil {
		t.Fatal(err)
	}
	w, err := b.Weight(typ, rows, cols, raw)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestFakeMatMulLaunches checks the kernel, grid and packed arguments of
// MatMul's decode and prefill paths.
func TestFakeMatMulLaunches(t *testing.T) {
	b := newFakeBackend(132)
	defer b.Close()
	w := fakeWeight(t, b, quant.Q4_K, 100, 512)
	for _, c := range []struct {
		n      int
		kernel string
		grid   [3]int
		thr    int
	}{{1, "matvec_q4_k", [3]int{25, 1, 1}, 128}, {8, "matvec_q4_k", [3]int{25, 1, 1}, 128}, {65, "matmul_q4_k", [3]int{2, 2, 1}, 256}} {
		x, dst := fakeTensor(t, b, quant.F32, c.n, 512), fakeTensor(t, b, quant.F32, c.n, 100)
		if err := b.MatMul(dst, x, w, c.n); err != nil {
			t.Fatal(err)
		}
		ls := b.fakeLaunches()
		if len(ls) != 1 {
			t.Fatalf("n=%d: %d launches", c.n, len(ls))
		}
		l := ls[0]
		want := []uint64{devAddr(dst), devAddr(x), devAddr(w), 100, 512, uint64(c.n), 2 * 144}
		if l.Kernel != c.kernel || l.Grid != c.grid || l.Threads != c.thr || fmt.Sprint(l.Args[:7]) != fmt.Sprint(want) {
			t.Errorf("n=%d: launched %s %v×%d args %v; want %s %v×%d args %v", c.n, l.Kernel, l.Grid, l.Threads, l.Args[:7],
				c.kernel, c.grid, c.thr, want)
		}
	}
}

// TestFakeAttentionPaths: a pure decode batch takes split-K and the
// combine; a batch with a prefill run takes the tiles, whose table and
// metadata reach the device intact.
func TestFakeAttentionPaths(t *testing.T) {
	b := newFakeBackend(132)
	defer b.Close()
	const heads, kvh, hd, bs = 8, 2, 64, 16
	kc, vc := fakeTensor(t, b, quant.F16, 64*bs, kvh*hd), fakeTensor(t, b, quant.F16, 64*bs, kvh*hd)
	bt := make([]int32, 2*32)
	for i := range bt {
		bt[i] = int32(i)
	}
	p := kernels.AttnParams{Heads: heads, KVHeads: kvh, HeadDim: hd, Scale: 0.125}
	run := func(pos, seq []int32) []fakeLaunch {
		t.Helper()
		q, out := fakeTensor(t, b, quant.F32, len(pos), heads*hd), fakeTensor(t, b, quant.F32, len(pos), heads*hd)
		ab := kernels.AttnBatch{Pos: pos, Seq: seq, BlockTables: bt, MaxBlocks: 32, BlockSize: bs}
		if err := b.Attention(out, q, kc, vc, &ab, p); err != nil {
			t.Fatal(err)
		}
		return b.fakeLaunches()
	}
	ls := run([]int32{300, 7}, []int32{0, 1})
	if len(ls) != 2 || ls[0].Kernel != "attn_decode_f16" || ls[1].Kernel != "attn_combine" {
		t.Fatalf("decode batch launched %+v", ls)
	}
	splitLen, splits := decodeSplits(2, heads, 132, 301)
	if ls[0].Grid != [3]int{2, heads, splits} || ls[0].Args[14] != uint64(splitLen) || ls[1].Args[5] != uint64(splits) {
		t.Errorf("decode grid %v split %d, combine splits %d; want %v, %d, %d", ls[0].Grid, ls[0].Args[14], ls[1].Args[5],
			[3]int{2, heads, splits}, splitLen, splits)
	}
	if got := b.fakeRead(ls[0].Args[5], 2); fmt.Sprint(got) != "[300 7]" {
		t.Errorf("positions on the device %v", got)
	}
	if got := b.fakeRead(ls[0].Args[7], len(bt)); fmt.Sprint(got) != fmt.Sprint(bt) {
		t.Errorf("block tables on the device %v", got)
	}
	pos := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 40}
	seq := make([]int32, len(pos))
	seq[len(seq)-1] = 1
	ls = run(pos, seq)
	if len(ls) != 1 || ls[0].Kernel != "attn_prefill_f16" || ls[0].Grid != [3]int{3, heads, 1} {
		t.Fatalf("prefill batch launched %+v", ls)
	}
	if got := b.fakeRead(ls[0].Args[4], 6); fmt.Sprint(got) != "[0 16 16 2 18 1]" {
		t.Errorf("tiles on the device %v, want [0 16 16 2 18 1]", got)
	}
}

// TestFakeStepDoesNotAllocate runs one decode step's ops on the fake
// driver: once warm, the Go side allocates nothing.
func TestFakeStepDoesNotAllocate(t *testing.T) {
	b := newFakeBackend(132)
	defer b.Close()
	const dim, ff, vocab, heads, kvh, hd, n = 256, 512, 1000, 4, 2, 64, 4
	emb, wq, wo := fakeWeight(t, b, quant.Q6_K, vocab, dim), fakeWeight(t, b, quant.Q4_0, heads*hd, dim), fakeWeight(t, b, quant.Q8_0, vocab, dim)
	norm := fakeWeight(t, b, quant.F32, 1, dim)
	x, h := fakeTensor(t, b, quant.F32, n, dim), fakeTensor(t, b, quant.F32, n, dim)
	q, att := fakeTensor(t, b, quant.F32, n, heads*hd), fakeTensor(t, b, quant.F32, n, heads*hd)
	k := fakeTensor(t, b, quant.F32, n, kvh*hd)
	kc, vc := fakeTensor(t, b, quant.F16, 256, kvh*hd), fakeTensor(t, b, quant.F16, 256, kvh*hd)
	logits := fakeTensor(t, b, quant.F32, n, vocab)
	ids, pos, seq, slots := []int32{1, 2, 3, 4}, []int32{5, 9, 2, 30}, []int32{0, 1, 2, 3}, []int32{5, 41, 66, 126}
	bt := []int32{0, 1, 2, 3, 4, 5, 6, 7}
	ab := &kernels.AttnBatch{Pos: pos, Seq: seq, Slots: slots, BlockTables: bt, MaxBlocks: 2, BlockSize: 32}
	rp := kernels.RopeParams{HeadDim: hd, Base: 10000}
	ap := kernels.AttnParams{Heads: heads, KVHeads: kvh, HeadDim: hd, Scale: 0.125}
	next := make([]int32, n)
	step := func() {
		for _, err := range []error{
			b.GetRows(x, emb, ids), b.RMSNorm(h, x, norm, n, 1e-5), b.MatMul(q, h, wq, n), b.Rope(q, pos, rp),
			b.StoreKV(kc, vc, k, k, slots), b.Attention(att, q, kc, vc, ab, ap), b.SiLUMul(h, x, x, n), b.Add(x, x, h, n),
			b.AddBias(x, norm, n), b.MatMul(logits, x, wo, n), b.Softmax(logits, n), b.Argmax(next, logits),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	step()
	if a := testing.AllocsPerRun(5, step); a != 0 {
		t.Errorf("a decode step allocates %v times on the Go side", a)
	}
	b.fakeLaunches()
}

// TestFakeCloseFreesEverything: every device allocation is released by
// Free or Close.
func TestFakeCloseFreesEverything(t *testing.T) {
	before := fakeLiveAllocs()
	b := newFakeBackend(1)
	x := fakeTensor(t, b, quant.F32, 4, 64)
	fakeWeight(t, b, quant.Q4_0, 4, 64)
	b.Free(x)
	b.Free(x) // twice is allowed
	if err := b.GetRows(fakeTensor(t, b, quant.F32, 1, 64), x, []int32{0}); err == nil {
		t.Error("GetRows from a freed table: no error")
	}
	b.Close()
	if got := fakeLiveAllocs(); got != before {
		t.Errorf("%d fake device allocations left after Close", got-before)
	}
	if _, err := b.NewTensor(quant.F32, 1, 1); err == nil {
		t.Error("NewTensor after Close: no error")
	}
}

// TestFakeRefusesBadInput: every op returns an error naming the problem,
// never panics, for bad shapes, ids, slots, block tables and foreign or
// freed tensors.
func TestFakeRefusesBadInput(t *testing.T) {
	b := newFakeBackend(4)
	defer b.Close()
	x := fakeTensor(t, b, quant.F32, 2, 64)
	y := fakeTensor(t, b, quant.F32, 2, 32)
	w := fakeWeight(t, b, quant.Q8_0, 3, 64)
	odd, err := b.Weight(quant.F16, 1, 48, make([]byte, 96))
	if err != nil {
		t.Fatal(err)
	}
	freed := fakeTensor(t, b, quant.F32, 2, 64)
	b.Free(freed)
	foreign := &kernels.Tensor{Type: quant.F32, Rows: 2, Cols: 64, Host: make([]byte, 512)}
	kc := fakeTensor(t, b, quant.F16, 32, 64)
	q512, kc512 := fakeTensor(t, b, quant.F32, 1, 512), fakeTensor(t, b, quant.F16, 32, 512)
	ab := &kernels.AttnBatch{Pos: []int32{40}, Seq: []int32{0}, BlockTables: []int32{0, 1}, MaxBlocks: 2, BlockSize: 16}
	ap := kernels.AttnParams{Heads: 1, KVHeads: 1, HeadDim: 64, Scale: 1}
	for _, c := range []struct {
		what string
		err  error
		want string
	}{
		{"GetRows id past the table", b.GetRows(x, w, []int32{3}), "out of range"},
		{"GetRows negative id", b.GetRows(x, w, []int32{-1}), "out of range"},
		{"MatMul dst too narrow", b.MatMul(x, x, w, 2), "columns"},
		{"MatMul n past x", b.MatMul(y, x, w, 3), "rows"},
		{"MatMul 48-column weight", b.MatMul(y, y, odd, 1), "multiple of 32"},
		{"MatMul negative n", b.MatMul(y, x, w, -1), "negative"},
		{"Add shape mismatch", b.Add(x, x, y, 2), "columns"},
		{"RMSNorm freed x", b.RMSNorm(x, freed, x, 2, 1e-5), "no device storage"},
		{"Softmax foreign tensor", b.Softmax(foreign, 1), "no device storage"},
		{"Argmax nil", b.Argmax(make([]int32, 1), nil), "nil"},
		{"Rope odd dims", b.Rope(x, []int32{0, 1}, kernels.RopeParams{HeadDim: 64, Dims: 3, Base: 1e4}), "dims"},
		{"Rope bad base", b.Rope(x, []int32{0, 1}, kernels.RopeParams{HeadDim: 64, Base: 0}), "base"},
		{"StoreKV slot past the cache", b.StoreKV(kc, kc, x, x, []int32{0, 32}), "out of range"},
		{"StoreKV F32 into a Q8_0 weight", b.StoreKV(w, w, x, x, []int32{0}), "F32 or F16"},
		{"Attention position past the blocks", b.Attention(x, x, kc, kc, ab, ap), "outside"},
		{"Attention head dim 512", b.Attention(q512, q512, kc512, kc512, ab, kernels.AttnParams{Heads: 1, KVHeads: 1, HeadDim: 512}), "head dim"},
		{"Attention nil batch", b.Attention(x, x, kc, kc, nil, ap), "nil batch"},
		{"NewTensor Q4_0", func() error { _, err := b.NewTensor(quant.Q4_0, 1, 32); return err }(), "not supported"},
		{"Weight short data", func() error { _, err := b.Weight(quant.Q8_0, 2, 64, make([]byte, 10)); return err }(), "needs"},
		{"Weight Q8_1", func() error { _, err := b.Weight(quant.Q8_1, 1, 32, make([]byte, 36)); return err }(), "not supported"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.what, c.err, c.want)
		}
	}
	if n := len(b.fakeLaunches()); n != 0 {
		t.Errorf("%d kernels launched for refused calls", n)
	}
}
