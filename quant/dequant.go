package quant

import (
	"fmt"
	"math"
)

// Dequantize decodes len(dst) elements of type t from src into dst. src must
// hold exactly those elements: len(dst) a whole number of blocks and len(src)
// equal to RowBytes(t, len(dst)).
//
// The arithmetic follows GGML's dequantize_row_* functions operation for
// operation in float32, each product rounded before it is added (no fused
// multiply-add), so the output matches llama.cpp's scalar dequantizers.
func Dequantize(t Type, src []byte, dst []float32) error {
	f := formats[t]
	if f.dequant == nil {
		return fmt.Errorf("quant: no dequantizer for type %v", t)
	}
	if err := checkSizes(t, len(dst), len(src)); err != nil {
		return err
	}
	f.dequant(src, dst)
	return nil
}

// checkSizes reports an error unless n elements of t fill exactly nbytes.
func checkSizes(t Type, n, nbytes int) error {
	want, err := RowBytes(t, n)
	if err != nil {
		return err
	}
	if nbytes != want {
		return fmt.Errorf("quant: %d elements of %v take %d bytes, got %d", n, t, want, nbytes)
	}
	return nil
}

// mul returns a*b rounded to float32. Writing products through mul (or an
// explicit float32 conversion) stops the compiler from fusing them with a
// following add into an FMA, which would change the last bit on some CPUs.
func mul(a, b float32) float32 { return float32(a * b) }

func dequantF32(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
	}
}

func dequantF16(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = F16ToF32(le.Uint16(src[2*i:]))
	}
}

func dequantBF16(src []byte, dst []float32) {
	for i := range dst {
		dst[i] = BF16ToF32(le.Uint16(src[2*i:]))
	}
}

func dequantQ4_0(src []byte, dst []float32) {
	var b BlockQ4_0
	for i := 0; i < len(dst)/QK4_0; i++ {
		b.Decode(src[18*i:])
		d := F16ToF32(b.D)
		q := b.quants()
		y := dst[QK4_0*i : QK4_0*(i+1)]
		for j := range y {
			y[j] = float32(q[j]) * d
		}
	}
}

func dequantQ4_1(src []byte, dst []float32) {
	var b BlockQ4_1
	for i := 0; i < len(dst)/QK4_1; i++ {
		b.Decode(src[20*i:])
		d, m := F16ToF32(b.D), F16ToF32(b.M)
		q := b.quants()
		y := dst[QK4_1*i : QK4_1*(i+1)]
		for j := range y {
			y[j] = mul(float32(q[j]), d) + m
		}
	}
}

func dequantQ5_0(src []byte, dst []float32) {
	var b BlockQ5_0
	for i := 0; i < len(dst)/QK5_0; i++ {
		b.Decode(src[22*i:])
		d := F16ToF32(b.D)
		q := b.quants()
		y := dst[QK5_0*i : QK5_0*(i+1)]
		for j := range y {
			y[j] = float32(q[j]) * d
		}
	}
}

func dequantQ5_1(src []byte, dst []float32) {
	var b BlockQ5_1
	for i := 0; i < len(dst)/QK5_1; i++ {
		b.Decode(src[24*i:])
		d, m := F16ToF32(b.D), F16ToF32(b.M)
		q := b.quants()
		y := dst[QK5_1*i : QK5_1*(i+1)]
		for j := range y {
			y[j] = mul(float32(q[j]), d) + m
		}
	}
}

func dequantQ8_0(src []byte, dst []float32) {
	var b BlockQ8_0
	for i := 0; i < len(dst)/QK8_0; i++ {
		b.Decode(src[34*i:])
		d := F16ToF32(b.D)
		y := dst[QK8_0*i : QK8_0*(i+1)]
		for j := range y {
			y[j] = float32(b.Qs[j]) * d
		}
	}
}

func dequantQ8_1(src []byte, dst []float32) {
	var b BlockQ8_1
	for i := 0; i < len(dst)/QK8_1; i++ {
		b.Decode(src[36*i:])
		d := F16ToF32(b.D)
		y := dst[QK8_1*i : QK8_1*(i+1)]
		for j := range y {
			y[j] = float32(b.Qs[j]) * d
		}
	}
}

func dequantQ2_K(src []byte, dst []float32) {
	var b BlockQ2_K
	for i := 0; i < len(dst)/QK_K; i++ {
		b.Decode(src[84*i:])
		d, dmin := F16ToF32(b.D), F16ToF32(b.Dmin)
		q, scales, mins := b.unpack()
		y := dst[QK_K*i : QK_K*(i+1)]
		for j := range y {
			dl := d * float32(scales[j/16])
			ml := dmin * float32(mins[j/16])
			y[j] = mul(dl, float32(q[j])) - ml
		}
	}
}

func dequantQ3_K(src []byte, dst []float32) {
	var b BlockQ3_K
	for i := 0; i < len(dst)/QK_K; i++ {
		b.Decode(src[110*i:])
		d := F16ToF32(b.D)
		q, scales := b.unpack()
		y := dst[QK_K*i : QK_K*(i+1)]
		for j := range y {
			dl := d * float32(scales[j/16])
			y[j] = dl * float32(q[j])
		}
	}
}

func dequantQ4_K(src []byte, dst []float32) {
	var b BlockQ4_K
	for i := 0; i < len(dst)/QK_K; i++ {
		b.Decode(src[144*i:])
		d, dmin := F16ToF32(b.D), F16ToF32(b.Dmin)
		q, scales, mins := b.unpack()
		y := dst[QK_K*i : QK_K*(i+1)]
		for j := range y {
			dl := d * float32(scales[j/32])
			ml := dmin * float32(mins[j/32])
			y[j] = mul(dl, float32(q[j])) - ml
		}
	}
}

func dequantQ5_K(src []byte, dst []float32) {
	var b BlockQ5_K
	for i := 0; i < len(dst)/QK_K; i++ {
		b.Decode(src[176*i:])
		d, dmin := F16ToF32(b.D), F16ToF32(b.Dmin)
		q, scales, mins := b.unpack()
		y := dst[QK_K*i : QK_K*(i+1)]
		for j := range y {
			dl := d * float32(scales[j/32])
			ml := dmin * float32(mins[j/32])
			y[j] = mul(dl, float32(q[j])) - ml
		}
	}
}

func dequantQ6_K(src []byte, dst []float32) {
	var b BlockQ6_K
	for i := 0; i < len(dst)/QK_K; i++ {
		b.Decode(src[210*i:])
		d := F16ToF32(b.D)
		q := b.unpack()
		y := dst[QK_K*i : QK_K*(i+1)]
		for j := range y {
			y[j] = mul(d, float32(b.Scales[j/16])) * float32(q[j])
		}
	}
}

func dequantQ8_K(src []byte, dst []float32) {
	var b BlockQ8_K
	for i := 0; i < len(dst)/QK_K; i++ {
		b.Decode(src[292*i:])
		y := dst[QK_K*i : QK_K*(i+1)]
		for j := range y {
			y[j] = b.D * float32(b.Qs[j])
		}
	}
}
