package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"

	"github.com/sluice-llm/sluice/quant"
)

// MaxTensorName is the longest tensor name Writer accepts: llama.cpp
// refuses names of 64 bytes or more.
const MaxTensorName = 63

// Writer builds a GGUF version 3 file. Metadata keeps insertion order
// (replacing a key keeps its position); tensors are laid out in the order
// they were added, each aligned to the file's alignment and padded with
// zeros to it, the way llama.cpp writes them.
//
// A Writer references the tensor data passed to AddTensor without copying
// it; the caller must keep it unchanged until the file is written. A Writer
// is not safe for concurrent use.
type Writer struct {
	version   uint32
	alignment uint64
	kvs       []KV
	kvIdx     map[string]int
	tensors   []writerTensor
	tIdx      map[string]int
	err       error // sticky error from SetAlignment
}

type writerTensor struct {
	info TensorInfo
	data []byte
}

// NewWriter returns an empty Writer with the default alignment.
func NewWriter() *Writer {
	return &Writer{
		version:   3,
		alignment: DefaultAlignment,
		kvIdx:     map[string]int{},
		tIdx:      map[string]int{},
	}
}

// Set stores a metadata value under key. v may be a Value (for example one
// read from another file, which keeps its exact type) or a Go value: uint8,
// int8, uint16, int16, uint32, int32, uint64, int64, float32, float64, bool,
// string, int (stored as int64), uint (stored as uint64), a slice of any of
// those, []Value, or []any whose elements convert to one common type
// (nested slices make arrays of arrays). Setting general.alignment also sets
// the data alignment and must be a power of two.
func (w *Writer) Set(key string, v any) error {
	if key == "" {
		return errors.New("gguf: empty metadata key")
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("gguf: metadata key of %d bytes is longer than the %d allowed", len(key), MaxKeyLen)
	}
	val, err := NewValue(v)
	if err != nil {
		return fmt.Errorf("gguf: key %q: %w", key, err)
	}
	if key == KeyAlignment {
		a, ok := val.Uint64()
		if !ok || a == 0 || a&(a-1) != 0 {
			return fmt.Errorf("gguf: key %q: alignment must be a power of two, got %v", key, val)
		}
		w.alignment = a
	}
	if i, ok := w.kvIdx[key]; ok {
		w.kvs[i].Value = val
		return nil
	}
	w.kvIdx[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: val})
	return nil
}

// SetAlignment sets the tensor data alignment and stores it as the uint32
// general.alignment. n must be a power of two; otherwise WriteTo fails.
func (w *Writer) SetAlignment(n uint64) {
	if n == 0 || n&(n-1) != 0 || n > math.MaxUint32 {
		w.err = fmt.Errorf("gguf: alignment %d is not a power of two that fits in a uint32", n)
		return
	}
	w.err = nil
	w.Set(KeyAlignment, uint32(n))
}

// AddTensor appends a tensor. dims are ne[0] first (1 to MaxDims of them,
// each > 0), dims[0] must be a whole number of t's blocks, and len(data)
// must be exactly the size quant.RowBytes gives for the element count. data
// is not copied.
func (w *Writer) AddTensor(name string, t quant.Type, dims []uint64, data []byte) error {
	if name == "" || len(name) > MaxTensorName {
		return fmt.Errorf("gguf: tensor name %q must be 1 to %d bytes", name, MaxTensorName)
	}
	if _, dup := w.tIdx[name]; dup {
		return fmt.Errorf("gguf: tensor %q added twice", name)
	}
	if !t.Known() {
		return fmt.Errorf("gguf: tensor %q: unknown tensor type %d", name, uint32(t))
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return fmt.Errorf("gguf: tensor %q: %d dimensions (must be 1 to %d)", name, len(dims), MaxDims)
	}
	elems := uint64(1)
	for j, n := range dims {
		if n == 0 {
			return fmt.Errorf("gguf: tensor %q: dimension %d is zero", name, j)
		}
		if n > math.MaxInt64/elems {
			return fmt.Errorf("gguf: tensor %q: element count overflows", name)
		}
		elems *= n
	}
	if elems > math.MaxInt {
		return fmt.Errorf("gguf: tensor %q: %d elements is too many", name, elems)
	}
	if dims[0]%uint64(t.BlockElems()) != 0 {
		return fmt.Errorf("gguf: tensor %q: row length %d is not a multiple of the %v block size %d", name, dims[0], t, t.BlockElems())
	}
	want, err := quant.RowBytes(t, int(elems))
	if err != nil {
		return fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	if len(data) != want {
		return fmt.Errorf("gguf: tensor %q: %d bytes of data, want %d for %d %v elements", name, len(data), want, elems, t)
	}
	w.tIdx[name] = len(w.tensors)
	w.tensors = append(w.tensors, writerTensor{
		info: TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: t, Size: uint64(want)},
		data: data,
	})
	return nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

var zeros [256]byte

// WriteTo writes the file to out and returns the number of bytes written.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	// Assign data offsets.
	off := uint64(0)
	for i := range w.tensors {
		ti := &w.tensors[i].info
		ti.Offset = off
		end, ok := alignUp(off+ti.Size, w.alignment)
		if !ok {
			return 0, errors.New("gguf: tensor data too large")
		}
		off = end
	}

	cw := &countWriter{w: out}
	bw := bufio.NewWriterSize(cw, 1<<16)
	e := encoder{w: bw}
	e.raw([]byte(Magic))
	e.u32(w.version)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Value.Type))
		e.value(kv.Value)
	}
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(t.info.Offset)
	}
	if len(w.tensors) > 0 {
		e.pad(w.alignment)
		for _, t := range w.tensors {
			e.raw(t.data)
			e.pad(w.alignment)
		}
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	return cw.n, e.err
}

