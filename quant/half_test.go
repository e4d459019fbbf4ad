package quant

import (
	"math"
	"testing"
)

// f16Value computes the value of a finite half from its fields, independently
// of F16ToF32's bit manipulation.
func f16Value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	if exp == 0 {
		return sign * math.Ldexp(mant, -24)
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

func TestF16ToF32AllValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32(h)
		exp := (h >> 10) & 0x1f
		switch {
		case exp == 0x1f && h&0x3ff == 0:
			if !math.IsInf(float64(got), 0) || math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("F16ToF32(%#04x) = %v, want signed infinity", h, got)
			}
		case exp == 0x1f:
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, got)
			}
		default:
			want := f16Value(h)
			if float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
			}
			if back := F32ToF16(got); back != h {
				t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
			}
		}
	}
}

func TestF32ToF16Rounding(t *testing.T) {
	// Between every pair of adjacent positive finite halves: the midpoint
	// (exact in float32) rounds to the even one, and the float32 values just
	// beside it round to the nearer one.
	for h := uint16(0); h < 0x7bff; h++ {
		lo, hi := F16ToF32(h), F16ToF32(h+1)
		mid := float32((float64(lo) + float64(hi)) / 2)
		even := h
		if h&1 == 1 {
			even = h + 1
		}
		for _, sign := range []float32{1, -1} {
			s := uint16(0)
			if sign < 0 {
				s = 0x8000
			}
			if got := F32ToF16(sign * mid); got != even|s {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x (tie to even)", sign*mid, got, even|s)
			}
			below := math.Nextafter32(mid, 0)
			if got := F32ToF16(sign * below); got != h|s {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", sign*below, got, h|s)
			}
			above := math.Nextafter32(mid, 1e9)
			if got := F32ToF16(sign * above); got != (h+1)|s {
				t.Fatalf("F32ToF16(%v) = %#04x, want %#04x", sign*above, got, (h+1)|s)
			}
		}
	}
}

func TestF32ToF16Special(t *testing.T) {
	inf := float32(math.Inf(1))
	cases := []struct {
		in   float32
		want uint16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},                         // largest finite
		{65519.996, 0x7bff},                     // just below the rounding boundary
		{65520, 0x7c00},                         // ties to even: overflows to inf
		{1e10, 0x7c00},                          // overflow
		{-1e10, 0xfc00},                         // negative overflow
		{inf, 0x7c00},                           // inf
		{-inf, 0xfc00},                          // -inf
		{float32(math.Ldexp(1, -14)), 0x0400},   // smallest normal
		{float32(math.Ldexp(1, -24)), 0x0001},   // smallest subnormal
		{float32(math.Ldexp(1, -25)), 0x0000},   // half of it: tie to even (0)
		{float32(math.Ldexp(1.5, -24)), 0x0002}, // 1.5 units: tie to even (2)
		{float32(math.Ldexp(2.5, -24)), 0x0002}, // 2.5 units: tie to even (2)
		{math.Nextafter32(float32(math.Ldexp(1, -25)), 1), 0x0001},
		{float32(math.Ldexp(1, -30)), 0x0000},      // underflow
		{-float32(math.Ldexp(1, -30)), 0x8000},     // underflow keeps sign
		{math.Float32frombits(1), 0x0000},          // float32 subnormal
		{float32(math.Ldexp(1023, -24)), 0x03ff},   // largest subnormal
		{float32(math.Ldexp(1023.5, -24)), 0x0400}, // rounds up into the normals
		{math.Float32frombits(0x7fc00000), 0x7e00}, // quiet NaN
		{math.Float32frombits(0x7f800001), 0x7e00}, // signalling NaN
		{math.Float32frombits(0xffc00123), 0xfe00}, // negative NaN
	}
	for _, c := range cases {
		if got := F32ToF16(c.in); got != c.want {
			t.Errorf("F32ToF16(%v [%#08x]) = %#04x, want %#04x", c.in, math.Float32bits(c.in), got, c.want)
		}
	}
}

