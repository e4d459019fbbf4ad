package quant

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// computeTypes are the types with a reference dequantizer, quantizer and dot
// product, in table order.
var computeTypes = []Type{F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K}

// roundTripBound is the largest accepted RMS error of quantize→dequantize,
// relative to the RMS of the input, on Gaussian data. Measured values (see
// TestRoundTrip's log) are well below these.
var roundTripBound = map[Type]float64{
	F32:  0,
	F16:  0.0004,
	BF16: 0.003,
	Q8_0: 0.006,
	Q8_1: 0.006,
	Q8_K: 0.009,
	Q6_K: 0.025,
	Q5_0: 0.05,
	Q5_1: 0.05,
	Q5_K: 0.04,
	Q4_0: 0.11,
	Q4_1: 0.1,
	Q4_K: 0.08,
	Q3_K: 0.2,
	Q2_K: 0.4,
}

func gaussian(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

func quantizeT(t testing.TB, typ Type, x []float32) []byte {
	t.Helper()
	nb, err := RowBytes(typ, len(x))
	if err != nil {
		t.Fatal(err)
	}
	q := make([]byte, nb)
	if err := Quantize(typ, x, q); err != nil {
		t.Fatal(err)
	}
	return q
}

func dequantizeT(t testing.TB, typ Type, q []byte, n int) []float32 {
	t.Helper()
	y := make([]float32, n)
	if err := Dequantize(typ, q, y); err != nil {
		t.Fatal(err)
	}
	return y
}

func relRMS(x, y []float32) float64 {
	var se, sx float64
	for i := range x {
		d := float64(y[i]) - float64(x[i])
		se += d * d
		sx += float64(x[i]) * float64(x[i])
	}
	if sx == 0 {
		return math.Sqrt(se)
	}
	return math.Sqrt(se / sx)
}

func TestBlockSizes(t *testing.T) {
	sizes := map[Type]uintptr{
		Q4_0: unsafe.Sizeof(BlockQ4_0{}), Q4_1: unsafe.Sizeof(BlockQ4_1{}),
		Q5_0: unsafe.Sizeof(BlockQ5_0{}), Q5_1: unsafe.Sizeof(BlockQ5_1{}),
		Q8_0: unsafe.Sizeof(BlockQ8_0{}), Q8_1: unsafe.Sizeof(BlockQ8_1{}),
		Q2_K: unsafe.Sizeof(BlockQ2_K{}), Q3_K: unsafe.Sizeof(BlockQ3_K{}),
		Q4_K: unsafe.Sizeof(BlockQ4_K{}), Q5_K: unsafe.Sizeof(BlockQ5_K{}),
		Q6_K: unsafe.Sizeof(BlockQ6_K{}), Q8_K: unsafe.Sizeof(BlockQ8_K{}),
	}
	for typ, size := range sizes {
		if int(size) != typ.BlockBytes() {
			t.Errorf("%v: struct is %d bytes, type table says %d", typ, size, typ.BlockBytes())
		}
	}
	// The type table's Dequant flag must agree with what is implemented.
	for typ, info := range typeInfo {
		if has := formats[typ].dequant != nil; has != info.Dequant {
			t.Errorf("%v: type table Dequant=%v, dequantizer implemented=%v", typ, info.Dequant, has)
		}
	}
}

// TestEncodeDecode checks that Decode and Encode are inverses on random
// bytes for every block type.
func TestEncodeDecode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	type codec interface {
		Decode([]byte)
		Encode([]byte)
	}
	blocks := map[Type]codec{
		Q4_0: &BlockQ4_0{}, Q4_1: &BlockQ4_1{}, Q5_0: &BlockQ5_0{}, Q5_1: &BlockQ5_1{},
		Q8_0: &BlockQ8_0{}, Q8_1: &BlockQ8_1{}, Q2_K: &BlockQ2_K{}, Q3_K: &BlockQ3_K{},
		Q4_K: &BlockQ4_K{}, Q5_K: &BlockQ5_K{}, Q6_K: &BlockQ6_K{}, Q8_K: &BlockQ8_K{},
	}
	for typ, b := range blocks {
		in := make([]byte, typ.BlockBytes())
		for i := range in {
			in[i] = byte(r.Uint32())
		}
		b.Decode(in)
		out := make([]byte, len(in))
		b.Encode(out)
		if string(in) != string(out) {
			t.Errorf("%v: Encode(Decode(b)) != b", typ)
		}
	}
}

