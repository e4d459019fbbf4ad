package quant

import (
	"fmt"
	"math"
)

// Dot products: the contract every CPU and GPU matmul kernel implements.
//
// llama.cpp never multiplies a quantized weight row by float activations
// directly. It first quantizes the activation row to a companion type, the
// weight type's "vec dot type", and then forms the dot product block by
// block: an exact integer sum of quant products per (sub-)block, multiplied
// by the blocks' float scales. VecDot is the scalar reference of that
// computation, following llama.cpp's generic (non-SIMD) vec_dot functions.
//
// The pairing, from GGML's CPU type traits:
//
//	weight            activations (VecDotType)
//	F32               F32
//	F16               F16
//	BF16              BF16
//	Q4_0, Q5_0, Q8_0  Q8_0
//	Q4_1, Q5_1        Q8_1 (its s = d*sum(q) term carries the weights' min)
//	Q2_K .. Q6_K      Q8_K (its bsums carry the K-quants' mins)
//	Q8_1              Q8_1 (extension: no weight is stored as Q8_1)
//	Q8_K              Q8_K (extension: no weight is stored as Q8_K)
//
// For the quantized pairs the integer part is exact, so a kernel that sums
// the same products may differ from VecDot only by float rounding in how it
// applies and accumulates the scales. Kernels are expected to match VecDot
// to within float rounding: |kernel - VecDot| <= 1e-5 * sum_i |w_i*x_i|
// (with w and x the dequantized operands) is the suggested test tolerance;
// this package's own tests hold VecDot to 2e-6 of that sum against a float64
// dot product of the dequantized operands (plus, for Q4_1 and Q5_1, half an
// F16 ulp of each block's m*s, since s is stored rounded). The float pairs
// (F32, F16, BF16) round each product to float32 and accumulate in float64,
// as GGML's do.
//
// A kernel that deliberately uses another activation format (llama.cpp's
// CUDA backend quantizes activations to Q8_1 for every weight type) is not
// bound by this contract; compare it with the float dot product of the
// dequantized operands instead.

// VecDotType returns the type the activations must be quantized to before a
// dot product with weights of type t (see the table above). For a type that
// has no dot product it returns t itself, and VecDot reports an error.
func VecDotType(t Type) Type {
	if f, ok := formats[t]; ok && f.dot != nil {
		return f.vecDot
	}
	return t
}

// VecDot returns the dot product of n weights w of type t with n activations
// x already quantized to VecDotType(t). n must be a whole number of blocks of
// both types and the byte lengths must match exactly.
func VecDot(t Type, n int, w []byte, x []byte) (float32, error) {
	f := formats[t]
	if f.dot == nil {
		return 0, fmt.Errorf("quant: no dot product for type %v", t)
	}
	if err := checkSizes(t, n, len(w)); err != nil {
		return 0, fmt.Errorf("weights: %w", err)
	}
	if err := checkSizes(f.vecDot, n, len(x)); err != nil {
		return 0, fmt.Errorf("activations: %w", err)
	}
	return f.dot(n, w, x), nil
}

// dotI8 is the exact integer dot product of two int8 slices of equal length.
func dotI8(a, b []int8) int32 {
	var s int32
	for i := range a {
		s += int32(a[i]) * int32(b[i])
	}
	return s
}

func dotF32(n int, w, x []byte) float32 {
	var sum float64
	for i := 0; i < n; i++ {
		a := math.Float32frombits(le.Uint32(w[4*i:]))
		b := math.Float32frombits(le.Uint32(x[4*i:]))
		sum += float64(mul(a, b))
	}
	return float32(sum)
}

func dotF16(n int, w, x []byte) float32 {
	var sum float64
	for i := 0; i < n; i++ {
		sum += float64(mul(F16ToF32(le.Uint16(w[2*i:])), F16ToF32(le.Uint16(x[2*i:]))))
	}
	return float32(sum)
}

func dotBF16(n int, w, x []byte) float32 {
	var sum float64
	for i := 0; i < n; i++ {
		sum += float64(mul(BF16ToF32(le.Uint16(w[2*i:])), BF16ToF32(le.Uint16(x[2*i:]))))
	}
	return float32(sum)
}

// sumi*dw*dy per block, for the symmetric 32-element formats with Q8_0.
func dotQ4_0(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ4_0
		y   BlockQ8_0
	)
	for i := 0; i < n/32; i++ {
		a.Decode(w[18*i:])
		y.Decode(x[34*i:])
		q := a.quants()
		sumi := dotI8(q[:], y.Qs[:])
		sum += mul(float32(sumi)*F16ToF32(a.D), F16ToF32(y.D))
	}
	return sum
}

func dotQ5_0(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ5_0
		y   BlockQ8_0
	)
	for i := 0; i < n/32; i++ {
		a.Decode(w[22*i:])
		y.Decode(x[34*i:])
		q := a.quants()
		sumi := dotI8(q[:], y.Qs[:])
		sum += mul(float32(sumi)*F16ToF32(a.D), F16ToF32(y.D))
	}
	return sum
}

func dotQ8_0(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ8_0
		y   BlockQ8_0
	)
	for i := 0; i < n/32; i++ {
		a.Decode(w[34*i:])
		y.Decode(x[34*i:])
		sumi := dotI8(a.Qs[:], y.Qs[:])
		sum += mul(float32(sumi), F16ToF32(a.D)*F16ToF32(y.D))
	}
	return sum
}

