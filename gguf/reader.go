// Package gguf reads and writes GGUF files (versions 2 and 3, little-endian),
// the model format of llama.cpp: a header of typed metadata key/value pairs,
// a tensor index, and aligned tensor data.
//
// Open maps a file read-only and validates all of it before returning:
// every length and count is checked against the bytes that are actually
// there before anything is allocated, and every tensor must lie, aligned and
// without overlap, inside the file. Tensor data is never copied; TensorData
// returns slices of the mapping.
//
// Writer builds files, keeping metadata in insertion order, and lays out
// tensor data the way llama.cpp does.
package gguf

import (
	"fmt"
	"math"
	"math/bits"
	"sort"

	"github.com/sluice-llm/sluice/quant"
)

const (
	// Magic is the first four bytes of every GGUF file.
	Magic = "GGUF"
	// DefaultAlignment is the tensor data alignment used when the file has no
	// general.alignment key.
	DefaultAlignment = 32
	// MaxDims is the largest number of dimensions a tensor may have.
	MaxDims = 4
	// MaxArrayDepth is how deeply arrays of arrays may nest (an array of
	// scalars has depth 1).
	MaxArrayDepth = 8
	// MaxKeyLen is the longest metadata key the format allows.
	MaxKeyLen = 65535

	// KeyAlignment is the metadata key holding the data alignment.
	KeyAlignment = "general.alignment"
	// KeyArchitecture is the metadata key naming the model architecture.
	KeyArchitecture = "general.architecture"
)

// Smallest encodings, used to reject impossible counts before allocating.
const (
	minKVBytes     = 8 + 4 + 1         // empty key, type, one-byte value
	minTensorBytes = 8 + 4 + 8 + 4 + 8 // empty name, n_dims, one dim, type, offset
	minArrayBytes  = 4 + 8             // element type, count

	// maxPrealloc caps capacity reserved from a declared count; beyond it
	// slices grow only as entries actually parse, so a huge file with a
	// bogus count cannot make the parser reserve memory out of proportion.
	maxPrealloc = 4096
)

// KV is one metadata key/value pair.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name string
	// Dims are the dimensions as stored: Dims[0] (ggml's ne[0]) is the
	// innermost, contiguous one. 1 <= len(Dims) <= MaxDims, every entry > 0.
	Dims []uint64
	Type quant.Type
	// Offset of the data relative to File.DataOffset; a multiple of
	// File.Alignment.
	Offset uint64
	// Size of the data in bytes.
	Size uint64
}

// Elems returns the number of elements (the product of Dims).
func (ti *TensorInfo) Elems() uint64 {
	n := uint64(1)
	for _, d := range ti.Dims {
		n *= d
	}
	return n
}

// File is a parsed GGUF file.
//
// A File from Open owns a read-only memory mapping of the file, released by
// Close. Metadata (KVs, Values) is copied out of the mapping at parse time
// and stays valid after Close; the slices returned by TensorData point into
// the mapping and are valid only until Close. The exported fields describe
// the file as validated and must be treated as read-only. A File is safe for
// concurrent readers; Close must not run concurrently with other methods.
type File struct {
	Version uint32
	// Alignment of tensor data (general.alignment, or DefaultAlignment).
	Alignment uint64
	// KVs are the metadata pairs in file order; keys are unique.
	KVs []KV
	// Tensors are in file (index) order; names are unique.
	Tensors []TensorInfo
	// DataOffset is the absolute file offset of the tensor data section. In
	// a file without tensors it may equal or exceed Size.
	DataOffset uint64

	data   []byte
	size   int64
	unmap  func([]byte) error // nil when data is not a mapping owned by f
	path   string
	kvIdx  map[string]int
	tIdx   map[string]int
	closed bool

	// A split File (OpenSplit) holds its parts; partOf[i] is the part
	// holding Tensors[i].
	parts  []*File
	partOf []int
}

