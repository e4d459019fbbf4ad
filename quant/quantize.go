package quant

import (
	"fmt"
	"math"
)

// Quantize encodes src as type t into dst. len(src) must be a whole number of
// blocks and len(dst) must be exactly RowBytes(t, len(src)).
//
// These are GGML's reference quantizers (quantize_row_*_ref: no importance
// matrix), reproduced operation for operation in float32, so for finite
// input they write the same bytes as llama.cpp's llama-quantize does when it
// is run without an imatrix. Blocks are independent, so a tensor can be
// quantized whole or row by row with the same result.
func Quantize(t Type, src []float32, dst []byte) error {
	f := formats[t]
	if f.quant == nil {
		return fmt.Errorf("quant: no quantizer for type %v", t)
	}
	if err := checkSizes(t, len(src), len(dst)); err != nil {
		return err
	}
	f.quant(src, dst)
	return nil
}

// nearestInt rounds to the nearest integer, ties to even: what GGML's
// nearest_int computes (with its add-1.5*2^23 trick) for |f| < 2^22.
func nearestInt(f float32) int { return int(math.RoundToEven(float64(f))) }

// roundAway rounds half away from zero, like C's roundf.
func roundAway(f float32) int { return int(math.Round(float64(f))) }

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ (1 << 31)) }

func sqrt32(f float32) float32 { return float32(math.Sqrt(float64(f))) }

// absMax returns the element of x with the largest magnitude (the first one
// on ties) and that magnitude.
func absMax(x []float32) (maxv, amax float32) {
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, maxv = a, v
		}
	}
	return maxv, amax
}

// minMax returns the smallest and largest element of x.
func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		// Plain comparisons, not the min/max builtins, so that the first of
		// -0 and +0 wins as in GGML.
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// inverse returns 1/d, or 0 when d is 0.
func inverse(d float32) float32 {
	if d == 0 {
		return 0
	}
	return 1 / d
}

func quantF32(src []float32, dst []byte) {
	for i, v := range src {
		le.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

func quantF16(src []float32, dst []byte) {
	for i, v := range src {
		le.PutUint16(dst[2*i:], F32ToF16(v))
	}
}

func quantBF16(src []float32, dst []byte) {
	for i, v := range src {
		le.PutUint16(dst[2*i:], F32ToBF16(v))
	}
}

// Q4_0: the element of largest magnitude maps to -8 exactly, so the scale
// carries its sign; the others round to nearest (by adding 8.5 and
// truncating) and clamp to 15.
func quantQ4_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK4_0; i++ {
		x := src[QK4_0*i : QK4_0*(i+1)]
		maxv, _ := absMax(x)
		d := maxv / -8
		id := inverse(d)
		var q [QK4_0]uint8
		for j, v := range x {
			q[j] = uint8(min(15, int(mul(v, id)+8.5)))
		}
		b := BlockQ4_0{D: F32ToF16(d)}
		for j := range b.Qs {
			b.Qs[j] = q[j] | q[j+16]<<4
		}
		b.Encode(dst[18*i:])
	}
}

// Q4_1: 16 levels spread evenly from the block's minimum to its maximum.
func quantQ4_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK4_1; i++ {
		x := src[QK4_1*i : QK4_1*(i+1)]
		lo, hi := minMax(x)
		d := (hi - lo) / 15
		id := inverse(d)
		var q [QK4_1]uint8
		for j, v := range x {
			q[j] = uint8(min(15, int(mul(v-lo, id)+0.5)))
		}
		b := BlockQ4_1{D: F32ToF16(d), M: F32ToF16(lo)}
		for j := range b.Qs {
			b.Qs[j] = q[j] | q[j+16]<<4
		}
		b.Encode(dst[20*i:])
	}
}

// packFiveBit stores 32 five-bit quants in the Q5_0/Q5_1 layout.
func packFiveBit(q *[32]uint8, qh *[4]uint8, qs *[16]uint8) {
	var h uint32
	for j := range qs {
		qs[j] = q[j]&0xf | (q[j+16]&0xf)<<4
		h |= uint32(q[j]>>4) << j
		h |= uint32(q[j+16]>>4) << (j + 16)
	}
	le.PutUint32(qh[:], h)
}

// Q5_0: as Q4_0 with 32 levels, the largest magnitude mapping to -16.
func quantQ5_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK5_0; i++ {
		x := src[QK5_0*i : QK5_0*(i+1)]
		maxv, _ := absMax(x)
		d := maxv / -16
		id := inverse(d)
		var q [QK5_0]uint8
		for j, v := range x {
			q[j] = uint8(min(31, int(mul(v, id)+16.5)))
		}
		b := BlockQ5_0{D: F32ToF16(d)}
		packFiveBit(&q, &b.Qh, &b.Qs)
		b.Encode(dst[22*i:])
	}
}

// Q5_1: as Q4_1 with 32 levels.
func quantQ5_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK5_1; i++ {
		x := src[QK5_1*i : QK5_1*(i+1)]
		lo, hi := minMax(x)
		d := (hi - lo) / 31
		id := inverse(d)
		var q [QK5_1]uint8
		for j, v := range x {
			// GGML does not clamp here; (v-lo)*id+0.5 is below 32 for
			// finite input, and the mask keeps the bytes in range anyway.
			q[j] = uint8(int(mul(v-lo, id)+0.5)) & 31
		}
		b := BlockQ5_1{D: F32ToF16(d), M: F32ToF16(lo)}
		packFiveBit(&q, &b.Qh, &b.Qs)
		b.Encode(dst[24*i:])
	}
}

// Q8_0: symmetric, the largest magnitude maps to ±127, rounding half away
// from zero.
func quantQ8_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK8_0; i++ {
		x := src[QK8_0*i : QK8_0*(i+1)]
		_, amax := absMax(x)
		d := amax / 127
		id := inverse(d)
		b := BlockQ8_0{D: F32ToF16(d)}
		for j, v := range x {
			b.Qs[j] = int8(roundAway(v * id))
		}
		b.Encode(dst[34*i:])
	}
}

// Q8_1: Q8_0 plus s = d * sum(q), stored as F16.
func quantQ8_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK8_1; i++ {
		x := src[QK8_1*i : QK8_1*(i+1)]
		_, amax := absMax(x)
		d := amax / 127
		id := inverse(d)
		b := BlockQ8_1{D: F32ToF16(d)}
		sum := 0
		for j, v := range x {
			b.Qs[j] = int8(roundAway(v * id))
			sum += int(b.Qs[j])
		}
		b.S = F32ToF16(float32(sum) * d)
		b.Encode(dst[36*i:])
	}
}