func TestBF16(t *testing.T) {
	cases := []struct {
		in   uint32 // float32 bits
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // 1 + 2^-8: tie, to even (down)
		{0x3f818000, 0x3f82}, // tie, to even (up)
		{0x3f808001, 0x3f81}, // just above the tie
		{0x3f807fff, 0x3f80}, // just below the tie
		{0xbf80c000, 0xbf81}, // negative, rounds away
		{0x80000000, 0x8000}, // -0
		{0x00000001, 0x0000}, // float32 subnormals are kept, here rounding to 0
		{0x00018000, 0x0002}, // subnormal tie to even
		{0x00010001, 0x0001}, // subnormal
		{0x7f7fffff, 0x7f80}, // max float32 rounds to inf
		{0x7f800000, 0x7f80}, // inf
		{0xff800000, 0xff80}, // -inf
		{0x7fc00000, 0x7fc0}, // quiet NaN
		{0x7f800001, 0x7fc0}, // signalling NaN with low payload: made quiet
		{0x7fa10000, 0x7fe1}, // payload kept, quiet bit set
		{0xff800001, 0xffc0}, // negative NaN keeps its sign
		{0x7fffffff, 0x7fff}, // NaN does not round into the sign bit
	}
	for _, c := range cases {
		if got := F32ToBF16(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := BF16ToF32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) bits = %#08x", h, math.Float32bits(f))
		}
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := F32ToBF16(f); back != h {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

func TestF8E4M3(t *testing.T) {
	known := map[uint8]float32{
		0x00: 0, 0x38: 1, 0xb8: -1, 0x40: 2, 0x7e: 448, 0xfe: -448,
		0x08: 1.0 / 64, 0x01: 1.0 / 512, 0x07: 7.0 / 512, 0x3c: 1.5,
	}
	for v, want := range known {
		if got := F8E4M3ToF32(v); got != want {
			t.Errorf("F8E4M3ToF32(%#02x) = %v, want %v", v, got, want)
		}
	}
	for i := 0; i < 256; i++ {
		v := uint8(i)
		f := F8E4M3ToF32(v)
		if v&0x7f == 0x7f {
			if !math.IsNaN(float64(f)) {
				t.Errorf("F8E4M3ToF32(%#02x) = %v, want NaN", v, f)
			}
			if got := F32ToF8E4M3(f); got != v {
				t.Errorf("F32ToF8E4M3(NaN from %#02x) = %#02x", v, got)
			}
			continue
		}
		if got := F32ToF8E4M3(f); got != v {
			t.Errorf("F32ToF8E4M3(F8E4M3ToF32(%#02x) = %v) = %#02x", v, f, got)
		}
		// The midpoint to the next larger magnitude rounds to the even code.
		if v&0x7f < 0x7e {
			next := F8E4M3ToF32(v + 1)
			mid := (f + next) / 2
			even := v
			if v&1 == 1 {
				even = v + 1
			}
			if got := F32ToF8E4M3(mid); got != even {
				t.Errorf("F32ToF8E4M3(%v) = %#02x, want %#02x (tie to even)", mid, got, even)
			}
		}
	}
	sat := []struct {
		in   float32
		want uint8
	}{
		{449, 0x7e}, {464, 0x7e}, {1e6, 0x7e}, {-1e6, 0xfe},
		{float32(math.Inf(1)), 0x7e}, {float32(math.Inf(-1)), 0xfe},
		{1.0 / 1024, 0x00}, // half the smallest subnormal: tie to even (0)
		{1.0 / 1000, 0x01}, // just above it
	}
	for _, c := range sat {
		if got := F32ToF8E4M3(c.in); got != c.want {
			t.Errorf("F32ToF8E4M3(%v) = %#02x, want %#02x", c.in, got, c.want)
		}
	}
}