// TestScalePacking checks the 6-bit scale packings of Q3_K and Q4_K/Q5_K
// against their unpackers for all values.
func TestScalePacking(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 200; trial++ {
		var sc, m [8]uint8
		var packed [12]uint8
		for j := range sc {
			sc[j], m[j] = uint8(r.IntN(64)), uint8(r.IntN(64))
			setScaleMinK4(j, &packed, sc[j], m[j])
		}
		for j := range sc {
			gs, gm := scaleMinK4(j, &packed)
			if gs != sc[j] || gm != m[j] {
				t.Fatalf("K4 scales: sub-block %d: got (%d,%d), want (%d,%d)", j, gs, gm, sc[j], m[j])
			}
		}
		var s3 [16]int
		var p3 [12]uint8
		for j := range s3 {
			s3[j] = r.IntN(64) - 32
			setScaleQ3K(j, &p3, uint8(s3[j]+32))
		}
		for j := range s3 {
			if got := scaleQ3K(j, &p3); got != s3[j] {
				t.Fatalf("Q3_K scales: sub-block %d: got %d, want %d", j, got, s3[j])
			}
		}
	}
}

func TestSizeErrors(t *testing.T) {
	x := make([]float32, 256)
	for _, typ := range computeTypes {
		nb, _ := RowBytes(typ, len(x))
		if err := Quantize(typ, x, make([]byte, nb+1)); err == nil {
			t.Errorf("%v: Quantize accepted a too long dst", typ)
		}
		if err := Dequantize(typ, make([]byte, nb-1), x); err == nil {
			t.Errorf("%v: Dequantize accepted a too short src", typ)
		}
		if typ.BlockElems() > 1 {
			if err := Dequantize(typ, make([]byte, nb), make([]float32, len(x)+1)); err == nil {
				t.Errorf("%v: Dequantize accepted a partial block", typ)
			}
		}
		if _, err := VecDot(typ, len(x), make([]byte, nb), nil); err == nil {
			t.Errorf("%v: VecDot accepted empty activations", typ)
		}
	}
	for _, typ := range []Type{IQ2_XXS, I8, Type(1000)} {
		if err := Dequantize(typ, nil, nil); err == nil {
			t.Errorf("%v: Dequantize did not refuse an unsupported type", typ)
		}
		if err := Quantize(typ, nil, nil); err == nil {
			t.Errorf("%v: Quantize did not refuse an unsupported type", typ)
		}
		if _, err := VecDot(typ, 0, nil, nil); err == nil {
			t.Errorf("%v: VecDot did not refuse an unsupported type", typ)
		}
		if VecDotType(typ) != typ {
			t.Errorf("VecDotType(%v) = %v, want itself", typ, VecDotType(typ))
		}
	}
	err := Dequantize(IQ2_XXS, nil, nil)
	if !strings.Contains(err.Error(), "IQ2_XXS") {
		t.Errorf("error does not name the type: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	const n = 8192
	x := gaussian(r, n, 1)
	for _, typ := range computeTypes {
		y := dequantizeT(t, typ, quantizeT(t, typ, x), n)
		e := relRMS(x, y)
		t.Logf("%-5v relative RMS error %.5f (bound %.4f)", typ, e, roundTripBound[typ])
		if e > roundTripBound[typ] {
			t.Errorf("%v: relative RMS error %.5f exceeds %.4f", typ, e, roundTripBound[typ])
		}
	}
}

// TestRoundTripEdgeCases feeds blocks that stress the quantizers: all zeros,
// constants, one outlier, tiny and huge magnitudes, all-positive and
// all-negative data. Output must be finite and the error bounded.
func TestRoundTripEdgeCases(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	const n = 512
	gen := map[string]func() []float32{
		"zeros":    func() []float32 { return make([]float32, n) },
		"constant": func() []float32 { x := make([]float32, n); fill(x, 0.75); return x },
		"negconst": func() []float32 { x := make([]float32, n); fill(x, -3); return x },
		"outlier": func() []float32 {
			x := gaussian(r, n, 0.01)
			x[37] = 5
			x[300] = -7
			return x
		},
		"tiny":     func() []float32 { return gaussian(r, n, 1e-6) },
		"large":    func() []float32 { return gaussian(r, n, 1000) },
		"positive": func() []float32 { x := gaussian(r, n, 1); absAll(x); return x },
		"negative": func() []float32 { x := gaussian(r, n, 1); absAll(x); scaleAll(x, -1); return x },
		"sparse": func() []float32 {
			x := make([]float32, n)
			for i := 0; i < n; i += 19 {
				x[i] = float32(r.NormFloat64())
			}
			return x
		},
	}
	for name, g := range gen {
		x := g()
		for _, typ := range computeTypes {
			y := dequantizeT(t, typ, quantizeT(t, typ, x), n)
			for i, v := range y {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%s/%v: element %d dequantizes to %v", name, typ, i, v)
				}
			}
			e := relRMS(x, y)
			// Tiny data underflows the F16 block scales, so only finiteness
			// is required there (GGML's quantizers behave the same).
			bound := 2 * roundTripBound[typ]
			switch {
			case name == "tiny" && typ != F32 && typ != BF16 && typ != Q8_K:
				bound = math.Inf(1)
			case name == "outlier" || name == "sparse":
				bound = max(bound, 0.5)
			case typ == F32:
				bound = 0
			}
			if name == "zeros" {
				for i, v := range y {
					if v != 0 {
						t.Fatalf("zeros/%v: element %d = %v", typ, i, v)
					}
				}
				continue
			}
			if e > bound {
				t.Errorf("%s/%v: relative RMS error %.4f exceeds %.4f", name, typ, e, bound)
			}
		}
	}
}

func fill(x []float32, v float32) {
	for i := range x {
		x[i] = v
	}
}

func absAll(x []float32) {
	for i := range x {
		x[i] = abs32(x[i])
	}
}

func scaleAll(x []float32, s float32) {
	for i := range x {
		x[i] *= s
	}
}

// TestQuantizeKnownBlocks checks a few hand-computed blocks.
func TestQuantizeKnownBlocks(t *testing.T) {
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(i - 16) // -16..15: the largest magnitude is -16
	}
	var q8 BlockQ8_0
	q8.Decode(quantizeT(t, Q8_0, x))
	if got, want := F16ToF32(q8.D), float32(16.0/127); got != F16ToF32(F32ToF16(want)) {
		t.Errorf("Q8_0 scale = %v, want %v", got, want)
	}
	if q8.Qs[0] != -127 || q8.Qs[16] != 0 || q8.Qs[31] != 119 {
		t.Errorf("Q8_0 quants: %v", q8.Qs)
	}

	var q4 BlockQ4_0
	q4.Decode(quantizeT(t, Q4_0, x))
	if got := F16ToF32(q4.D); got != 2 { // -16 / -8
		t.Errorf("Q4_0 scale = %v, want 2", got)
	}
	q := q4.quants()
	for i, v := range q {
		want := int8(math.Floor(float64(x[i])/2 + 0.5)) // 8.5-offset truncation rounds half up
		if want > 7 {
			want = 7
		}
		if v != want {
			t.Errorf("Q4_0 element %d: quant %d, want %d", i, v, want)
		}
	}

	var q81 BlockQ8_1
	q81.Decode(quantizeT(t, Q8_1, x))
	sum := 0
	for _, v := range q81.Qs {
		sum += int(v)
	}
	if got, want := F16ToF32(q81.S), F16ToF32(F32ToF16(float32(sum)*F16ToF32(q81.D))); got != want {
		t.Errorf("Q8_1 s = %v, want %v", got, want)
	}
}

