package gguf

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
)

// ValueType is the type tag of a GGUF metadata value, as stored on disk.
type ValueType uint32

// GGUF metadata value types.
const (
	Uint8   ValueType = 0
	Int8    ValueType = 1
	Uint16  ValueType = 2
	Int16   ValueType = 3
	Uint32  ValueType = 4
	Int32   ValueType = 5
	Float32 ValueType = 6
	Bool    ValueType = 7
	String  ValueType = 8
	Array   ValueType = 9
	Uint64  ValueType = 10
	Int64   ValueType = 11
	Float64 ValueType = 12
)

var valueTypeNames = [...]string{
	Uint8: "uint8", Int8: "int8", Uint16: "uint16", Int16: "int16",
	Uint32: "uint32", Int32: "int32", Float32: "float32", Bool: "bool",
	String: "string", Array: "array", Uint64: "uint64", Int64: "int64",
	Float64: "float64",
}

// Valid reports whether t is one of the GGUF value types.
func (t ValueType) Valid() bool { return t <= Float64 }

// String returns the lower-case name of t ("uint32"), or "type(N)".
func (t ValueType) String() string {
	if t.Valid() {
		return valueTypeNames[t]
	}
	return "type(" + strconv.FormatUint(uint64(t), 10) + ")"
}

// size returns the encoded size of one scalar of type t, or 0 for String,
// Array and invalid types (which have no fixed size).
func (t ValueType) size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16:
		return 2
	case Uint32, Int32, Float32:
		return 4
	case Uint64, Int64, Float64:
		return 8
	}
	return 0
}

func (t ValueType) isUnsigned() bool {
	return t == Uint8 || t == Uint16 || t == Uint32 || t == Uint64
}

func (t ValueType) isSigned() bool {
	return t == Int8 || t == Int16 || t == Int32 || t == Int64
}

func (t ValueType) isInteger() bool { return t.isUnsigned() || t.isSigned() }

// Value is one GGUF metadata value. Its zero value is the uint8 0.
//
// A Value never references the memory of the file it was read from: scalar
// strings are copied at parse time and arrays of scalars or strings keep a
// private copy of their encoded elements, which are decoded on demand. Values
// therefore stay valid after the File is closed, are immutable, and are safe
// for concurrent use.
type Value struct {
	Type ValueType

	num uint64     // integers (signed ones sign-extended), float32 or float64 bits, bool 0/1
	str string     // String
	arr *arrayData // Array
}

// arrayData holds the elements of an array value. Arrays of scalars and
// strings keep their elements in the GGUF encoding (little-endian scalars;
// strings as uint64 length + bytes) in raw; arrays of arrays keep decoded
// items. items of a raw array is built on first use.
type arrayData struct {
	elem  ValueType
	n     int
	raw   string
	items []Value
	once  sync.Once
}

// Uint64 returns v as a uint64 if v is an integer that is not negative.
func (v Value) Uint64() (uint64, bool) {
	switch {
	case v.Type.isUnsigned():
		return v.num, true
	case v.Type.isSigned() && int64(v.num) >= 0:
		return v.num, true
	}
	return 0, false
}

// Int64 returns v as an int64 if v is an integer that fits.
func (v Value) Int64() (int64, bool) {
	switch {
	case v.Type.isSigned():
		return int64(v.num), true
	case v.Type.isUnsigned() && v.num <= math.MaxInt64:
		return int64(v.num), true
	}
	return 0, false
}

// Float64 returns v as a float64 if v is a float or an integer (converted,
// possibly rounding integers beyond 2^53).
func (v Value) Float64() (float64, bool) {
	switch {
	case v.Type == Float32:
		return float64(math.Float32frombits(uint32(v.num))), true
	case v.Type == Float64:
		return math.Float64frombits(v.num), true
	case v.Type.isUnsigned():
		return float64(v.num), true
	case v.Type.isSigned():
		return float64(int64(v.num)), true
	}
	return 0, false
}

// Str returns the string held by a String value.
func (v Value) Str() (string, bool) {
	if v.Type != String {
		return "", false
	}
	return v.str, true
}

// Bool returns the value of a Bool value.
func (v Value) Bool() (bool, bool) {
	if v.Type != Bool {
		return false, false
	}
	return v.num != 0, true
}

