package quant

// format collects the reference routines of one type. Each routine works on
// a whole number of blocks whose sizes the exported entry points have
// already checked.
type format struct {
	dequant func(src []byte, dst []float32)
	quant   func(src []float32, dst []byte)
	vecDot  Type                             // activation type of the dot product
	dot     func(n int, w, x []byte) float32 // nil: no dot product
}

var formats = map[Type]format{
	F32:  {dequantF32, quantF32, F32, dotF32},
	F16:  {dequantF16, quantF16, F16, dotF16},
	BF16: {dequantBF16, quantBF16, BF16, dotBF16},
	Q4_0: {dequantQ4_0, quantQ4_0, Q8_0, dotQ4_0},
	Q4_1: {dequantQ4_1, quantQ4_1, Q8_1, dotQ4_1},
	Q5_0: {dequantQ5_0, quantQ5_0, Q8_0, dotQ5_0},
	Q5_1: {dequantQ5_1, quantQ5_1, Q8_1, dotQ5_1},
	Q8_0: {dequantQ8_0, quantQ8_0, Q8_0, dotQ8_0},
	Q8_1: {dequantQ8_1, quantQ8_1, Q8_1, dotQ8_1},
	Q2_K: {dequantQ2_K, quantQ2_K, Q8_K, dotQ2_K},
	Q3_K: {dequantQ3_K, quantQ3_K, Q8_K, dotQ3_K},
	Q4_K: {dequantQ4_K, quantQ4_K, Q8_K, dotQ4_K},
	Q5_K: {dequantQ5_K, quantQ5_K, Q8_K, dotQ5_K},
	Q6_K: {dequantQ6_K, quantQ6_K, Q8_K, dotQ6_K},
	Q8_K: {dequantQ8_K, quantQ8_K, Q8_K, dotQ8_K},
}

// CanQuantize reports whether Quantize supports type t.
func CanQuantize(t Type) bool { return formats[t].quant != nil }