// TestVecDot checks every dot product against the float64 dot product of
// the dequantized operands.
func TestVecDot(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	const n = 4096
	for _, typ := range computeTypes {
		at := VecDotType(typ)
		for trial := 0; trial < 4; trial++ {
			w := gaussian(r, n, 0.05)
			x := gaussian(r, n, 2)
			if trial == 3 { // offset data exercises the min terms
				for i := range w {
					w[i] += 0.03
				}
			}
			wq := quantizeT(t, typ, w)
			xq := quantizeT(t, at, x)
			wd := dequantizeT(t, typ, wq, n)
			xd := dequantizeT(t, at, xq, n)
			var want, mag float64
			for i := range wd {
				p := float64(wd[i]) * float64(xd[i])
				want += p
				mag += math.Abs(p)
			}
			tol := 2e-6*mag + 1e-30
			// Q8_1's s is d*sum(q) rounded to F16, so the min term of the
			// offset formats carries up to half an F16 ulp of |m*s| per block.
			if at == Q8_1 && typ != Q8_1 {
				tol += offsetTermSlack(typ, wq, xq)
			}
			got, err := VecDot(typ, n, wq, xq)
			if err != nil {
				t.Fatal(err)
			}
			if d := math.Abs(float64(got) - want); d > tol {
				t.Errorf("%v·%v trial %d: VecDot = %v, dequantized dot = %v (diff %.3g > tol %.3g)", typ, at, trial, got, want, d, tol)
			} else if trial == 0 {
				t.Logf("%-5v·%-5v diff %.3g (tol %.3g, sum|wx| %.4g)", typ, at, d, tol, mag)
			}
		}
	}
}

