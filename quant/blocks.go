package quant

import (
	"encoding/binary"
	"math"
	"unsafe"
)

// Block layouts. Each struct mirrors one GGML block byte for byte: the field
// order is the on-disk order, multi-byte fields are little-endian, and F16
// scales are kept as raw uint16 bit patterns (convert with F16ToF32). The
// compile-time assertions below pin every struct's size to the type table, so
// a layout mistake does not build.
//
// Decode and Encode move a block between its struct and its bytes explicitly
// (no unsafe casts), so they work on any byte slice whatever its alignment
// and on any host byte order. Both panic if p is shorter than the block.

// Elements per block of the 32-element ("legacy") quant formats.
const (
	QK4_0 = 32
	QK4_1 = 32
	QK5_0 = 32
	QK5_1 = 32
	QK8_0 = 32
	QK8_1 = 32
)

// BlockQ4_0 is 32 weights as 4-bit unsigned quants q with value d*(q-8).
// Byte qs[j] holds element j in its low nibble and element j+16 in its high
// nibble.
type BlockQ4_0 struct {
	D  uint16 // scale (F16)
	Qs [QK4_0 / 2]uint8
}

// BlockQ4_1 is 32 weights with value d*q + m, q a 4-bit unsigned quant,
// packed as in BlockQ4_0.
type BlockQ4_1 struct {
	D  uint16 // scale (F16)
	M  uint16 // minimum (F16)
	Qs [QK4_1 / 2]uint8
}

// BlockQ5_0 is 32 weights with value d*(q-16), q a 5-bit unsigned quant. The
// low 4 bits are packed as in BlockQ4_0; bit j of the little-endian uint32 Qh
// is the fifth bit of element j.
type BlockQ5_0 struct {
	D  uint16 // scale (F16)
	Qh [4]uint8
	Qs [QK5_0 / 2]uint8
}

// BlockQ5_1 is 32 weights with value d*q + m, q a 5-bit unsigned quant packed
// as in BlockQ5_0.
type BlockQ5_1 struct {
	D  uint16 // scale (F16)
	M  uint16 // minimum (F16)
	Qh [4]uint8
	Qs [QK5_1 / 2]uint8
}

// BlockQ8_0 is 32 weights with value d*q, q a signed byte.
type BlockQ8_0 struct {
	D  uint16 // scale (F16)
	Qs [QK8_0]int8
}

// BlockQ8_1 is 32 activations with value d*q, q a signed byte, plus
// s = d*sum(q), which lets a dot product with an offset format (Q4_1, Q5_1)
// apply the weights' minimum in one multiply.
type BlockQ8_1 struct {
	D  uint16 // scale (F16)
	S  uint16 // d * sum(Qs) (F16)
	Qs [QK8_1]int8
}

// BlockQ2_K is a 256-weight super-block of 16 sub-blocks of 16. Sub-block j
// has a 4-bit scale (low nibble of Scales[j]) and a 4-bit min (high nibble);
// weight value is d*scale*q - dmin*min with q a 2-bit quant. Qs packs four
// 2-bit quants per byte: within each half of 128 weights, byte l holds
// elements l, l+32, l+64, l+96 at bit offsets 0, 2, 4, 6.
type BlockQ2_K struct {
	Scales [QK_K / 16]uint8
	Qs     [QK_K / 4]uint8
	D      uint16 // super-block scale for the scales (F16)
	Dmin   uint16 // super-block scale for the mins (F16)
}

// BlockQ3_K is a 256-weight super-block of 16 sub-blocks of 16 with 6-bit
// signed scales (stored +32) and 3-bit signed quants q in [-4, 3]: value is
// d*(scale-32)*q. The low two bits of q+4 are packed like Q2_K; bit b of
// Hmask[l] is the third bit of element 32*b + l. The 16 scales are packed
// into 12 bytes: the low nibbles in Scales[0:8] (scales 0..7 low, 8..15
// high nibble), the top two bits in Scales[8:12].
type BlockQ3_K struct {
	Hmask  [QK_K / 8]uint8
	Qs     [QK_K / 4]uint8
	Scales [12]uint8
	D      uint16 // super-block scale (F16)
}

