package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

var weightTypes = []quant.Type{
	quant.F32, quant.F16, quant.BF16,
	quant.Q8_0, quant.Q4_0, quant.Q4_1, quant.Q5_0, quant.Q5_1,
	quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K,
}

func isFloat(t quant.Type) bool { return t == quant.F32 || t == quant.F16 || t == quant.BF16 }

func open(t testing.TB, path string, threads int) *Backend {
	t.Helper()
	b, err := New(kernels.Options{Path: path, Threads: threads})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func randVec(rng *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64()) * scale
	}
	return v
}

// randRow is a weight-like row: normal values with per-32 block scales
// spread over two orders of magnitude, an occasional outlier and zero block.
func randRow(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for b := 0; b < n; b += 32 {
		s := float32(math.Pow(10, rng.Float64()*2-1))
		if rng.Intn(40) == 0 {
			s = 0
		}
		for i := b; i < b+32 && i < n; i++ {
			v[i] = float32(rng.NormFloat64()) * s
		}
		if rng.Intn(8) == 0 {
			v[b+rng.Intn(min(32, n-b))] *= 6
		}
	}
	return v
}

func quantizeRows(t testing.TB, typ quant.Type, rows [][]float32) []byte {
	t.Helper()
	rb, err := quant.RowBytes(typ, len(rows[0]))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, rb*len(rows))
	for i, r := range rows {
		if err := quant.Quantize(typ, r, out[i*rb:(i+1)*rb]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func forPaths(t *testing.T, f func(t *testing.T, path string)) {
	for _, p := range AvailablePaths() {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}

func TestPathSelection(t *testing.T) {
	av := AvailablePaths()
	if len(av) == 0 || av[0] != "portable" {
		t.Fatalf("available paths %v must start with portable", av)
	}
	t.Logf("available paths: %v", av)
	if _, err := New(kernels.Options{Path: "bogus"}); err == nil {
		t.Error("unknown path accepted")
	}
	for _, p := range Paths {
		b, err := New(kernels.Options{Path: p, Threads: 2})
		if PathAvailable(p) != (err == nil) {
			t.Errorf("path %s: available=%v, New error %v", p, PathAvailable(p), err)
		}
		if err == nil {
			if b.Path() != p {
				t.Errorf("Path() = %s, want %s", b.Path(), p)
			}
			b.Close()
		} else if !strings.Contains(err.Error(), "not supported") {
			t.Errorf("path %s: unhelpful error %v", p, err)
		}
	}
	t.Setenv(EnvPath, "portable")
	b, err := New(kernels.Options{Threads: 1})
	if err != nil || b.Path() != "portable" {
		t.Fatalf("%s=portable: path %v, err %v", EnvPath, b, err)
	}
	b.Close()
	t.Setenv(EnvPath, "")
	b, err = New(kernels.Options{})
	if err != nil || b.Path() != BestPath() {
		t.Fatalf("default path: %v, err %v", b, err)
	}
	b.Close()
	kb, err := kernels.Open("cpu", kernels.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if kb.Name() != "cpu" || len(kb.SupportedWeights()) != len(weightTypes) {
		t.Errorf("registered backend %s supports %v", kb.Name(), kb.SupportedWeights())
	}
	kb.Close()
}

// Activation quantizers must write exactly quant.Quantize's bytes.
func TestQuantizeActivations(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const n = 4096
	inputs := map[string][]float32{
		"normal": randVec(rng, n, 1),
		"rows":   randRow(rng, n),
		"tiny":   randVec(rng, n, 1e-6),
		"zeros":  make([]float32, n),
	}
	// Ties: with a block maximum of 127 every x*id is an exact half, which
	// tells round-half-away (Q8_0, Q8_1) from round-half-even (Q8_K).
	ties := make([]float32, n)
	for i := range ties {
		ties[i] = float32(i%255-127) + 0.5
		if i%32 == 0 || i%256 == 0 {
			ties[i] = 127
		}
	}
	inputs["ties"] = ties
	forPaths(t, func(t *testing.T, path string) {
		for name, x := range inputs {
			for _, typ := range []quant.Type{quant.Q8_0, quant.Q8_1, quant.Q8_K, quant.BF16} {
				if typ == quant.BF16 && actType(path, quant.BF16) != quant.BF16 {
					continue
				}
				want := quantizeRows(t, typ, [][]float32{x})
				got, err := quantizeAct(path, typ, x)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					for i := range got {
						if got[i] != want[i] {
							t.Errorf("%s %v: first difference at byte %d: %d, want %d", name, typ, i, got[i], want[i])
							break
						}
					}
				}
			}
		}
	})
}

// Each path's dot product against quant.VecDot on identical operands.
func TestVecDot(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	const k = 4096
	forPaths(t, func(t *testing.T, path string) {
		for _, typ := range weightTypes {
			for trial := 0; trial < 4; trial++ {
				wf, xf := randRow(rng, k), randVec(rng, k, float32(trial+1))
				w := quantizeRows(t, typ, [][]float32{wf})
				at := actType(path, typ)
				var x []byte
				if at == quant.F32 {
					x = f32Bytes(xf)
				} else {
					x = quantizeRows(t, at, [][]float32{xf})
				}
				got, err := vecDot(path, typ, k, w, x)
				if err != nil {
					t.Fatal(err)
				}
				wd := make([]float32, k)
				quant.Dequantize(typ, w, wd)
				var want, mag float64
				if at == quant.VecDotType(typ) {
					r, err := quant.VecDot(typ, k, w, x)
					if err != nil {
						t.Fatal(err)
					}
					want = float64(r)
					xd := make([]float32, k)
					quant.Dequantize(at, x, xd)
					for i := range wd {
						mag += math.Abs(float64(wd[i]) * float64(xd[i]))
					}
				} else {
					for i := range wd {
						want += float64(wd[i]) * float64(xf[i])
						mag += math.Abs(float64(wd[i]) * float64(xf[i]))
					}
				}
				if d := math.Abs(float64(got) - want); d > 1e-5*mag+1e-30 {
					t.Errorf("%v trial %d: got %v, want %v (diff %.3g, tolerance %.3g)", typ, trial, got, want, d, 1e-5*mag)
				}
			}
		}
	})
}

type mmCase struct {
	m, k, n int
}

var mmCases = []mmCase{
	{1, 256, 1},
	{13, 512, 3},
	{67, 1024, 17},
	{5, 11008, 3},
	{3, 14336, 1},
	// GEMM tiles: 16-row weight panels and 8-column (quantized) or
	// 4×6 (F16) activation tiles, with partial panels and tiles.
	{35, 512, 4},
	{16, 256, 5},
	{33, 768, 16},
	{49, 512, 64},
	{7, 40, 5}, // float types only: a K tail shorter than a vector
}

type mmRef struct {
	w     []byte
	x     []float32
	vd    []float64 // quant.VecDot on quant.Quantize'd activations, (n, m)
	exact []float64 // float64 dot of dequantized weights and x
	bound []float64 // error bound of exact vs the quantized computation
	mag   []float64 // Σ|w x|
}

func makeMMRef(t *testing.T, rng *rand.Rand, typ quant.Type, c mmCase) *mmRef {
	rows := make([][]float32, c.m)
	for i := range rows {
		rows[i] = randRow(rng, c.k)
	}
	r := &mmRef{w: quantizeRows(t, typ, rows), x: randVec(rng, c.n*c.k, 1)}
	rb, _ := quant.RowBytes(typ, c.k)
	wd := make([][]float32, c.m)
	for j := range wd {
		wd[j] = make([]float32, c.k)
		if err := quant.Dequantize(typ, r.w[j*rb:(j+1)*rb], wd[j]); err != nil {
			t.Fatal(err)
		}
	}
	vt := quant.VecDotType(typ)
	for i := 0; i < c.n; i++ {
		xi := r.x[i*c.k : (i+1)*c.k]
		var xq []byte
		if !isFloat(typ) {
			xq = quantizeRows(t, vt, [][]float32{xi})
		}
		// Per-element activation quantization error bound: 0.6 of the block step.
		step := make([]float64, c.k)
		if !isFloat(typ) {
			be := vt.BlockElems()
			for b := 0; b < c.k; b += be {
				var amax float64
				for _, v := range xi[b : b+be] {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				for e := b; e < b+be; e++ {
					step[e] = 0.6 * amax / 127
				}
			}
		}
		for j := 0; j < c.m; j++ {
			var ex, mag, bnd float64
			for e := 0; e < c.k; e++ {
				p := float64(wd[j][e]) * float64(xi[e])
				ex += p
				mag += math.Abs(p)
				bnd += math.Abs(float64(wd[j][e])) * step[e]
			}
			if typ == quant.Q4_1 || typ == quant.Q5_1 {
				bnd += 2e-3 * mag // m·s with s stored as F16
			}
			var vd float64
			if !isFloat(typ) {
				f, err := quant.VecDot(typ, c.k, r.w[j*rb:(j+1)*rb], xq)
				if err != nil {
					t.Fatal(err)
				}
				vd = float64(f)
			}
			r.vd = append(r.vd, vd)
			r.exact = append(r.exact, ex)
			r.bound = append(r.bound, bnd)
			r.mag = append(r.mag, mag)
		}
	}
	return r
}

func TestMatMul(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, typ := range weightTypes {
		t.Run(typ.String(), func(t *testing.T) {
			for _, c := range mmCases {
				if c.k%typ.BlockElems() != 0 {
					continue
				}
				ref := makeMMRef(t, rng, typ, c)
				for _, path := range AvailablePaths() {
					for _, threads := range []int{1, 2, 3} {
						name := fmt.Sprintf("%s/%dx%d/n=%d/threads=%d", path, c.m, c.k, c.n, threads)
						b := open(t, path, threads)
						w, err := b.Weight(typ, c.m, c.k, ref.w)
						if err != nil {
							t.Fatal(err)
						}
						// Extra rows in x and dst check that only n rows are used.
						x, _ := b.NewTensor(quant.F32, c.n+2, c.k)
						dst, _ := b.NewTensor(quant.F32, c.n+2, c.m)
						copy(x.F32(), ref.x)
						for i := range dst.F32() {
							dst.F32()[i] = 12345
						}
						if err := b.MatMul(dst, x, w, c.n); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						got := dst.F32()
						at := actType(path, typ)
						bad := 0
						for i := 0; i < c.n; i++ {
							for j := 0; j < c.m; j++ {
								g := float64(got[i*c.m+j])
								e := i*c.m + j
								var want, tol float64
								switch {
								case !isFloat(typ):
									want, tol = ref.vd[e], 2e-5*ref.mag[e]
									// Looser: the float product of the dequantized operands.
									if d := math.Abs(g - ref.exact[e]); d > 1.01*ref.bound[e]+1e-4*ref.mag[e]+1e-6 {
										if bad++; bad < 5 {
											t.Errorf("%s: (%d,%d) = %v, float reference %v, diff %.3g > bound %.3g", name, i, j, g, ref.exact[e], d, ref.bound[e])
										}
									}
								case at == quant.BF16:
									want, tol = ref.exact[e], 8e-3*ref.mag[e]
								default:
									want, tol = ref.exact[e], 1e-5*ref.mag[e]
								}
								if d := math.Abs(g - want); !(d <= tol+1e-30) {
									if bad++; bad < 5 {
										t.Errorf("%s: (%d,%d) = %v, want %v, diff %.3g > %.3g", name, i, j, g, want, d, tol)
									}
								}
							}
						}
						for i := c.n * c.m; i < len(got); i++ {
							if got[i] != 12345 {
								t.Fatalf("%s: wrote past row n at %d", name, i)
							}
						}
						b.Close()
					}
				}
			}
		})
	}
}

// A weight's packed form is made once, reused by later MatMuls of any
// batch size, and dropped by Free.
func TestMatMulPackedReuse(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	for _, typ := range []quant.Type{quant.Q4_0, quant.Q8_0, quant.Q4_K, quant.Q6_K} {
		c := mmCase{m: 21, k: 512, n: 9}
		ref := makeMMRef(t, rng, typ, c)
		b := open(t, BestPath(), 2)
		w, err := b.Weight(typ, c.m, c.k, ref.w)
		if err != nil {
			t.Fatal(err)
		}
		x, _ := b.NewTensor(quant.F32, c.n, c.k)
		copy(x.F32(), ref.x)
		dst, _ := b.NewTensor(quant.F32, c.n, c.m)
		for _, n := range []int{1, c.n, 2, 1, c.n} {
			clear(dst.F32())
			if err := b.MatMul(dst, x, w, n); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				for j := 0; j < c.m; j++ {
					e := i*c.m + j
					if d := math.Abs(float64(dst.F32()[e]) - ref.vd[e]); d > 2e-5*ref.mag[e]+1e-30 {
						t.Fatalf("%v n=%d (%d,%d): %v, want %v", typ, n, i, j, dst.F32()[e], ref.vd[e])
					}
				}
			}
		}
		b.Free(w)
		if w.Dev != nil || w.Host != nil {
			t.Errorf("%v: Free left storage", typ)
		}
	}
}

func TestGetRows(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	const rows, cols = 9, 512
	src := make([][]float32, rows)
	for i := range src {
		src[i] = randRow(rng, cols)
	}
	ids := []int32{3, 0, 8, 3, 5}
	forPaths(t, func(t *testing.T, path string) {
		for _, threads := range []int{1, 3} {
			b := open(t, path, threads)
			for _, typ := range weightTypes {
				data := quantizeRows(t, typ, src)
				tab, err := b.Weight(typ, rows, cols, data)
				if err != nil {
					t.Fatal(err)
				}
				dst, _ := b.NewTensor(quant.F32, len(ids), cols)
				if err := b.GetRows(dst, tab, ids); err != nil {
					t.Fatal(err)
				}
				rb, _ := quant.RowBytes(typ, cols)
				want := make([]float32, cols)
				for i, id := range ids {
					quant.Dequantize(typ, data[int(id)*rb:int(id+1)*rb], want)
					got := dst.F32()[i*cols : (i+1)*cols]
					for e := range want {
						if math.Float32bits(got[e]) != math.Float32bits(want[e]) {
							t.Fatalf("%v row %d: element %d = %v, want %v", typ, i, e, got[e], want[e])
						}
					}
				}
				if err := b.GetRows(dst, tab, []int32{int32(rows)}); err == nil {
					t.Errorf("%v: out-of-range id accepted", typ)
				}
			}
		}
	})
}

// opShapes are (rows, cols) for the row-wise ops; 17×4096 takes the
// multi-threaded split.
var opShapes = [][2]int{{1, 7}, {3, 4096}, {17, 4096}, {5, 11008}}

func closeRel(got, want float64, rel, abs float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)+abs
}

func TestElementwise(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	forPaths(t, func(t *testing.T, path string) {
		for _, threads := range []int{1, 2, 3} {
			b := open(t, path, threads)
			for _, sh := range opShapes {
				n, c := sh[0], sh[1]
				mk := func(v []float32, rows int) *kernels.Tensor {
					x, _ := b.NewTensor(quant.F32, rows, c)
					copy(x.F32(), v)
					return x
				}
				av, bv := randVec(rng, n*c, 2), randVec(rng, n*c, 2)
				wv := randVec(rng, c, 1)
				name := fmt.Sprintf("threads=%d/%dx%d", threads, n, c)

				// RMSNorm, in place.
				x := mk(av, n)
				w := mk(wv, 1)
				if err := b.RMSNorm(x, x, w, n, 1e-5); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					var ss float64
					for j := 0; j < c; j++ {
						ss += float64(av[i*c+j]) * float64(av[i*c+j])
					}
					sc := 1 / math.Sqrt(ss/float64(c)+1e-5)
					for j := 0; j < c; j++ {
						want := float64(av[i*c+j]) * sc * float64(wv[j])
						if g := float64(x.F32()[i*c+j]); !closeRel(g, want, 1e-5, 1e-6) {
							t.Fatalf("%s RMSNorm (%d,%d) = %v, want %v", name, i, j, g, want)
						}
					}
				}

				// AddBias.
				x = mk(av, n)
				if err := b.AddBias(x, w, n); err != nil {
					t.Fatal(err)
				}
				for e := 0; e < n*c; e++ {
					if x.F32()[e] != av[e]+wv[e%c] {
						t.Fatalf("%s AddBias %d", name, e)
					}
				}

				// Add, aliasing b.
				x, y := mk(av, n), mk(bv, n)
				if err := b.Add(y, x, y, n); err != nil {
					t.Fatal(err)
				}
				for e := 0; e < n*c; e++ {
					if y.F32()[e] != av[e]+bv[e] {
						t.Fatalf("%s Add %d", name, e)
					}
				}

				// Scale, in place: every row, and only the first n-1.
				x = mk(av, n)
				if err := b.Scale(x, -0.375, n); err != nil {
					t.Fatal(err)
				}
				for e := 0; e < n*c; e++ {
					if x.F32()[e] != av[e]*-0.375 {
						t.Fatalf("%s Scale %d: %v want %v", name, e, x.F32()[e], av[e]*-0.375)
					}
				}
				x = mk(av, n)
				if err := b.Scale(x, 3, n-1); err != nil {
					t.Fatal(err)
				}
				for e := 0; e < n*c; e++ {
					want := av[e] * 3
					if e >= (n-1)*c {
						want = av[e]
					}
					if x.F32()[e] != want {
						t.Fatalf("%s Scale of %d rows, element %d: %v want %v", name, n-1, e, x.F32()[e], want)
					}
				}

				// SiLUMul, aliasing gate.
				x, y = mk(av, n), mk(bv, n)
				if err := b.SiLUMul(x, x, y, n); err != nil {
					t.Fatal(err)
				}
				for e := 0; e < n*c; e++ {
					g := float64(av[e])
					want := g / (1 + math.Exp(-g)) * float64(bv[e])
					if got := float64(x.F32()[e]); !closeRel(got, want, 2e-6, 1e-7) {
						t.Fatalf("%s SiLUMul %d: %v want %v", name, e, got, want)
					}
				}

				// Softmax with a wide spread of logits and Argmax.
				lv := randVec(rng, n*c, 8)
				lv[rng.Intn(n*c)] = 60
				x = mk(lv, n)
				if err := b.Softmax(x, n); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					row := lv[i*c : (i+1)*c]
					m := math.Inf(-1)
					for _, v := range row {
						m = math.Max(m, float64(v))
					}
					var s float64
					for _, v := range row {
						s += math.Exp(float64(v) - m)
					}
					for j, v := range row {
						want := math.Exp(float64(v)-m) / s
						if g := float64(x.F32()[i*c+j]); !closeRel(g, want, 1e-5, 1e-12) {
							t.Fatalf("%s Softmax (%d,%d) = %v, want %v", name, i, j, g, want)
						}
					}
				}
				x = mk(lv, n)
				am := make([]int32, n)
				if err := b.Argmax(am, x); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					best := 0
					for j := 1; j < c; j++ {
						if lv[i*c+j] > lv[i*c+best] {
							best = j
						}
					}
					if int(am[i]) != best {
						t.Fatalf("%s Argmax row %d = %d, want %d", name, i, am[i], best)
					}
				}
			}
		}
	})
}