// Parse parses and validates a GGUF file held in memory. The File keeps
// referencing data (tensor data is not copied), so data must not be modified
// while the File is in use. Close on such a File only drops the reference.
func Parse(data []byte) (*File, error) {
	return parse(data, "")
}

// Close releases the file mapping. Slices returned by TensorData must not be
// used afterwards. Close is idempotent.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	var firstErr error
	for _, p := range f.parts {
		if err := p.Close(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	data, unmap := f.data, f.unmap
	f.data, f.unmap = nil, nil
	if unmap != nil && data != nil {
		if err := unmap(data); err != nil {
			return fmt.Errorf("gguf: unmap %s: %w", f.path, err)
		}
	}
	return nil
}

// Size returns the size of the file in bytes.
func (f *File) Size() int64 { return f.size }

// Get returns the value stored under key.
func (f *File) Get(key string) (Value, bool) {
	if i, ok := f.kvIdx[key]; ok && i < len(f.KVs) && f.KVs[i].Key == key {
		return f.KVs[i].Value, true
	}
	for _, kv := range f.KVs {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return Value{}, false
}

// String returns the string stored under key.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Get(key)
	if !ok {
		return "", false
	}
	return v.Str()
}

// Uint32 returns the integer stored under key, of any integer type, if it
// fits in a uint32.
func (f *File) Uint32(key string) (uint32, bool) {
	x, ok := f.Uint64(key)
	if !ok || x > math.MaxUint32 {
		return 0, false
	}
	return uint32(x), true
}

// Uint64 returns the integer stored under key, of any integer type, if it
// is not negative.
func (f *File) Uint64(key string) (uint64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	return v.Uint64()
}

// Int32 returns the integer stored under key, of any integer type, if it
// fits in an int32.
func (f *File) Int32(key string) (int32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	x, ok := v.Int64()
	if !ok || x < math.MinInt32 || x > math.MaxInt32 {
		return 0, false
	}
	return int32(x), true
}

// Float32 returns the number stored under key (a float or an integer) as a
// float32.
func (f *File) Float32(key string) (float32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	x, ok := v.Float64()
	return float32(x), ok
}

// Bool returns the bool stored under key.
func (f *File) Bool(key string) (bool, bool) {
	v, ok := f.Get(key)
	if !ok {
		return false, false
	}
	return v.Bool()
}

// Strings returns the array of strings stored under key. See Value.Strings.
func (f *File) Strings(key string) ([]string, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Strings()
}

// Float32s returns the array of numbers stored under key as float32s.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Float32s()
}

// Int32s returns the array of integers stored under key as int32s.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Int32s()
}

// Uint32s returns the array of integers stored under key as uint32s.
func (f *File) Uint32s(key string) ([]uint32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Uint32s()
}

// Arch returns general.architecture, or "" when absent.
func (f *File) Arch() string {
	s, _ := f.String(KeyArchitecture)
	return s
}

