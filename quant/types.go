// Package quant defines the GGML tensor element types that sluice reads and
// writes, their block layouts, and the pure-Go reference (de)quantizers that
// every kernel is tested against. Clarity beats speed in this package.
package quant

import "fmt"

// Type is a GGML tensor element type. The numeric values are the ones GGUF
// stores on disk (ggml_type), so a Type can be read from and written to a file
// as is.
type Type uint32

// GGML type ids. Gaps are ids that GGML has retired.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
)

// QK_K is the number of elements in one K-quant super-block.
const QK_K = 256

// TypeInfo describes the on-disk layout of a type: BlockElems elements are
// stored in BlockBytes bytes. Dequant reports whether this package has a
// reference dequantizer for it (types without one can still be listed and
// skipped over in a GGUF file, but not computed with).
type TypeInfo struct {
	Name       string
	BlockElems int
	BlockBytes int
	Dequant    bool
}

var typeInfo = map[Type]TypeInfo{
	F32:     {"F32", 1, 4, true},
	F16:     {"F16", 1, 2, true},
	BF16:    {"BF16", 1, 2, true},
	Q4_0:    {"Q4_0", 32, 18, true},
	Q4_1:    {"Q4_1", 32, 20, true},
	Q5_0:    {"Q5_0", 32, 22, true},
	Q5_1:    {"Q5_1", 32, 24, true},
	Q8_0:    {"Q8_0", 32, 34, true},
	Q8_1:    {"Q8_1", 32, 36, true},
	Q2_K:    {"Q2_K", QK_K, 84, true},
	Q3_K:    {"Q3_K", QK_K, 110, true},
	Q4_K:    {"Q4_K", QK_K, 144, true},
	Q5_K:    {"Q5_K", QK_K, 176, true},
	Q6_K:    {"Q6_K", QK_K, 210, true},
	Q8_K:    {"Q8_K", QK_K, 292, true},
	IQ2_XXS: {"IQ2_XXS", QK_K, 66, false},
	IQ2_XS:  {"IQ2_XS", QK_K, 74, false},
	IQ3_XXS: {"IQ3_XXS", QK_K, 98, false},
	IQ1_S:   {"IQ1_S", QK_K, 50, false},
	IQ4_NL:  {"IQ4_NL", 32, 18, false},
	IQ3_S:   {"IQ3_S", QK_K, 110, false},
	IQ2_S:   {"IQ2_S", QK_K, 82, false},
	IQ4_XS:  {"IQ4_XS", QK_K, 136, false},
	I8:      {"I8", 1, 1, false},
	I16:     {"I16", 1, 2, false},
	I32:     {"I32", 1, 4, false},
	I64:     {"I64", 1, 8, false},
	F64:     {"F64", 1, 8, false},
	IQ1_M:   {"IQ1_M", QK_K, 56, false},
	TQ1_0:   {"TQ1_0", QK_K, 54, false},
	TQ2_0:   {"TQ2_0", QK_K, 66, false},
	MXFP4:   {"MXFP4", 32, 17, false},
}

// Info returns the layout of t and whether t is a known type.
func (t Type) Info() (TypeInfo, bool) {
	ti, ok := typeInfo[t]
	return ti, ok
}

// Known reports whether t is a GGML type this package knows the layout of.
func (t Type) Known() bool { _, ok := typeInfo[t]; return ok }

// String returns the GGML name of t ("Q4_K"), or "type(N)" when unknown.
func (t Type) String() string {
	if ti, ok := typeInfo[t]; ok {
		return ti.Name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// BlockElems is the number of elements per block (1 for plain float types).
// It returns 0 for an unknown type.
func (t Type) BlockElems() int { return typeInfo[t].BlockElems }

// BlockBytes is the number of bytes per block. It returns 0 for an unknown type.
func (t Type) BlockBytes() int { return typeInfo[t].BlockBytes }

// ParseType maps a GGML type name ("q4_k", "F16") to its Type.
func ParseType(name string) (Type, bool) {
	for t, ti := range typeInfo {
		if equalFold(ti.Name, name) {
			return t, true
		}
	}
	return 0, false
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// RowBytes returns the bytes needed to store n elements of type t, or an
// error when t is unknown or n is not a whole number of blocks.
func RowBytes(t Type, n int) (int, error) {
	ti, ok := typeInfo[t]
	if !ok {
		return 0, fmt.Errorf("quant: unknown tensor type %d", uint32(t))
	}
	if n < 0 || n%ti.BlockElems != 0 {
		return 0, fmt.Errorf("quant: %d elements is not a whole number of %s blocks (%d elements each)", n, ti.Name, ti.BlockElems)
	}
	return n / ti.BlockElems * ti.BlockBytes, nil
}