func TestArgmaxTies(t *testing.T) {
	b := open(t, "portable", 1)
	x, _ := b.NewTensor(quant.F32, 1, 5)
	copy(x.F32(), []float32{1, 3, 2, 3, 3})
	dst := []int32{-1}
	if err := b.Argmax(dst, x); err != nil || dst[0] != 1 {
		t.Fatalf("Argmax = %v, %v; want 1", dst, err)
	}
}

// ropeRef follows GGML's float32 arithmetic for theta.
func ropeRef(x []float32, cols int, pos []int32, p kernels.RopeParams) []float32 {
	out := append([]float32(nil), x...)
	dims := p.Dims
	thetaScale := float32(math.Pow(float64(p.Base), -2/float64(dims)))
	for r, ps := range pos {
		theta := float32(ps)
		cs := make([][2]float64, dims/2)
		for i := range cs {
			ff := float32(1)
			if p.Freqs != nil {
				ff = p.Freqs[i]
			}
			th := p.Scale * (theta / ff)
			cs[i] = [2]float64{math.Cos(float64(th)), math.Sin(float64(th))}
			theta *= thetaScale
		}
		for h := 0; h < cols; h += p.HeadDim {
			v := out[r*cols+h : r*cols+h+p.HeadDim]
			for i := 0; i < dims/2; i++ {
				a, b := i*2, i*2+1
				if p.NeoX {
					a, b = i, i+dims/2
				}
				x0, x1 := float64(v[a]), float64(v[b])
				v[a] = float32(x0*cs[i][0] - x1*cs[i][1])
				v[b] = float32(x0*cs[i][1] + x1*cs[i][0])
			}
		}
	}
	return out
}

