package quant

// Unpacking: each block type's integer quants as plain arrays, one entry per
// element in element order, plus the per-sub-block integer scales. Both the
// dequantizers and the dot products are written on top of these, so the bit
// layout of every format is decoded in exactly one place.

// quants returns the 32 signed quants q-8 (-8..7).
func (b *BlockQ4_0) quants() (q [QK4_0]int8) {
	for j, v := range b.Qs {
		q[j] = int8(v&0xf) - 8
		q[j+QK4_0/2] = int8(v>>4) - 8
	}
	return q
}

// quants returns the 32 unsigned quants (0..15).
func (b *BlockQ4_1) quants() (q [QK4_1]int8) {
	for j, v := range b.Qs {
		q[j] = int8(v & 0xf)
		q[j+QK4_1/2] = int8(v >> 4)
	}
	return q
}

// fiveBit returns the 32 unsigned 5-bit quants of a Q5_0 or Q5_1 block.
func fiveBit(qh *[4]uint8, qs *[16]uint8) (q [32]int8) {
	h := le.Uint32(qh[:])
	for j, v := range qs {
		hi0 := uint8(h>>j) & 1
		hi1 := uint8(h>>(j+16)) & 1
		q[j] = int8(v&0xf | hi0<<4)
		q[j+16] = int8(v>>4 | hi1<<4)
	}
	return q
}

// quants returns the 32 signed quants q-16 (-16..15).
func (b *BlockQ5_0) quants() (q [QK5_0]int8) {
	q = fiveBit(&b.Qh, &b.Qs)
	for j := range q {
		q[j] -= 16
	}
	return q
}

// quants returns the 32 unsigned quants (0..31).
func (b *BlockQ5_1) quants() [QK5_1]int8 { return fiveBit(&b.Qh, &b.Qs) }

// twoBit returns the 256 two-bit fields of a Q2_K or Q3_K qs array: within
// each 128-element half, byte l holds elements l, l+32, l+64, l+96.
func twoBit(qs *[QK_K / 4]uint8) (q [QK_K]int8) {
	for half := 0; half < 2; half++ {
		for l := 0; l < 32; l++ {
			v := qs[32*half+l]
			for k := 0; k < 4; k++ {
				q[128*half+32*k+l] = int8((v >> (2 * k)) & 3)
			}
		}
	}
	return q
}

// unpack returns the 256 quants (0..3) and the 4-bit scale and min of each
// of the 16 sub-blocks.
func (b *BlockQ2_K) unpack() (q [QK_K]int8, scales, mins [QK_K / 16]uint8) {
	for j, s := range b.Scales {
		scales[j] = s & 0xf
		mins[j] = s >> 4
	}
	return twoBit(&b.Qs), scales, mins
}

// unpack returns the 256 signed quants (-4..3) and the signed 6-bit scale of
// each of the 16 sub-blocks (-32..31).
func (b *BlockQ3_K) unpack() (q [QK_K]int8, scales [QK_K / 16]int8) {
	q = twoBit(&b.Qs)
	for i := range q {
		// The high bit of element i is bit i/32 of Hmask[i%32]; a clear
		// bit means the stored value is 4 below the two-bit field.
		if b.Hmask[i%32]&(1<<(i/32)) == 0 {
			q[i] -= 4
		}
	}
	for j := range scales {
		scales[j] = int8(scaleQ3K(j, &b.Scales))
	}
	return q, scales
}

// fourBitK returns the 256 four-bit fields of a Q4_K or Q5_K qs array:
// within each 64-element chunk, byte l holds element l in its low nibble and
// element l+32 in its high nibble.
func fourBitK(qs *[QK_K / 2]uint8) (q [QK_K]int8) {
	for c := 0; c < 4; c++ {
		for l := 0; l < 32; l++ {
			v := qs[32*c+l]
			q[64*c+l] = int8(v & 0xf)
			q[64*c+32+l] = int8(v >> 4)
		}
	}
	return q
}

// unpack returns the 256 quants (0..15) and the 6-bit scale and min of each
// of the 8 sub-blocks.
func (b *BlockQ4_K) unpack() (q [QK_K]int8, scales, mins [QK_K / 32]uint8) {
	for j := range scales {
		scales[j], mins[j] = scaleMinK4(j, &b.Scales)
	}
	return fourBitK(&b.Qs), scales, mins
}

// unpack returns the 256 quants (0..31) and the 6-bit scale and min of each
// of the 8 sub-blocks.
func (b *BlockQ5_K) unpack() (q [QK_K]int8, scales, mins [QK_K / 32]uint8) {
	for j := range scales {
		scales[j], mins[j] = scaleMinK4(j, &b.Scales)
	}
	q = fourBitK(&b.Qs)
	for i := range q {
		// Element 64c + 32h + l has its fifth bit at bit 2c+h of Qh[l].
		c, h, l := i/64, (i/32)%2, i%32
		if b.Qh[l]&(1<<(2*c+h)) != 0 {
			q[i] += 16
		}
	}
	return q, scales, mins
}

// unpack returns the 256 signed quants (-32..31); the 16 signed scales are
// b.Scales as they are.
func (b *BlockQ6_K) unpack() (q [QK_K]int8) {
	for half := 0; half < 2; half++ {
		ql := b.Ql[64*half : 64*half+64]
		qh := b.Qh[32*half : 32*half+32]
		out := q[128*half : 128*half+128]
		for l := 0; l < 32; l++ {
			lows := [4]uint8{ql[l] & 0xf, ql[l+32] & 0xf, ql[l] >> 4, ql[l+32] >> 4}
			for k := 0; k < 4; k++ {
				high := (qh[l] >> (2 * k)) & 3
				out[32*k+l] = int8(lows[k]|high<<4) - 32
			}
		}
	}
	return q
}