// Tensor returns the tensor named name. The pointer refers to an element of
// f.Tensors.
func (f *File) Tensor(name string) (*TensorInfo, bool) {
	if i, ok := f.tIdx[name]; ok && i < len(f.Tensors) && f.Tensors[i].Name == name {
		return &f.Tensors[i], true
	}
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// TensorData returns the bytes of ti's data: a slice of the mapped file
// (never a copy) with len == ti.Size, valid until Close. It must not be
// modified. It returns nil after Close or if ti does not lie inside the file.
func (f *File) TensorData(ti *TensorInfo) []byte {
	if ti != nil && f.parts != nil {
		return f.splitTensorData(ti)
	}
	if ti == nil || f.data == nil {
		return nil
	}
	n := uint64(len(f.data))
	if f.DataOffset > n || ti.Offset > n-f.DataOffset || ti.Size > n-f.DataOffset-ti.Offset {
		return nil
	}
	start := f.DataOffset + ti.Offset
	return f.data[start : start+ti.Size : start+ti.Size]
}

// decoder reads the header of a file, tracking what it is reading for
// error messages.
type decoder struct {
	b      []byte
	off    int
	path   string
	key    string
	tensor string
}

func (d *decoder) fail(kind error, at int, format string, args ...any) error {
	return &FormatError{
		Err:    kind,
		Path:   d.path,
		Offset: int64(at),
		Key:    d.key,
		Tensor: d.tensor,
		Msg:    fmt.Sprintf(format, args...),
	}
}

func (d *decoder) rest() uint64 { return uint64(len(d.b) - d.off) }

// need checks that n bytes of what are left at the current offset.
func (d *decoder) need(n uint64, what string) error {
	if n > d.rest() {
		return d.fail(ErrTruncated, d.off, "%s needs %d bytes, only %d left in the %d-byte file", what, n, d.rest(), len(d.b))
	}
	return nil
}

func (d *decoder) u32(what string) (uint32, error) {
	if err := d.need(4, what); err != nil {
		return 0, err
	}
	x := le32(d.b[d.off:])
	d.off += 4
	return x, nil
}

func (d *decoder) u64(what string) (uint64, error) {
	if err := d.need(8, what); err != nil {
		return 0, err
	}
	x := le64(d.b[d.off:])
	d.off += 8
	return x, nil
}

// str reads a length-prefixed string, copying it.
func (d *decoder) str(what string) (string, error) {
	at := d.off
	n, err := d.u64(what + " length")
	if err != nil {
		return "", err
	}
	if n > d.rest() {
		d.off = at
		return "", d.fail(ErrTruncated, at, "%s length %d exceeds the %d bytes left in the file", what, n, d.rest()-8)
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s, nil
}

func parse(b []byte, path string) (*File, error) {
	d := &decoder{b: b, path: path}
	version, err := d.header()
	if err != nil {
		return nil, err
	}
	nTensors, nKV, err := d.counts()
	if err != nil {
		return nil, err
	}
	f := &File{
		Version:   version,
		Alignment: DefaultAlignment,
		data:      b,
		size:      int64(len(b)),
		path:      path,
	}
	if err := d.kvs(f, nKV); err != nil {
		return nil, err
	}
	offAt, err := d.tensors(f, nTensors)
	if err != nil {
		return nil, err
	}
	dataOff, ok := alignUp(uint64(d.off), f.Alignment)
	if !ok {
		return nil, d.fail(ErrCorrupt, d.off, "data section offset overflows with alignment %d", f.Alignment)
	}
	f.DataOffset = dataOff
	if len(f.Tensors) == 0 {
		return f, nil
	}
	if err := d.tensorData(f, offAt); err != nil {
		return nil, err
	}
	return f, nil
}

// header checks the magic and reads the version.
func (d *decoder) header() (uint32, error) {
	b := d.b
	if len(b) < 4 {
		return 0, d.fail(ErrTruncated, 0, "file is %d bytes, too short for the magic", len(b))
	}
	if string(b[:4]) != Magic {
		return 0, d.fail(ErrNotGGUF, 0, "bad magic %q, want %q", b[:4], Magic)
	}
	d.off = 4
	version, err := d.u32("version")
	if err != nil {
		return 0, err
	}
	switch {
	case version == 2 || version == 3:
		return version, nil
	case version == 1:
		return 0, d.fail(ErrUnsupported, 4, "GGUF version 1 is not supported (only versions 2 and 3)")
	case version&0xffff == 0 && version != 0 && bits.ReverseBytes32(version) <= 0xffff:
		return 0, d.fail(ErrUnsupported, 4, "big-endian GGUF files are not supported (version field reads %#08x)", version)
	default:
		return 0, d.fail(ErrUnsupported, 4, "GGUF version %d is not supported (only versions 2 and 3)", version)
	}
}

// counts reads the tensor and metadata counts and checks that the bytes
// left can hold that many entries, before anything is allocated for them.
func (d *decoder) counts() (nTensors, nKV uint64, err error) {
	if nTensors, err = d.u64("tensor count"); err != nil {
		return 0, 0, err
	}
	if nKV, err = d.u64("metadata count"); err != nil {
		return 0, 0, err
	}
	rest := d.rest()
	if nKV > rest/minKVBytes {
		return 0, 0, d.fail(ErrTruncated, 16, "metadata count %d needs at least %d bytes per pair, only %d bytes left", nKV, minKVBytes, rest)
	}
	if nTensors > rest/minTensorBytes {
		return 0, 0, d.fail(ErrTruncated, 8, "tensor count %d needs at least %d bytes per tensor, only %d bytes left", nTensors, minTensorBytes, rest)
	}
	if nKV*minKVBytes+nTensors*minTensorBytes > rest {
		return 0, 0, d.fail(ErrTruncated, 8, "%d metadata pairs and %d tensors need at least %d bytes, only %d left", nKV, nTensors, nKV*minKVBytes+nTensors*minTensorBytes, rest)
	}
	return nTensors, nKV, nil
}

// kvs reads nKV metadata pairs into f, and f.Alignment from
// general.alignment when present.
func (d *decoder) kvs(f *File, nKV uint64) error {
	f.KVs = make([]KV, 0, min(nKV, maxPrealloc))
	f.kvIdx = make(map[string]int, min(nKV, maxPrealloc))
	for i := uint64(0); i < nKV; i++ {
		at := d.off
		key, err := d.str("key")
		if err != nil {
			return err
		}
		if len(key) > MaxKeyLen {
			return d.fail(ErrCorrupt, at, "key of %d bytes is longer than the %d allowed", len(key), MaxKeyLen)
		}
		d.key = key
		if j, dup := f.kvIdx[key]; dup {
			return d.fail(ErrCorrupt, at, "duplicate key (also metadata pair %d)", j)
		}
		tat := d.off
		t32, err := d.u32("value type")
		if err != nil {
			return err
		}
		t := ValueType(t32)
		if !t.Valid() {
			return d.fail(ErrCorrupt, tat, "unknown value type %d", uint32(t))
		}
		v, err := d.value(t, 0)
		if err != nil {
			return err
		}
		if key == KeyAlignment {
			if f.Alignment, err = d.alignment(v, tat); err != nil {
				return err
			}
		}
		f.kvIdx[key] = len(f.KVs)
		f.KVs = append(f.KVs, KV{Key: key, Value: v})
		d.key = ""
	}
	return nil
}

// alignment checks the value of general.alignment, whose type field is at
// offset tat (its value follows at tat+4).
func (d *decoder) alignment(v Value, tat int) (uint64, error) {
	if !v.Type.isInteger() {
		return 0, d.fail(ErrCorrupt, tat, "alignment must be a non-negative integer, got %v %v", v.Type, v)
	}
	a, ok := v.Uint64()
	if !ok {
		return 0, d.fail(ErrCorrupt, tat+4, "alignment must be a non-negative integer, got %v %v", v.Type, v)
	}
	if a == 0 || a&(a-1) != 0 {
		return 0, d.fail(ErrCorrupt, tat+4, "alignment %d is not a power of two", a)
	}
	return a, nil
}

// tensors reads nTensors tensor infos into f. It returns, for each tensor,
// the file offset of its data offset field, for errors found later.
func (d *decoder) tensors(f *File, nTensors uint64) ([]int, error) {
	f.Tensors = make([]TensorInfo, 0, min(nTensors, maxPrealloc))
	f.tIdx = make(map[string]int, min(nTensors, maxPrealloc))
	offAt := make([]int, 0, min(nTensors, maxPrealloc))
	for i := uint64(0); i < nTensors; i++ {
		at := d.off
		ti, err := d.tensorInfo(f.Alignment)
		if err != nil {
			return nil, err
		}
		if j, dup := f.tIdx[ti.Name]; dup {
			d.tensor = ti.Name
			return nil, d.fail(ErrCorrupt, at, "duplicate tensor name (also tensor %d)", j)
		}
		f.tIdx[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
		offAt = append(offAt, d.off-8) // the data offset is the last field
	}
	return offAt, nil
}

// tensorData checks that every tensor's data lies inside the file without
// overlapping another's. Errors point at the tensor's data offset field,
// offAt[i], since the data it names may lie past the end of the file.
func (d *decoder) tensorData(f *File, offAt []int) error {
	size := uint64(len(d.b))
	if f.DataOffset > size {
		return d.fail(ErrTruncated, d.off, "tensor data section starts at %d, past the end of the %d-byte file", f.DataOffset, size)
	}
	avail := size - f.DataOffset
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if ti.Offset > avail || ti.Size > avail-ti.Offset {
			d.tensor = ti.Name
			return d.fail(ErrTruncated, offAt[i], "data [%d, +%d) extends past the end of the file (%d bytes of tensor data)", ti.Offset, ti.Size, avail)
		}
	}
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return f.Tensors[order[i]].Offset < f.Tensors[order[j]].Offset })
	for k := 1; k < len(order); k++ {
		prev, cur := &f.Tensors[order[k-1]], &f.Tensors[order[k]]
		if prev.Offset+prev.Size > cur.Offset {
			d.tensor = cur.Name
			return d.fail(ErrCorrupt, offAt[order[k]], "data [%d, %d) overlaps tensor %q [%d, %d)",
				cur.Offset, cur.Offset+cur.Size, prev.Name, prev.Offset, prev.Offset+prev.Size)
		}
	}
	return nil
}