func TestRope(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	freqs := make([]float32, 32)
	for i := range freqs {
		freqs[i] = 1 + float32(i)/4
	}
	params := []kernels.RopeParams{
		{HeadDim: 64, Dims: 64, Base: 10000, Scale: 1},
		{HeadDim: 64, Dims: 64, Base: 10000, Scale: 1, NeoX: true},
		{HeadDim: 128, Dims: 32, Base: 500000, Scale: 0.25},
		{HeadDim: 128, Dims: 32, Base: 10000, Scale: 1, NeoX: true},
		{HeadDim: 64, Dims: 64, Base: 500000, Scale: 1, Freqs: freqs},
		{HeadDim: 64, Dims: 64, Base: 1e6, Scale: 1, NeoX: true, Freqs: freqs},
	}
	forPaths(t, func(t *testing.T, path string) {
		for _, threads := range []int{1, 3} {
			b := open(t, path, threads)
			for pi, p := range params {
				for _, n := range []int{1, 3, 17} {
					cols := 4 * p.HeadDim
					pos := make([]int32, n)
					for i := range pos {
						pos[i] = int32(rng.Intn(5000))
					}
					pos[0] = 0
					xv := randVec(rng, n*cols, 1)
					x, _ := b.NewTensor(quant.F32, n+1, cols)
					copy(x.F32(), xv)
					if err := b.Rope(x, pos, p); err != nil {
						t.Fatal(err)
					}
					want := ropeRef(xv, cols, pos, p)
					for e := range want {
						if g := x.F32()[e]; math.Abs(float64(g-want[e])) > 2e-5 {
							t.Fatalf("params %d n=%d: element %d = %v, want %v", pi, n, e, g, want[e])
						}
					}
					for e := n * cols; e < (n+1)*cols; e++ {
						if x.F32()[e] != 0 {
							t.Fatalf("rotated a row past len(pos)")
						}
					}
				}
			}
		}
	})
}