// encoder writes GGUF primitives, remembering the first error.
type encoder struct {
	w   *bufio.Writer
	n   uint64 // bytes written so far
	err error
	buf [8]byte
}

func (e *encoder) raw(b []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(b)
	e.n += uint64(len(b))
}

func (e *encoder) rawString(s string) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.WriteString(s)
	e.n += uint64(len(s))
}

func (e *encoder) u32(x uint32) {
	binary.LittleEndian.PutUint32(e.buf[:4], x)
	e.raw(e.buf[:4])
}

func (e *encoder) u64(x uint64) {
	binary.LittleEndian.PutUint64(e.buf[:8], x)
	e.raw(e.buf[:8])
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.rawString(s)
}

func (e *encoder) pad(align uint64) {
	for e.n%align != 0 {
		k := min(align-e.n%align, uint64(len(zeros)))
		e.raw(zeros[:k])
		if e.err != nil {
			return
		}
	}
}

func (e *encoder) value(v Value) {
	switch v.Type {
	case String:
		e.str(v.str)
	case Array:
		e.array(v.arr)
	default:
		var b [8]byte
		e.raw(appendScalar(b[:0], v))
	}
}

func (e *encoder) array(a *arrayData) {
	e.u32(uint32(a.elem))
	e.u64(uint64(a.n))
	if a.elem == Array {
		for _, it := range a.items {
			e.array(it.arr)
		}
		return
	}
	e.rawString(a.raw)
}

// appendScalar appends the encoding of a fixed-size scalar.
func appendScalar(b []byte, v Value) []byte {
	switch v.Type.size() {
	case 1:
		return append(b, byte(v.num))
	case 2:
		return binary.LittleEndian.AppendUint16(b, uint16(v.num))
	case 4:
		return binary.LittleEndian.AppendUint32(b, uint32(v.num))
	}
	return binary.LittleEndian.AppendUint64(b, v.num)
}

// WriteFile writes the file to path atomically: it writes a temporary file
// in the same directory, syncs it, and renames it over path.
func (w *Writer) WriteFile(path string) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = w.WriteTo(tmp); err != nil {
		return err
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	// Make the rename durable; not every system can sync a directory.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// NewValue converts a Go value to a Value; see Writer.Set for the accepted
// types.
func NewValue(v any) (Value, error) {
	return newValue(v, 0)
}

func newValue(v any, depth int) (Value, error) {
	switch x := v.(type) {
	case Value:
		return checkValue(x, depth)
	case uint8:
		return Value{Type: Uint8, num: uint64(x)}, nil
	case int8:
		return Value{Type: Int8, num: uint64(int64(x))}, nil
	case uint16:
		return Value{Type: Uint16, num: uint64(x)}, nil
	case int16:
		return Value{Type: Int16, num: uint64(int64(x))}, nil
	case uint32:
		return Value{Type: Uint32, num: uint64(x)}, nil
	case int32:
		return Value{Type: Int32, num: uint64(int64(x))}, nil
	case uint64:
		return Value{Type: Uint64, num: x}, nil
	case int64:
		return Value{Type: Int64, num: uint64(x)}, nil
	case int:
		return Value{Type: Int64, num: uint64(int64(x))}, nil
	case uint:
		return Value{Type: Uint64, num: uint64(x)}, nil
	case float32:
		return Value{Type: Float32, num: uint64(math.Float32bits(x))}, nil
	case float64:
		return Value{Type: Float64, num: math.Float64bits(x)}, nil
	case bool:
		var n uint64
		if x {
			n = 1
		}
		return Value{Type: Bool, num: n}, nil
	case string:
		return Value{Type: String, str: x}, nil
	case []string:
		n := 0
		for _, s := range x {
			n += 8 + len(s)
		}
		raw := make([]byte, 0, n)
		for _, s := range x {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(len(s)))
			raw = append(raw, s...)
		}
		return Value{Type: Array, arr: &arrayData{elem: String, n: len(x), raw: string(raw)}}, nil
	case []float32:
		raw := make([]byte, 0, 4*len(x))
		for _, e := range x {
			raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(e))
		}
		return Value{Type: Array, arr: &arrayData{elem: Float32, n: len(x), raw: string(raw)}}, nil
	case []int32:
		raw := make([]byte, 0, 4*len(x))
		for _, e := range x {
			raw = binary.LittleEndian.AppendUint32(raw, uint32(e))
		}
		return Value{Type: Array, arr: &arrayData{elem: Int32, n: len(x), raw: string(raw)}}, nil
	case []uint32:
		raw := make([]byte, 0, 4*len(x))
		for _, e := range x {
			raw = binary.LittleEndian.AppendUint32(raw, e)
		}
		return Value{Type: Array, arr: &arrayData{elem: Uint32, n: len(x), raw: string(raw)}}, nil
	case []Value:
		return arrayOf(x, depth)
	case []any:
		items := make([]Value, len(x))
		for i, it := range x {
			val, err := newValue(it, depth+1)
			if err != nil {
				return Value{}, fmt.Errorf("element %d: %w", i, err)
			}
			items[i] = val
		}
		return arrayOf(items, depth)
	}
	// Other slices of scalars, through reflection.
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		n := rv.Len()
		var et ValueType
		switch rv.Type().Elem().Kind() {
		case reflect.Uint8:
			et = Uint8
		case reflect.Int8:
			et = Int8
		case reflect.Uint16:
			et = Uint16
		case reflect.Int16:
			et = Int16
		case reflect.Uint32:
			et = Uint32
		case reflect.Int32:
			et = Int32
		case reflect.Uint64, reflect.Uint:
			et = Uint64
		case reflect.Int64, reflect.Int:
			et = Int64
		case reflect.Float32:
			et = Float32
		case reflect.Float64:
			et = Float64
		case reflect.Bool:
			et = Bool
		default:
			return Value{}, fmt.Errorf("unsupported metadata type %T", v)
		}
		raw := make([]byte, 0, n*et.size())
		for i := 0; i < n; i++ {
			e := rv.Index(i)
			var s Value
			switch e.Kind() {
			case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
				s = Value{Type: et, num: e.Uint()}
			case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
				s = Value{Type: et, num: uint64(e.Int())}
			case reflect.Float32:
				s = Value{Type: et, num: uint64(math.Float32bits(float32(e.Float())))}
			case reflect.Float64:
				s = Value{Type: et, num: math.Float64bits(e.Float())}
			case reflect.Bool:
				if e.Bool() {
					s = Value{Type: et, num: 1}
				} else {
					s = Value{Type: et}
				}
			}
			raw = appendScalar(raw, s)
		}
		return Value{Type: Array, arr: &arrayData{elem: et, n: n, raw: string(raw)}}, nil
	}
	return Value{}, fmt.Errorf("unsupported metadata type %T", v)
}