// BlockQ4_K is a 256-weight super-block of 8 sub-blocks of 32 with 6-bit
// scales and 6-bit mins packed into 12 bytes (see scaleMinK4); value is
// d*scale*q - dmin*min with q a 4-bit quant. Within each 64-weight chunk,
// byte l holds element l in its low nibble and element l+32 in its high one.
type BlockQ4_K struct {
	D      uint16 // super-block scale for the scales (F16)
	Dmin   uint16 // super-block scale for the mins (F16)
	Scales [12]uint8
	Qs     [QK_K / 2]uint8
}

// BlockQ5_K is BlockQ4_K with a fifth bit per quant: bit 2c of Qh[l] is the
// fifth bit of element 64c + l, bit 2c+1 that of element 64c + 32 + l.
type BlockQ5_K struct {
	D      uint16 // super-block scale for the scales (F16)
	Dmin   uint16 // super-block scale for the mins (F16)
	Scales [12]uint8
	Qh     [QK_K / 8]uint8
	Qs     [QK_K / 2]uint8
}

// BlockQ6_K is a 256-weight super-block of 16 sub-blocks of 16 with signed
// 8-bit scales and 6-bit quants q (stored +32): value is d*scale*(q-32).
// Within each 128-weight half, Ql[l] holds the low nibbles of elements l
// and l+64, Ql[l+32] those of l+32 and l+96, and Qh[l] the top two bits of
// l, l+32, l+64, l+96 at bit offsets 0, 2, 4, 6.
type BlockQ6_K struct {
	Ql     [QK_K / 2]uint8
	Qh     [QK_K / 4]uint8
	Scales [QK_K / 16]int8
	D      uint16 // super-block scale (F16)
}

// BlockQ8_K is the activation format for K-quant dot products: 256 values
// d*q with a float32 scale and the sums of each group of 16 quants.
type BlockQ8_K struct {
	D     float32
	Qs    [QK_K]int8
	Bsums [QK_K / 16]int16
}

// Compile-time size checks: each line fails to build if the struct's size
// differs from the block size GGML uses.
var (
	_ [18]byte  = [unsafe.Sizeof(BlockQ4_0{})]byte{}
	_ [20]byte  = [unsafe.Sizeof(BlockQ4_1{})]byte{}
	_ [22]byte  = [unsafe.Sizeof(BlockQ5_0{})]byte{}
	_ [24]byte  = [unsafe.Sizeof(BlockQ5_1{})]byte{}
	_ [34]byte  = [unsafe.Sizeof(BlockQ8_0{})]byte{}
	_ [36]byte  = [unsafe.Sizeof(BlockQ8_1{})]byte{}
	_ [84]byte  = [unsafe.Sizeof(BlockQ2_K{})]byte{}
	_ [110]byte = [unsafe.Sizeof(BlockQ3_K{})]byte{}
	_ [144]byte = [unsafe.Sizeof(BlockQ4_K{})]byte{}
	_ [176]byte = [unsafe.Sizeof(BlockQ5_K{})]byte{}
	_ [210]byte = [unsafe.Sizeof(BlockQ6_K{})]byte{}
	_ [292]byte = [unsafe.Sizeof(BlockQ8_K{})]byte{}
)

var le = binary.LittleEndian

func getI8s(dst []int8, p []byte) {
	for i := range dst {
		dst[i] = int8(p[i])
	}
}

func putI8s(p []byte, src []int8) {
	for i, v := range src {
		p[i] = uint8(v)
	}
}

// Decode reads the block from its 18 bytes in p.
func (b *BlockQ4_0) Decode(p []byte) {
	_ = p[17]
	b.D = le.Uint16(p)
	copy(b.Qs[:], p[2:18])
}

// Encode writes the block's 18 bytes to p.
func (b *BlockQ4_0) Encode(p []byte) {
	_ = p[17]
	le.PutUint16(p, b.D)
	copy(p[2:18], b.Qs[:])
}

// Decode reads the block from its 20 bytes in p.
func (b *BlockQ4_1) Decode(p []byte) {
	_ = p[19]
	b.D = le.Uint16(p)
	b.M = le.Uint16(p[2:])
	copy(b.Qs[:], p[4:20])
}

// Encode writes the block's 20 bytes to p.
func (b *BlockQ4_1) Encode(p []byte) {
	_ = p[19]
	le.PutUint16(p, b.D)
	le.PutUint16(p[2:], b.M)
	copy(p[4:20], b.Qs[:])
}