func TestStoreKV(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	forPaths(t, func(t *testing.T, path string) {
		b := open(t, path, 2)
		for _, ct := range []quant.Type{quant.F32, quant.F16} {
			const cols, rows = 72, 10
			kc, _ := b.NewTensor(ct, rows, cols)
			vc, _ := b.NewTensor(ct, rows, cols)
			slots := []int32{7, 2, 9}
			kv, vv := randVec(rng, 3*cols, 1), randVec(rng, 3*cols, 1)
			k, _ := b.NewTensor(quant.F32, 3, cols)
			v, _ := b.NewTensor(quant.F32, 3, cols)
			copy(k.F32(), kv)
			copy(v.F32(), vv)
			if err := b.StoreKV(kc, vc, k, v, slots); err != nil {
				t.Fatal(err)
			}
			rb := kc.RowBytes()
			for i, s := range slots {
				for _, pair := range []struct {
					c   *kernels.Tensor
					src []float32
				}{{kc, kv}, {vc, vv}} {
					want := quantizeRows(t, ct, [][]float32{pair.src[i*cols : (i+1)*cols]})
					if string(pair.c.Host[int(s)*rb:int(s+1)*rb]) != string(want) {
						t.Fatalf("%v slot %d differs", ct, s)
					}
				}
			}
			if err := b.StoreKV(kc, vc, k, v, []int32{rows}); err == nil {
				t.Error("out-of-range slot accepted")
			}
		}
	})
}