func offsetTermSlack(typ Type, wq, xq []byte) float64 {
	var slack float64
	for i := 0; i < len(xq)/36; i++ {
		var y BlockQ8_1
		y.Decode(xq[36*i:])
		var m uint16
		if typ == Q4_1 {
			var b BlockQ4_1
			b.Decode(wq[20*i:])
			m = b.M
		} else {
			var b BlockQ5_1
			b.Decode(wq[24*i:])
			m = b.M
		}
		slack += math.Abs(float64(F16ToF32(m))*float64(F16ToF32(y.S))) * 0x1p-11
	}
	return slack
}

// TestQuantizeDeterministic checks that a tensor quantized whole and row by
// row gives the same bytes (blocks are independent).
func TestQuantizeDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := gaussian(r, 4*512, 1)
	for _, typ := range computeTypes {
		whole := quantizeT(t, typ, x)
		rb, _ := RowBytes(typ, 512)
		for row := 0; row < 4; row++ {
			part := quantizeT(t, typ, x[512*row:512*(row+1)])
			if string(part) != string(whole[rb*row:rb*(row+1)]) {
				t.Errorf("%v: row %d differs when quantized alone", typ, row)
			}
		}
	}
}

func BenchmarkDequantize(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(13, 14))
	x := gaussian(r, n, 1)
	y := make([]float32, n)
	for _, typ := range computeTypes {
		q := quantizeT(b, typ, x)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(q)))
			for b.Loop() {
				if err := Dequantize(typ, q, y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkQuantize(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(15, 16))
	x := gaussian(r, n, 1)
	for _, typ := range computeTypes {
		q := quantizeT(b, typ, x)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				if err := Quantize(typ, x, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVecDot(b *testing.B) {
	const n = 4096
	r := rand.New(rand.NewPCG(17, 18))
	w := gaussian(r, n, 1)
	x := gaussian(r, n, 1)
	for _, typ := range computeTypes {
		wq := quantizeT(b, typ, w)
		xq := quantizeT(b, VecDotType(typ), x)
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(len(wq)))
			for b.Loop() {
				if _, err := VecDot(typ, n, wq, xq); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestArbitraryInput checks that no input makes the reference routines
// panic: random bytes (as from a corrupt file) for Dequantize and VecDot,
// and NaN, infinities and extreme values for Quantize.
func TestArbitraryInput(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	const n = 512
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, typ := range computeTypes {
		for trial := 0; trial < 20; trial++ {
			nb, _ := RowBytes(typ, n)
			w := make([]byte, nb)
			for i := range w {
				w[i] = byte(r.Uint32())
			}
			if err := Dequantize(typ, w, make([]float32, n)); err != nil {
				t.Fatal(err)
			}
			xb, _ := RowBytes(VecDotType(typ), n)
			x := make([]byte, xb)
			for i := range x {
				x[i] = byte(r.Uint32())
			}
			if _, err := VecDot(typ, n, w, x); err != nil {
				t.Fatal(err)
			}
		}
		for _, special := range []float32{nan, inf, -inf, math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32} {
			x := gaussian(r, n, 1)
			x[3], x[260] = special, special
			quantizeT(t, typ, x)
			fill(x, special)
			quantizeT(t, typ, x)
		}
	}
}