// For the offset formats value = d*q + m, so
// sum (d*q_i + m) * dy*y_i = d*dy*sum(q_i*y_i) + m*(dy*sum(y_i)) and the
// last factor is the activation block's s.
func dotQ4_1(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ4_1
		y   BlockQ8_1
	)
	for i := 0; i < n/32; i++ {
		a.Decode(w[20*i:])
		y.Decode(x[36*i:])
		q := a.quants()
		sumi := dotI8(q[:], y.Qs[:])
		sum += mul(F16ToF32(a.D)*F16ToF32(y.D), float32(sumi)) + mul(F16ToF32(a.M), F16ToF32(y.S))
	}
	return sum
}

func dotQ5_1(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ5_1
		y   BlockQ8_1
	)
	for i := 0; i < n/32; i++ {
		a.Decode(w[24*i:])
		y.Decode(x[36*i:])
		q := a.quants()
		sumi := dotI8(q[:], y.Qs[:])
		sum += mul(F16ToF32(a.D)*F16ToF32(y.D), float32(sumi)) + mul(F16ToF32(a.M), F16ToF32(y.S))
	}
	return sum
}

func dotQ8_1(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ8_1
		y   BlockQ8_1
	)
	for i := 0; i < n/32; i++ {
		a.Decode(w[36*i:])
		y.Decode(x[36*i:])
		sumi := dotI8(a.Qs[:], y.Qs[:])
		sum += mul(float32(sumi), F16ToF32(a.D)*F16ToF32(y.D))
	}
	return sum
}

// The K-quant dots work per 256-element super-block. With sub-block scale s_j
// and min m_j, value = d*s_j*q - dmin*m_j, so against Q8_K activations
// (value dy*y):
//
//	sum = d*dy * sum_j s_j*sum(q*y over j) - dmin*dy * sum_j m_j*sum(y over j)
//
// and sum(y over j) comes from the activations' bsums (groups of 16).

func dotQ2_K(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ2_K
		y   BlockQ8_K
	)
	for i := 0; i < n/QK_K; i++ {
		a.Decode(w[84*i:])
		y.Decode(x[292*i:])
		q, scales, mins := a.unpack()
		var isum, summs int32
		for j := 0; j < QK_K/16; j++ {
			isum += int32(scales[j]) * dotI8(q[16*j:16*j+16], y.Qs[16*j:16*j+16])
			summs += int32(mins[j]) * int32(y.Bsums[j])
		}
		dall := y.D * F16ToF32(a.D)
		dmin := y.D * F16ToF32(a.Dmin)
		sum += mul(dall, float32(isum)) - mul(dmin, float32(summs))
	}
	return sum
}

func dotQ3_K(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ3_K
		y   BlockQ8_K
	)
	for i := 0; i < n/QK_K; i++ {
		a.Decode(w[110*i:])
		y.Decode(x[292*i:])
		q, scales := a.unpack()
		var isum int32
		for j := 0; j < QK_K/16; j++ {
			isum += int32(scales[j]) * dotI8(q[16*j:16*j+16], y.Qs[16*j:16*j+16])
		}
		sum += mul(F16ToF32(a.D)*y.D, float32(isum))
	}
	return sum
}

// dotK4Style is the body of the Q4_K and Q5_K dots, given the unpacked
// super-block.
func dotK4Style(q *[QK_K]int8, scales, mins *[QK_K / 32]uint8, d, dmin float32, y *BlockQ8_K) float32 {
	var isum, summs int32
	for j := 0; j < QK_K/32; j++ {
		isum += int32(scales[j]) * dotI8(q[32*j:32*j+32], y.Qs[32*j:32*j+32])
		summs += int32(mins[j]) * (int32(y.Bsums[2*j]) + int32(y.Bsums[2*j+1]))
	}
	return mul(d*y.D, float32(isum)) - mul(dmin*y.D, float32(summs))
}

func dotQ4_K(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ4_K
		y   BlockQ8_K
	)
	for i := 0; i < n/QK_K; i++ {
		a.Decode(w[144*i:])
		y.Decode(x[292*i:])
		q, scales, mins := a.unpack()
		sum += dotK4Style(&q, &scales, &mins, F16ToF32(a.D), F16ToF32(a.Dmin), &y)
	}
	return sum
}

func dotQ5_K(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ5_K
		y   BlockQ8_K
	)
	for i := 0; i < n/QK_K; i++ {
		a.Decode(w[176*i:])
		y.Decode(x[292*i:])
		q, scales, mins := a.unpack()
		sum += dotK4Style(&q, &scales, &mins, F16ToF32(a.D), F16ToF32(a.Dmin), &y)
	}
	return sum
}

func dotQ6_K(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ6_K
		y   BlockQ8_K
	)
	for i := 0; i < n/QK_K; i++ {
		a.Decode(w[210*i:])
		y.Decode(x[292*i:])
		q := a.unpack()
		var isum int32
		for j := 0; j < QK_K/16; j++ {
			isum += int32(a.Scales[j]) * dotI8(q[16*j:16*j+16], y.Qs[16*j:16*j+16])
		}
		sum += mul(F16ToF32(a.D)*y.D, float32(isum))
	}
	return sum
}

func dotQ8_K(n int, w, x []byte) float32 {
	var (
		sum float32
		a   BlockQ8_K
		y   BlockQ8_K
	)
	for i := 0; i < n/QK_K; i++ {
		a.Decode(w[292*i:])
		y.Decode(x[292*i:])
		sum += mul(a.D*y.D, float32(dotI8(a.Qs[:], y.Qs[:])))
	}
	return sum
}