// Decode reads the block from its 22 bytes in p.
func (b *BlockQ5_0) Decode(p []byte) {
	_ = p[21]
	b.D = le.Uint16(p)
	copy(b.Qh[:], p[2:6])
	copy(b.Qs[:], p[6:22])
}

// Encode writes the block's 22 bytes to p.
func (b *BlockQ5_0) Encode(p []byte) {
	_ = p[21]
	le.PutUint16(p, b.D)
	copy(p[2:6], b.Qh[:])
	copy(p[6:22], b.Qs[:])
}

// Decode reads the block from its 24 bytes in p.
func (b *BlockQ5_1) Decode(p []byte) {
	_ = p[23]
	b.D = le.Uint16(p)
	b.M = le.Uint16(p[2:])
	copy(b.Qh[:], p[4:8])
	copy(b.Qs[:], p[8:24])
}

// Encode writes the block's 24 bytes to p.
func (b *BlockQ5_1) Encode(p []byte) {
	_ = p[23]
	le.PutUint16(p, b.D)
	le.PutUint16(p[2:], b.M)
	copy(p[4:8], b.Qh[:])
	copy(p[8:24], b.Qs[:])
}

// Decode reads the block from its 34 bytes in p.
func (b *BlockQ8_0) Decode(p []byte) {
	_ = p[33]
	b.D = le.Uint16(p)
	getI8s(b.Qs[:], p[2:34])
}

// Encode writes the block's 34 bytes to p.
func (b *BlockQ8_0) Encode(p []byte) {
	_ = p[33]
	le.PutUint16(p, b.D)
	putI8s(p[2:34], b.Qs[:])
}

// Decode reads the block from its 36 bytes in p.
func (b *BlockQ8_1) Decode(p []byte) {
	_ = p[35]
	b.D = le.Uint16(p)
	b.S = le.Uint16(p[2:])
	getI8s(b.Qs[:], p[4:36])
}

// Encode writes the block's 36 bytes to p.
func (b *BlockQ8_1) Encode(p []byte) {
	_ = p[35]
	le.PutUint16(p, b.D)
	le.PutUint16(p[2:], b.S)
	putI8s(p[4:36], b.Qs[:])
}

// Decode reads the block from its 84 bytes in p.
func (b *BlockQ2_K) Decode(p []byte) {
	_ = p[83]
	copy(b.Scales[:], p[0:16])
	copy(b.Qs[:], p[16:80])
	b.D = le.Uint16(p[80:])
	b.Dmin = le.Uint16(p[82:])
}

// Encode writes the block's 84 bytes to p.
func (b *BlockQ2_K) Encode(p []byte) {
	_ = p[83]
	copy(p[0:16], b.Scales[:])
	copy(p[16:80], b.Qs[:])
	le.PutUint16(p[80:], b.D)
	le.PutUint16(p[82:], b.Dmin)
}

// Decode reads the block from its 110 bytes in p.
func (b *BlockQ3_K) Decode(p []byte) {
	_ = p[109]
	copy(b.Hmask[:], p[0:32])
	copy(b.Qs[:], p[32:96])
	copy(b.Scales[:], p[96:108])
	b.D = le.Uint16(p[108:])
}

// Encode writes the block's 110 bytes to p.
func (b *BlockQ3_K) Encode(p []byte) {
	_ = p[109]
	copy(p[0:32], b.Hmask[:])
	copy(p[32:96], b.Qs[:])
	copy(p[96:108], b.Scales[:])
	le.PutUint16(p[108:], b.D)
}

// Decode reads the block from its 144 bytes in p.
func (b *BlockQ4_K) Decode(p []byte) {
	_ = p[143]
	b.D = le.Uint16(p)
	b.Dmin = le.Uint16(p[2:])
	copy(b.Scales[:], p[4:16])
	copy(b.Qs[:], p[16:144])
}

// Encode writes the block's 144 bytes to p.
func (b *BlockQ4_K) Encode(p []byte) {
	_ = p[143]
	le.PutUint16(p, b.D)
	le.PutUint16(p[2:], b.Dmin)
	copy(p[4:16], b.Scales[:])
	copy(p[16:144], b.Qs[:])
}

