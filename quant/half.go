package quant

import "math"

// This file holds the scalar conversions between float32 and the 16- and
// 8-bit float formats: IEEE binary16 (F16), bfloat16 (BF16) and FP8 E4M3.
// They work on raw bit patterns so that they are exact and portable; the
// rounding rules are the ones GGML uses, so quantizers built on them produce
// the same bytes as llama.cpp.

// F16ToF32 converts an IEEE 754 binary16 value to float32. The conversion is
// exact: every half value, subnormals included, is a float32. Infinities keep
// their sign and NaNs keep their payload.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0 && mant == 0: // signed zero
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: shift the mantissa up until it has a leading 1
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// F32ToF16 converts a float32 to IEEE 754 binary16, rounding to nearest with
// ties to even, as the F16C instruction and GGML's portable fallback do.
// Values too large for a half become infinity, values too small become a
// signed zero, and every NaN becomes the quiet NaN 0x7e00 with its sign.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff

	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}

	// e is the biased binary16 exponent the value would have if normal.
	e := exp - 127 + 15
	switch {
	case e >= 0x1f:
		return sign | 0x7c00
	case e <= 0:
		// The result is a half subnormal (or zero): its unit is 2^-24, and
		// the 24-bit significand m (with its leading 1) must lose 14-e bits.
		if e < -10 {
			return sign // below half of the smallest subnormal
		}
		m := mant | 0x800000
		drop := uint(14 - e)
		return sign | uint16(roundShift(m, drop))
	}
	// Normal: keep 10 of the 23 mantissa bits. A carry out of the mantissa
	// correctly bumps the exponent (and turns 65520 and above into infinity).
	return sign | uint16(roundShift(uint32(e)<<23|mant, 13))
}

// roundShift returns v >> n rounded to nearest, ties to even (0 < n < 32).
func roundShift(v uint32, n uint) uint32 {
	q := v >> n
	rem := v & (1<<n - 1)
	half := uint32(1) << (n - 1)
	if rem > half || (rem == half && q&1 == 1) {
		q++
	}
	return q
}

// BF16ToF32 converts a bfloat16 value (the top half of a float32) to float32.
// The conversion is exact.
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// F32ToBF16 converts a float32 to bfloat16 the way GGML does: round to
// nearest with ties to even, subnormals kept (not flushed), overflow to
// infinity by rounding, and NaNs made quiet by setting the top mantissa bit
// while keeping sign and the upper payload bits.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// FP8 E4M3 ("E4M3FN" in the OCP 8-bit float spec, as used by NVIDIA's
// __nv_fp8_e4m3): 1 sign bit, 4 exponent bits with bias 7, 3 mantissa bits.
// There are no infinities; S.1111.111 is NaN, so the largest finite value is
// 448. Subnormals have unit 2^-9.

// F8E4M3ToF32 converts an FP8 E4M3 value to float32. The conversion is exact.
func F8E4M3ToF32(v uint8) float32 {
	sign := uint32(v&0x80) << 24
	exp := uint32(v>>3) & 0xf
	mant := uint32(v & 7)
	switch {
	case exp == 0xf && mant == 7:
		return math.Float32frombits(sign | 0x7fc00000)
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: mant * 2^-9
		e := uint32(127 - 7 + 1)
		for mant&8 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&7)<<20)
	}
	return math.Float32frombits(sign | (exp+127-7)<<23 | mant<<20)
}

// F32ToF8E4M3 converts a float32 to FP8 E4M3, rounding to nearest with ties
// to even. Finite values beyond the largest finite E4M3 (448), and
// infinities, saturate to ±448 (the "satfinite" behaviour of CUDA's
// conversions, which is what weight and KV-cache quantization want). NaN
// becomes the E4M3 NaN with the input's sign.
func F32ToF8E4M3(f float32) uint8 {
	b := math.Float32bits(f)
	sign := uint8(b>>24) & 0x80
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	const maxFinite = 0x7e // 0.1111.110 = 448

	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7f
		}
		return sign | maxFinite
	}
	e := exp - 127 + 7
	var r uint32
	switch {
	case e > 0xf:
		return sign | maxFinite
	case e <= 0:
		// Subnormal result, unit 2^-9: the 24-bit significand loses 21-e bits.
		if e < -3 {
			return sign
		}
		r = roundShift(mant|0x800000, uint(21-e))
	default:
		r = roundShift(uint32(e)<<23|mant, 20)
	}
	if r > maxFinite {
		r = maxFinite
	}
	return sign | uint8(r)
}