// ArrayValue builds an array with the given element type from items, which
// must all have that type. Unlike []any, it can express empty arrays.
func ArrayValue(elem ValueType, items []Value) (Value, error) {
	if !elem.Valid() {
		return Value{}, fmt.Errorf("invalid element type %v", elem)
	}
	for i, it := range items {
		if it.Type != elem {
			return Value{}, fmt.Errorf("element %d is %v, want %v", i, it.Type, elem)
		}
		if _, err := checkValue(it, 1); err != nil {
			return Value{}, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return buildArray(elem, items), nil
}

// arrayOf builds an array from items of one common type.
func arrayOf(items []Value, depth int) (Value, error) {
	if len(items) == 0 {
		return Value{}, errors.New("cannot tell the element type of an empty array; use a typed slice or ArrayValue")
	}
	elem := items[0].Type
	for i, it := range items {
		if it.Type != elem {
			return Value{}, fmt.Errorf("array mixes %v and %v (element %d)", elem, it.Type, i)
		}
		if _, err := checkValue(it, depth+1); err != nil {
			return Value{}, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return buildArray(elem, items), nil
}

func buildArray(elem ValueType, items []Value) Value {
	a := &arrayData{elem: elem, n: len(items)}
	switch elem {
	case Array:
		a.items = append([]Value(nil), items...)
	case String:
		var raw []byte
		for _, it := range items {
			raw = binary.LittleEndian.AppendUint64(raw, uint64(len(it.str)))
			raw = append(raw, it.str...)
		}
		a.raw = string(raw)
	default:
		raw := make([]byte, 0, len(items)*elem.size())
		for _, it := range items {
			raw = appendScalar(raw, it)
		}
		a.raw = string(raw)
	}
	return Value{Type: Array, arr: a}
}

// checkValue reports whether v is a well-formed Value that the reader would
// accept at the given array nesting depth.
func checkValue(v Value, depth int) (Value, error) {
	if !v.Type.Valid() {
		return Value{}, fmt.Errorf("invalid value type %v", v.Type)
	}
	if v.Type == Bool && v.num > 1 {
		return Value{}, errors.New("bool value is not 0 or 1")
	}
	if v.Type != Array {
		return v, nil
	}
	if v.arr == nil {
		return Value{}, errors.New("array Value without elements (build arrays with NewValue or ArrayValue)")
	}
	if depth+1 > MaxArrayDepth {
		return Value{}, fmt.Errorf("arrays nested deeper than %d levels", MaxArrayDepth)
	}
	if v.arr.elem == Array {
		for _, it := range v.arr.items {
			if _, err := checkValue(it, depth+1); err != nil {
				return Value{}, err
			}
		}
	}
	return v, nil
}