// Decode reads the block from its 176 bytes in p.
func (b *BlockQ5_K) Decode(p []byte) {
	_ = p[175]
	b.D = le.Uint16(p)
	b.Dmin = le.Uint16(p[2:])
	copy(b.Scales[:], p[4:16])
	copy(b.Qh[:], p[16:48])
	copy(b.Qs[:], p[48:176])
}

// Encode writes the block's 176 bytes to p.
func (b *BlockQ5_K) Encode(p []byte) {
	_ = p[175]
	le.PutUint16(p, b.D)
	le.PutUint16(p[2:], b.Dmin)
	copy(p[4:16], b.Scales[:])
	copy(p[16:48], b.Qh[:])
	copy(p[48:176], b.Qs[:])
}

// Decode reads the block from its 210 bytes in p.
func (b *BlockQ6_K) Decode(p []byte) {
	_ = p[209]
	copy(b.Ql[:], p[0:128])
	copy(b.Qh[:], p[128:192])
	getI8s(b.Scales[:], p[192:208])
	b.D = le.Uint16(p[208:])
}

// Encode writes the block's 210 bytes to p.
func (b *BlockQ6_K) Encode(p []byte) {
	_ = p[209]
	copy(p[0:128], b.Ql[:])
	copy(p[128:192], b.Qh[:])
	putI8s(p[192:208], b.Scales[:])
	le.PutUint16(p[208:], b.D)
}

// Decode reads the block from its 292 bytes in p.
func (b *BlockQ8_K) Decode(p []byte) {
	_ = p[291]
	b.D = math.Float32frombits(le.Uint32(p))
	getI8s(b.Qs[:], p[4:260])
	for i := range b.Bsums {
		b.Bsums[i] = int16(le.Uint16(p[260+2*i:]))
	}
}

// Encode writes the block's 292 bytes to p.
func (b *BlockQ8_K) Encode(p []byte) {
	_ = p[291]
	le.PutUint32(p, math.Float32bits(b.D))
	putI8s(p[4:260], b.Qs[:])
	for i, s := range b.Bsums {
		le.PutUint16(p[260+2*i:], uint16(s))
	}
}

// scaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7) from the
// 12 packed bytes of a Q4_K or Q5_K block. Sub-blocks 0..3 keep their scale
// in the low 6 bits of q[j] and their min in the low 6 bits of q[j+4];
// sub-blocks 4..7 keep the low 4 bits of both in q[j+4] (scale low nibble,
// min high nibble) and the top 2 bits in the spare top bits of q[j-4]
// (scale) and q[j] (min).
func scaleMinK4(j int, q *[12]uint8) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	sc = q[j+4]&0xf | (q[j-4]>>6)<<4
	m = q[j+4]>>4 | (q[j]>>6)<<4
	return sc, m
}

// setScaleMinK4 is the inverse of scaleMinK4: it stores the 6-bit scale and
// min of sub-block j. The bytes must start zeroed, and sub-blocks 0..3 must
// be stored before 4..7.
func setScaleMinK4(j int, q *[12]uint8, sc, m uint8) {
	if j < 4 {
		q[j] = sc
		q[j+4] = m
		return
	}
	q[j+4] = sc&0xf | (m&0xf)<<4
	q[j-4] |= (sc >> 4) << 6
	q[j] |= (m >> 4) << 6
}

// scaleQ3K returns the signed 6-bit scale (-32..31) of sub-block j (0..15)
// of a Q3_K block.
func scaleQ3K(j int, s *[12]uint8) int {
	var low uint8
	if j < 8 {
		low = s[j] & 0xf
	} else {
		low = s[j-8] >> 4
	}
	high := (s[8+j%4] >> (2 * (j / 4))) & 3
	return int(low|high<<4) - 32
}

// setScaleQ3K stores the 6-bit scale l (0..63, i.e. the signed scale + 32)
// of sub-block j of a Q3_K block. The bytes must start zeroed.
func setScaleQ3K(j int, s *[12]uint8, l uint8) {
	if j < 8 {
		s[j] |= l & 0xf
	} else {
		s[j-8] |= (l & 0xf) << 4
	}
	s[8+j%4] |= (l >> 4) << (2 * (j / 4))
}