// alignUp rounds x up to a multiple of a (a power of two).
func alignUp(x, a uint64) (uint64, bool) {
	r := x & (a - 1)
	if r == 0 {
		return x, true
	}
	y := x + (a - r)
	return y, y > x
}

func (d *decoder) tensorInfo(align uint64) (TensorInfo, error) {
	var ti TensorInfo
	name, err := d.str("tensor name")
	if err != nil {
		return ti, err
	}
	ti.Name = name
	d.tensor = name
	at := d.off
	nd, err := d.u32("dimension count")
	if err != nil {
		return ti, err
	}
	if nd == 0 || nd > MaxDims {
		return ti, d.fail(ErrCorrupt, at, "%d dimensions (must be 1 to %d)", nd, MaxDims)
	}
	ti.Dims = make([]uint64, nd)
	elems := uint64(1)
	for j := range ti.Dims {
		at := d.off
		n, err := d.u64("dimension")
		if err != nil {
			return ti, err
		}
		if n == 0 {
			return ti, d.fail(ErrCorrupt, at, "dimension %d is zero", j)
		}
		if n > math.MaxInt64/elems {
			return ti, d.fail(ErrCorrupt, at, "element count overflows at dimension %d (%d)", j, n)
		}
		elems *= n
		ti.Dims[j] = n
	}
	at = d.off
	t, err := d.u32("tensor type")
	if err != nil {
		return ti, err
	}
	ti.Type = quant.Type(t)
	if !ti.Type.Known() {
		return ti, d.fail(ErrUnsupported, at, "unknown tensor type %d", t)
	}
	be, bb := uint64(ti.Type.BlockElems()), uint64(ti.Type.BlockBytes())
	if ti.Dims[0]%be != 0 {
		return ti, d.fail(ErrCorrupt, at, "row length %d (element count %d) is not a multiple of the %v block size %d", ti.Dims[0], elems, ti.Type, be)
	}
	if elems/be > math.MaxInt64/bb {
		return ti, d.fail(ErrCorrupt, at, "data size overflows (%d elements of %v)", elems, ti.Type)
	}
	ti.Size = elems / be * bb
	at = d.off
	ti.Offset, err = d.u64("tensor data offset")
	if err != nil {
		return ti, err
	}
	if ti.Offset%align != 0 {
		return ti, d.fail(ErrCorrupt, at, "data offset %d is not a multiple of the alignment %d", ti.Offset, align)
	}
	d.tensor = ""
	return ti, nil
}