// Len returns the number of elements of an array value, or 0 for a scalar.
func (v Value) Len() int {
	if v.Type != Array || v.arr == nil {
		return 0
	}
	return v.arr.n
}

// Array returns the element type and the elements of an array value. The
// items slice is shared by every caller and must not be modified. For large
// arrays of scalars or strings the typed accessors (Strings, Float32s,
// Int32s, Uint32s) are much cheaper.
func (v Value) Array() (elemType ValueType, items []Value, ok bool) {
	if v.Type != Array || v.arr == nil {
		return 0, nil, false
	}
	a := v.arr
	a.once.Do(a.materialize)
	return a.elem, a.items, true
}

// materialize decodes raw into items. raw was validated when it was built.
func (a *arrayData) materialize() {
	if a.items != nil || a.n == 0 {
		return
	}
	items := make([]Value, a.n)
	if a.elem == String {
		off := 0
		for i := range items {
			l := int(le64(a.raw[off : off+8]))
			off += 8
			items[i] = Value{Type: String, str: a.raw[off : off+l]}
			off += l
		}
	} else {
		for i := range items {
			items[i] = a.scalarAt(i)
		}
	}
	a.items = items
}

// scalarAt decodes element i of a raw array of fixed-size scalars.
func (a *arrayData) scalarAt(i int) Value {
	sz := a.elem.size()
	return decodeScalar(a.elem, a.raw[i*sz:i*sz+sz])
}

// decodeScalar decodes a fixed-size scalar from b (len(b) == t.size()).
func decodeScalar[S bytesOrString](t ValueType, b S) Value {
	v := Value{Type: t}
	switch t {
	case Uint8, Bool:
		v.num = uint64(b[0])
	case Int8:
		v.num = uint64(int64(int8(b[0])))
	case Uint16:
		v.num = uint64(le16(b))
	case Int16:
		v.num = uint64(int64(int16(le16(b))))
	case Uint32:
		v.num = uint64(le32(b))
	case Int32:
		v.num = uint64(int64(int32(le32(b))))
	case Float32:
		v.num = uint64(le32(b))
	case Uint64, Int64, Float64:
		v.num = le64(b)
	}
	return v
}

// bytesOrString lets the little-endian helpers read from a mapped file and
// from a Value's private copy alike.
type bytesOrString interface{ ~string | ~[]byte }

func le16[S bytesOrString](b S) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }

func le32[S bytesOrString](b S) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64[S bytesOrString](b S) uint64 {
	_ = b[7]
	return uint64(le32(b)) | uint64(le32(b[4:]))<<32
}

// Strings returns the elements of an array of strings. The strings share
// one private buffer; only the slice headers are allocated, so this is cheap
// even for vocabularies of hundreds of thousands of entries.
func (v Value) Strings() ([]string, bool) {
	if v.Type != Array || v.arr == nil || v.arr.elem != String {
		return nil, false
	}
	a := v.arr
	out := make([]string, a.n)
	raw := a.raw
	off := 0
	for i := range out {
		l := int(le64(raw[off : off+8]))
		off += 8
		out[i] = raw[off : off+l]
		off += l
	}
	return out, true
}

// Float32s returns the elements of an array of floats or integers as
// float32s (float64 and large integers are rounded).
func (v Value) Float32s() ([]float32, bool) {
	if v.Type != Array || v.arr == nil {
		return nil, false
	}
	a := v.arr
	out := make([]float32, a.n)
	switch {
	case a.elem == Float32:
		for i := range out {
			out[i] = math.Float32frombits(le32(a.raw[4*i:]))
		}
	case a.elem == Float64 || a.elem.isInteger():
		for i := range out {
			f, _ := a.scalarAt(i).Float64()
			out[i] = float32(f)
		}
	default:
		return nil, false
	}
	return out, true
}

// Int32s returns the elements of an array of integers as int32s. It fails
// if the elements are not integers or one of them does not fit in an int32.
func (v Value) Int32s() ([]int32, bool) {
	if v.Type != Array || v.arr == nil || !v.arr.elem.isInteger() {
		return nil, false
	}
	a := v.arr
	out := make([]int32, a.n)
	if a.elem == Int32 {
		for i := range out {
			out[i] = int32(le32(a.raw[4*i:]))
		}
		return out, true
	}
	for i := range out {
		x, ok := a.scalarAt(i).Int64()
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(x)
	}
	return out, true
}