// attnScenario is a batch mixing a 5-token prefill of sequence 0 with
// decodes of sequences 1 and 2 at different positions, over shuffled blocks.
type attnScenario struct {
	batch            kernels.AttnBatch
	heads, kvh, dim  int
	kvAll            map[[2]int][2][]float32 // (seq, pos) -> k, v rows
	q                []float32
	cacheRows, nSeqs int
}

func makeAttnScenario(rng *rand.Rand, heads, kvh, dim int) *attnScenario {
	const bs, maxBlocks = 16, 16
	s := &attnScenario{heads: heads, kvh: kvh, dim: dim, kvAll: map[[2]int][2][]float32{}, nSeqs: 3}
	// Sequence lengths after this step: 5 (prefill), 151, 10.
	lens := []int{5, 151, 10}
	nblocks := 0
	for _, l := range lens {
		nblocks += (l + bs - 1) / bs
	}
	nblocks += 3 // unused blocks
	perm := rng.Perm(nblocks)
	bt := make([]int32, len(lens)*maxBlocks)
	for i := range bt {
		bt[i] = -1
	}
	next := 0
	for sq, l := range lens {
		for blk := 0; blk < (l+bs-1)/bs; blk++ {
			bt[sq*maxBlocks+blk] = int32(perm[next])
			next++
		}
	}
	s.cacheRows = nblocks * bs
	s.batch = kernels.AttnBatch{BlockTables: bt, MaxBlocks: maxBlocks, BlockSize: bs}
	for p := 0; p < 5; p++ {
		s.batch.Pos = append(s.batch.Pos, int32(p))
		s.batch.Seq = append(s.batch.Seq, 0)
	}
	s.batch.Pos = append(s.batch.Pos, 150, 9)
	s.batch.Seq = append(s.batch.Seq, 1, 2)
	for i := range s.batch.Pos {
		sq, p := int(s.batch.Seq[i]), int(s.batch.Pos[i])
		s.batch.Slots = append(s.batch.Slots, bt[sq*maxBlocks+p/bs]*bs+int32(p%bs))
	}
	for sq, l := range lens {
		for p := 0; p < l; p++ {
			s.kvAll[[2]int{sq, p}] = [2][]float32{randVec(rng, kvh*dim, 1), randVec(rng, kvh*dim, 1)}
		}
	}
	s.q = randVec(rng, len(s.batch.Pos)*heads*dim, 1)
	return s
}