// value decodes a value of type t (already checked valid) at the current
// offset. depth is the number of enclosing arrays.
func (d *decoder) value(t ValueType, depth int) (Value, error) {
	switch t {
	case String:
		s, err := d.str("string value")
		if err != nil {
			return Value{}, err
		}
		return Value{Type: String, str: s}, nil
	case Array:
		a, err := d.array(depth + 1)
		if err != nil {
			return Value{}, err
		}
		return Value{Type: Array, arr: a}, nil
	}
	sz := t.size()
	if err := d.need(uint64(sz), t.String()+" value"); err != nil {
		return Value{}, err
	}
	v := decodeScalar(t, d.b[d.off:d.off+sz])
	if t == Bool && v.num > 1 {
		return Value{}, d.fail(ErrCorrupt, d.off, "bool value %d is not 0 or 1", v.num)
	}
	d.off += sz
	return v, nil
}

// array decodes the body of an array value (element type, count, elements).
// depth counts this array.
func (d *decoder) array(depth int) (*arrayData, error) {
	at := d.off
	if depth > MaxArrayDepth {
		return nil, d.fail(ErrCorrupt, at, "arrays nested deeper than %d levels", MaxArrayDepth)
	}
	et32, err := d.u32("array element type")
	if err != nil {
		return nil, err
	}
	et := ValueType(et32)
	if !et.Valid() {
		return nil, d.fail(ErrCorrupt, at, "unknown array element type %d", et32)
	}
	cat := d.off
	n, err := d.u64("array length")
	if err != nil {
		return nil, err
	}
	rest := d.rest()
	a := &arrayData{elem: et}
	switch et {
	case String:
		if n > rest/8 {
			return nil, d.fail(ErrTruncated, cat, "array of %d strings needs at least %d bytes, only %d left", n, satMul(n, 8), rest)
		}
		start := d.off
		for i := uint64(0); i < n; i++ {
			sat := d.off
			l := le64(d.b[d.off:]) // 8 bytes are there: checked below for later items
			d.off += 8
			if l > d.rest() {
				d.off = sat
				return nil, d.fail(ErrTruncated, sat, "string %d of %d in array: length %d exceeds the %d bytes left", i, n, l, d.rest()-8)
			}
			d.off += int(l)
			if i+1 < n && d.rest() < 8 {
				return nil, d.fail(ErrTruncated, d.off, "array of %d strings ends after %d of them", n, i+1)
			}
		}
		a.raw = string(d.b[start:d.off])
	case Array:
		if n > rest/minArrayBytes {
			return nil, d.fail(ErrTruncated, cat, "array of %d arrays needs at least %d bytes, only %d left", n, satMul(n, minArrayBytes), rest)
		}
		a.items = make([]Value, 0, min(n, maxPrealloc))
		for i := uint64(0); i < n; i++ {
			sub, err := d.array(depth + 1)
			if err != nil {
				return nil, err
			}
			a.items = append(a.items, Value{Type: Array, arr: sub})
		}
	default:
		sz := uint64(et.size())
		if n > rest/sz {
			return nil, d.fail(ErrTruncated, cat, "array of %d %v needs %d bytes, only %d left", n, et, satMul(n, sz), rest)
		}
		raw := d.b[d.off : d.off+int(n*sz)]
		if et == Bool {
			for i, c := range raw {
				if c > 1 {
					return nil, d.fail(ErrCorrupt, d.off+i, "bool %d of array is %d, not 0 or 1", i, c)
				}
			}
		}
		a.raw = string(raw)
		d.off += len(raw)
	}
	a.n = int(n)
	return a, nil
}

// satMul multiplies, saturating at the largest uint64.
func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}