// Uint32s returns the elements of an array of integers as uint32s. It fails
// if the elements are not integers or one of them does not fit in a uint32.
func (v Value) Uint32s() ([]uint32, bool) {
	if v.Type != Array || v.arr == nil || !v.arr.elem.isInteger() {
		return nil, false
	}
	a := v.arr
	out := make([]uint32, a.n)
	if a.elem == Uint32 {
		for i := range out {
			out[i] = le32(a.raw[4*i:])
		}
		return out, true
	}
	for i := range out {
		x, ok := a.scalarAt(i).Uint64()
		if !ok || x > math.MaxUint32 {
			return nil, false
		}
		out[i] = uint32(x)
	}
	return out, true
}

// Any returns v as a plain Go value: uint8, int8, uint16, int16, uint32,
// int32, float32, bool, string, uint64, int64, float64, or []any for arrays
// (recursively).
func (v Value) Any() any {
	switch v.Type {
	case Uint8:
		return uint8(v.num)
	case Int8:
		return int8(v.num)
	case Uint16:
		return uint16(v.num)
	case Int16:
		return int16(v.num)
	case Uint32:
		return uint32(v.num)
	case Int32:
		return int32(v.num)
	case Float32:
		return math.Float32frombits(uint32(v.num))
	case Bool:
		return v.num != 0
	case String:
		return v.str
	case Array:
		_, items, _ := v.Array()
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = it.Any()
		}
		return out
	case Uint64:
		return v.num
	case Int64:
		return int64(v.num)
	case Float64:
		return math.Float64frombits(v.num)
	}
	return nil
}

const (
	maxShownItems = 8
	maxShownChars = 64
	maxShownTotal = 32
)

// String returns a short human-readable form of v: numbers as is, strings
// quoted (long ones cut), arrays with at most a few items and their length.
func (v Value) String() string {
	var sb strings.Builder
	budget := maxShownTotal
	v.format(&sb, &budget)
	return sb.String()
}

// format writes v to sb; budget limits how many array items are shown in
// all, so that nested arrays stay short too.
func (v Value) format(sb *strings.Builder, budget *int) {
	switch v.Type {
	case String:
		s := v.str
		if len(s) > maxShownChars {
			sb.WriteString(strconv.Quote(s[:maxShownChars]))
			fmt.Fprintf(sb, "...(%d bytes)", len(s))
			return
		}
		sb.WriteString(strconv.Quote(s))
	case Array:
		n := v.Len()
		sb.WriteString("[")
		shown := min(n, maxShownItems, max(*budget, 0))
		*budget -= shown
		switch {
		case v.arr == nil:
		case v.arr.elem == String:
			// Read raw directly: never materialize a huge vocabulary
			// just to print a few entries.
			raw, off := v.arr.raw, 0
			for i := 0; i < shown; i++ {
				l := int(le64(raw[off : off+8]))
				off += 8
				if i > 0 {
					sb.WriteString(", ")
				}
				Value{Type: String, str: raw[off : off+l]}.format(sb, budget)
				off += l
			}
		default:
			for i := 0; i < shown; i++ {
				if i > 0 {
					sb.WriteString(", ")
				}
				if v.arr.elem == Array {
					v.arr.items[i].format(sb, budget) // set at construction
				} else {
					v.arr.scalarAt(i).format(sb, budget)
				}
			}
		}
		if n > shown {
			if shown > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(sb, "... (%d items)", n)
		}
		sb.WriteString("]")
	case Bool:
		sb.WriteString(strconv.FormatBool(v.num != 0))
	case Float32:
		sb.WriteString(strconv.FormatFloat(float64(math.Float32frombits(uint32(v.num))), 'g', -1, 32))
	case Float64:
		sb.WriteString(strconv.FormatFloat(math.Float64frombits(v.num), 'g', -1, 64))
	default:
		if v.Type.isSigned() {
			sb.WriteString(strconv.FormatInt(int64(v.num), 10))
		} else if v.Type.isUnsigned() {
			sb.WriteString(strconv.FormatUint(v.num, 10))
		} else {
			fmt.Fprintf(sb, "<invalid %v>", v.Type)
		}
	}
}