func (s *attnScenario) slot(sq, p int) int {
	bs := s.batch.BlockSize
	return int(s.batch.BlockTables[sq*s.batch.MaxBlocks+p/bs])*bs + p%bs
}

func (s *attnScenario) reference(round func([]float32) []float32, scale float32) []float64 {
	n := len(s.batch.Pos)
	out := make([]float64, n*s.heads*s.dim)
	grp := s.heads / s.kvh
	for i := 0; i < n; i++ {
		sq, ps := int(s.batch.Seq[i]), int(s.batch.Pos[i])
		for h := 0; h < s.heads; h++ {
			g := h / grp
			q := s.q[(i*s.heads+h)*s.dim : (i*s.heads+h+1)*s.dim]
			sc := make([]float64, ps+1)
			m := math.Inf(-1)
			for p := 0; p <= ps; p++ {
				k := round(s.kvAll[[2]int{sq, p}][0])[g*s.dim : (g+1)*s.dim]
				var d float64
				for e := range q {
					d += float64(q[e]) * float64(k[e])
				}
				sc[p] = d * float64(scale)
				m = math.Max(m, sc[p])
			}
			var sum float64
			for p := range sc {
				sc[p] = math.Exp(sc[p] - m)
				sum += sc[p]
			}
			o := out[(i*s.heads+h)*s.dim : (i*s.heads+h+1)*s.dim]
			for p := 0; p <= ps; p++ {
				v := round(s.kvAll[[2]int{sq, p}][1])[g*s.dim : (g+1)*s.dim]
				for e := range o {
					o[e] += sc[p] / sum * float64(v[e])
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	// Heads per KV head: 4, 1, 6, and 12 (split into groups of at most 8).
	geoms := [][3]int{{8, 2, 64}, {4, 4, 128}, {6, 1, 80}, {12, 1, 40}}
	forPaths(t, func(t *testing.T, path string) {
		for _, threads := range []int{1, 2, 3} {
			b := open(t, path, threads)
			for _, gm := range geoms {
				s := makeAttnScenario(rng, gm[0], gm[1], gm[2])
				for _, ct := range []quant.Type{quant.F32, quant.F16} {
					name := fmt.Sprintf("threads=%d/%v/heads=%d,%d/dim=%d", threads, ct, gm[0], gm[1], gm[2])
					cols := s.kvh * s.dim
					kc, _ := b.NewTensor(ct, s.cacheRows, cols)
					vc, _ := b.NewTensor(ct, s.cacheRows, cols)
					// Past positions first (one StoreKV per position), then the batch.
					k1, _ := b.NewTensor(quant.F32, 1, cols)
					v1, _ := b.NewTensor(quant.F32, 1, cols)
					inBatch := map[[2]int]bool{}
					for i := range s.batch.Pos {
						inBatch[[2]int{int(s.batch.Seq[i]), int(s.batch.Pos[i])}] = true
					}
					for key, kv := range s.kvAll {
						if inBatch[key] {
							continue
						}
						copy(k1.F32(), kv[0])
						copy(v1.F32(), kv[1])
						if err := b.StoreKV(kc, vc, k1, v1, []int32{int32(s.slot(key[0], key[1]))}); err != nil {
							t.Fatal(err)
						}
					}
					n := len(s.batch.Pos)
					kb, _ := b.NewTensor(quant.F32, n, cols)
					vb, _ := b.NewTensor(quant.F32, n, cols)
					for i := 0; i < n; i++ {
						kv := s.kvAll[[2]int{int(s.batch.Seq[i]), int(s.batch.Pos[i])}]
						copy(kb.F32()[i*cols:], kv[0])
						copy(vb.F32()[i*cols:], kv[1])
					}
					if err := b.StoreKV(kc, vc, kb, vb, s.batch.Slots); err != nil {
						t.Fatal(err)
					}
					q, _ := b.NewTensor(quant.F32, n, s.heads*s.dim)
					copy(q.F32(), s.q)
					out, _ := b.NewTensor(quant.F32, n, s.heads*s.dim)
					scale := float32(1 / math.Sqrt(float64(s.dim)))
					if err := b.Attention(out, q, kc, vc, &s.batch, kernels.AttnParams{Heads: s.heads, KVHeads: s.kvh, HeadDim: s.dim, Scale: scale}); err != nil {
						t.Fatal(err)
					}
					round := func(v []float32) []float32 { return v }
					if ct == quant.F16 {
						round = func(v []float32) []float32 {
							r := make([]float32, len(v))
							for i, x := range v {
								r[i] = quant.F16ToF32(quant.F32ToF16(x))
							}
							return r
						}
					}
					want := s.reference(round, scale)
					for e, w := range want {
						if g := float64(out.F32()[e]); math.Abs(g-w) > 2e-5 {
							t.Fatalf("%s: element %d (token %d) = %v, want %v", name, e, e/(s.heads*s.dim), g, w)
						}
					}
				}
			}
		}
	})
}

func TestAttentionErrors(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	b := open(t, "portable", 1)
	s := makeAttnScenario(rng, 4, 2, 32)
	kc, _ := b.NewTensor(quant.F32, s.cacheRows, 64)
	vc, _ := b.NewTensor(quant.F32, s.cacheRows, 64)
	n := len(s.batch.Pos)
	q, _ := b.NewTensor(quant.F32, n, 128)
	out, _ := b.NewTensor(quant.F32, n, 128)
	p := kernels.AttnParams{Heads: 4, KVHeads: 2, HeadDim: 32, Scale: 0.1}
	if err := b.Attention(out, q, kc, vc, &s.batch, p); err != nil {
		t.Fatal(err)
	}
	bad := s.batch
	bad.BlockTables = append([]int32(nil), s.batch.BlockTables...)
	bad.BlockTables[s.batch.MaxBlocks+2] = -1 // a block sequence 1 needs
	if err := b.Attention(out, q, kc, vc, &bad, p); err == nil {
		t.Error("missing block accepted")
	}
	bad = s.batch
	bad.Seq = []int32{0, 0, 0, 0, 0, 1, 7}
	if err := b.Attention(out, q, kc, vc, &bad, p); err == nil {
		t.Error("bad sequence accepted")
	}
	if err := b.Attention(out, q, kc, vc, &s.batch, kernels.AttnParams{Heads: 3, KVHeads: 2, HeadDim: 32}); err == nil {
		t.Error("bad head geometry accepted")
	}
}

func TestShapeErrors(t *testing.T) {
	b := open(t, "portable", 1)
	w, _ := b.Weight(quant.Q4_0, 4, 64, make([]byte, 4*2*18))
	x, _ := b.NewTensor(quant.F32, 2, 64)
	dst, _ := b.NewTensor(quant.F32, 2, 4)
	if err := b.MatMul(dst, x, w, 2); err != nil {
		t.Fatal(err)
	}
	if err := b.MatMul(dst, x, w, 3); err == nil {
		t.Error("n > rows accepted")
	}
	if err := b.MatMul(x, x, w, 1); err == nil {
		t.Error("wrong dst columns accepted")
	}
	if _, err := b.Weight(quant.Q4_0, 4, 60, make([]byte, 1000)); err == nil {
		t.Error("partial block accepted")
	}
	if _, err := b.Weight(quant.Q4_0, 4, 64, make([]byte, 10)); err == nil {
		t.Error("short data accepted")
	}
	if _, err := b.Weight(quant.IQ2_XXS, 1, 256, make([]byte, 1000)); err == nil {
		t.Error("unsupported type accepted")
	}
	if err := b.MatMul(dst, x, nil, 1); err == nil {
		t.Error("nil weight accepted")
	}
	freed, _ := b.NewTensor(quant.F32, 2, 64)
	b.Free(freed)
	if err := b.Add(freed, x, x, 1); err == nil {
		t.Error("freed tensor accepted")
	}
	if err := b.Rope(x, []int32{1}, kernels.RopeParams{HeadDim: 48, Base: 10000}); err == nil {
		t.Error("head dim not dividing columns accepted")
	}
	if err := b.Rope(x, []int32{1}, kernels.RopeParams{HeadDim: 32, Dims: 33, Base: 10000}); err == nil {
		t.Error("odd dims accepted")
	}
	b.Close()
	if err := b.MatMul(dst, x, w, 1); err == nil {
		t.Error("closed backend accepted work")
	}
}

// Steady-state ops must not allocate on the Go side.
func TestNoAllocs(t *testing.T) {
	b := open(t, BestPath(), 2)
	rng := rand.New(rand.NewSource(10))
	rows := make([][]float32, 64)
	for i := range rows {
		rows[i] = randRow(rng, 512)
	}
	w, _ := b.Weight(quant.Q4_K, 64, 512, quantizeRows(t, quant.Q4_K, rows))
	x, _ := b.NewTensor(quant.F32, 4, 512)
	copy(x.F32(), randVec(rng, 4*512, 1))
	dst, _ := b.NewTensor(quant.F32, 4, 64)
	allocs := testing.AllocsPerRun(20, func() {
		if err := b.MatMul(dst, x, w, 4); err != nil {
			t.Fatal(err)
		}
		b.RMSNorm(x, x, x, 1, 1e-5)
		b.Softmax(dst, 4)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run", allocs)
	}
}

func benchWeights(b *testing.B, typ quant.Type, m, k int) []byte {
	rng := rand.New(rand.NewSource(11))
	const distinct = 8
	rows := make([][]float32, distinct)
	for i := range rows {
		rows[i] = randRow(rng, k)
	}
	one := quantizeRows(b, typ, rows)
	out := make([]byte, 0, len(one)*m/distinct)
	for len(out) < len(one)*m/distinct {
		out = append(out, one...)
	}
	return out
}

// cpuSeconds is the process's user+system CPU time, for throughput figures
// that hold up when other processes share the cores.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkMatMul runs every weight type and path on a 4096×4096 weight
// with all cores; BenchmarkMatMul1T does the same on one thread and also
// reports throughput per CPU second (cpu-GB/s), which is what to compare
// between paths on a busy machine.
func BenchmarkMatMul(b *testing.B)   { benchMatMul(b, 0) }
func BenchmarkMatMul1T(b *testing.B) { benchMatMul(b, 1) }

func benchMatMul(b *testing.B, threads int) {
	const m, k = 4096, 4096
	for _, typ := range weightTypes {
		data := benchWeights(b, typ, m, k)
		for _, path := range AvailablePaths() {
			for _, n := range []int{1, 16} {
				b.Run(fmt.Sprintf("%v/%s/n=%d", typ, path, n), func(b *testing.B) {
					be := open(b, path, threads)
					w, err := be.Weight(typ, m, k, data)
					if err != nil {
						b.Fatal(err)
					}
					x, _ := be.NewTensor(quant.F32, n, k)
					copy(x.F32(), randVec(rand.New(rand.NewSource(1)), n*k, 1))
					dst, _ := be.NewTensor(quant.F32, n, m)
					b.SetBytes(int64(len(w.Host)))
					be.MatMul(dst, x, w, n)
					b.ResetTimer()
					c0 := cpuSeconds()
					for i := 0; i < b.N; i++ {
						if err := be.MatMul(dst, x, w, n); err != nil {
							b.Fatal(err)
						}
					}
					c1 := cpuSeconds()
					b.ReportMetric(2*float64(m)*float64(k)*float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					if threads == 1 {
						b.ReportMetric(float64(len(w.Host))*float64(b.N)/(c1-c0)/1e9, "cpu-GB/s")
					}
				})
			}
		}
	}
}

func BenchmarkAttention(b *testing.B) {
	const heads, kvh, dim, bs = 32, 8, 128, 16
	for _, ctx := range []int{512, 4096} {
		for _, ct := range []quant.Type{quant.F32, quant.F16} {
			for _, path := range AvailablePaths() {
				b.Run(fmt.Sprintf("ctx=%d/%v/%s", ctx, ct, path), func(b *testing.B) {
					be := open(b, path, 0)
					nb := ctx / bs
					kc, _ := be.NewTensor(ct, nb*bs, kvh*dim)
					vc, _ := be.NewTensor(ct, nb*bs, kvh*dim)
					rng := rand.New(rand.NewSource(1))
					if ct == quant.F32 {
						copy(kc.F32(), randVec(rng, nb*bs*kvh*dim, 1))
						copy(vc.F32(), randVec(rng, nb*bs*kvh*dim, 1))
					}
					bt := make([]int32, nb)
					for i, p := range rng.Perm(nb) {
						bt[i] = int32(p)
					}
					batch := &kernels.AttnBatch{Pos: []int32{int32(ctx - 1)}, Seq: []int32{0}, Slots: []int32{0}, BlockTables: bt, MaxBlocks: nb, BlockSize: bs}
					q, _ := be.NewTensor(quant.F32, 1, heads*dim)
					copy(q.F32(), randVec(rng, heads*dim, 1))
					out, _ := be.NewTensor(quant.F32, 1, heads*dim)
					p := kernels.AttnParams{Heads: heads, KVHeads: kvh, HeadDim: dim, Scale: 0.088}
					b.SetBytes(int64(2 * ctx * kvh * dim * int(map[quant.Type]int{quant.F32: 4, quant.F16: 2}[ct])))
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						if err := be.Attention(out, q, kc, vc, batch, p); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
