// Package cpu is the CPU backend: C kernels called through cgo, one call per
// op, run on a persistent pool of worker threads. Each kernel exists in three
// paths — portable C, AVX2 (+FMA, F16C) and AVX-512 (+VNNI, BF16 where the
// CPU has it) — picked at run time from the CPU's features, or forced with
// kernels.Options.Path or the SLUICE_CPU_PATH environment variable.
//
// Quantized matmuls quantize the activation rows once per op to the 8-bit
// format paired with the weight type (Q8_0, Q8_1 or Q8_K, byte for byte as
// quant.Quantize does) and use integer dot products. On the AVX-512 path,
// Q4_0, Q8_0, Q4_K and Q6_K weights are repacked on their first MatMul into
// panels of 16 rows (kept in the tensor's Dev field, freed by Free) that a
// VNNI micro-kernel multiplies with up to 8 activation rows at a time; F16
// weights use a 4×6 register-tiled kernel.
package cpu

/*
#cgo CFLAGS: -O3 -std=c11 -D_GNU_SOURCE
#cgo LDFLAGS: -lpthread -lm
#include "sl.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

func init() {
	kernels.Register("cpu", func(opts kernels.Options) (kernels.Backend, error) {
		b, err := New(opts)
		if err != nil {
			// A nil *Backend in the interface would not compare equal to
			// nil, and a caller's cleanup would call Close on it.
			return nil, err
		}
		return b, nil
	})
}

// EnvPath is the environment variable that forces a kernel path when
// kernels.Options.Path is empty.
const EnvPath = "SLUICE_CPU_PATH"

// Paths lists the kernel paths, slowest first.
var Paths = []string{"portable", "avx2", "avx512"}

func pathID(name string) (C.int, bool) {
	for i, p := range Paths {
		if p == name {
			return C.int(i), true
		}
	}
	return 0, false
}

// PathAvailable reports whether this CPU can run the named kernel path.
func PathAvailable(name string) bool {
	id, ok := pathID(name)
	return ok && C.sl_path_available(id) != 0
}

// AvailablePaths lists the kernel paths this CPU can run, slowest first.
func AvailablePaths() []string {
	var out []string
	for _, p := range Paths {
		if PathAvailable(p) {
			out = append(out, p)
		}
	}
	return out
}

// BestPath is the fastest kernel path this CPU can run.
func BestPath() string {
	av := AvailablePaths()
	return av[len(av)-1]
}

var supported = []quant.Type{
	quant.F32, quant.F16, quant.BF16,
	quant.Q4_0, quant.Q4_1, quant.Q5_0, quant.Q5_1, quant.Q8_0,
	quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K,
}

func isSupported(t quant.Type) bool {
	for _, s := range supported {
		if s == t {
			return true
		}
	}
	return false
}

// MaxThreads is the most worker threads a backend runs.
const MaxThreads = 1024

// Backend is the CPU implementation of kernels.Backend.
type Backend struct {
	c       *C.sl_backend
	path    string
	threads int
	seqMax  []int32 // scratch for Attention's block table checks
}

var (
	_ kernels.Backend      = (*Backend)(nil)
	_ kernels.WeightPacker = (*Backend)(nil)
)

// New creates a CPU backend. opts.Threads ≤ 0 means one thread per core;
// opts.Path (or, when empty, $SLUICE_CPU_PATH) forces a kernel path, and
// naming one the CPU cannot run is an error.
func New(opts kernels.Options) (*Backend, error) {
	path := opts.Path
	if path == "" {
		path = strings.TrimSpace(os.Getenv(EnvPath))
	}
	if path == "" || path == "auto" {
		path = BestPath()
	}
	id, ok := pathID(path)
	if !ok {
		return nil, fmt.Errorf("cpu: unknown kernel path %q (want one of %s)", path, strings.Join(Paths, ", "))
	}
	if C.sl_path_available(id) == 0 {
		return nil, fmt.Errorf("cpu: kernel path %q is not supported by this CPU (available: %s)",
			path, strings.Join(AvailablePaths(), ", "))
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	if threads > MaxThreads {
		return nil, fmt.Errorf("cpu: %d threads is too many (at most %d)", threads, MaxThreads)
	}
	c := C.sl_backend_new(C.int(threads), id)
	if c == nil {
		return nil, errors.New("cpu: cannot create the backend (out of memory or threads)")
	}
	return &Backend{c: c, path: path, threads: threads}, nil
}

// Name returns "cpu".
func (b *Backend) Name() string { return "cpu" }

// Path returns the kernel path in use ("portable", "avx2" or "avx512").
func (b *Backend) Path() string { return b.path }

// Threads returns the number of worker threads, the caller's included.
func (b *Backend) Threads() int { return b.threads }

// SupportedWeights lists the weight types MatMul and GetRows accept.
func (b *Backend) SupportedWeights() []quant.Type {
	return append([]quant.Type(nil), supported...)
}

var errClosed = errors.New("cpu: backend is closed")

// Close stops the worker threads and frees the backend's scratch memory.
// Closing a nil or closed Backend does nothing.
func (b *Backend) Close() error {
	if b != nil && b.c != nil {
		C.sl_backend_free(b.c)
		b.c = nil
	}
	return nil
}

func tensorBytes(t quant.Type, rows, cols int) (int, error) {
	if rows < 0 || cols < 0 {
		return 0, fmt.Errorf("negative shape %d×%d", rows, cols)
	}
	rb, err := quant.RowBytes(t, cols)
	if err != nil {
		return 0, err
	}
	if cols > math.MaxInt32 || rows > math.MaxInt32 || (rb > 0 && rows > math.MaxInt/rb) {
		return 0, fmt.Errorf("shape %d×%d is too large", rows, cols)
	}
	return rows * rb, nil
}

// NewTensor allocates a zeroed host tensor.
func (b *Backend) NewTensor(t quant.Type, rows, cols int) (*kernels.Tensor, error) {
	if b.c == nil {
		return nil, errClosed
	}
	n, err := tensorBytes(t, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("cpu: NewTensor %v: %w", t, err)
	}
	return &kernels.Tensor{Type: t, Rows: rows, Cols: cols, Host: make([]byte, n)}, nil
}

// Weight wraps data (no copy) as a weight tensor.
func (b *Backend) Weight(t quant.Type, rows, cols int, data []byte) (*kernels.Tensor, error) {
	if b.c == nil {
		return nil, errClosed
	}
	if !isSupported(t) {
		return nil, fmt.Errorf("cpu: weight type %v is not supported (supported: %v)", t, supported)
	}
	n, err := tensorBytes(t, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("cpu: Weight %v: %w", t, err)
	}
	if len(data) < n {
		return nil, fmt.Errorf("cpu: Weight %v(%d×%d) needs %d bytes, got %d", t, rows, cols, n, len(data))
	}
	return &kernels.Tensor{Type: t, Rows: rows, Cols: cols, Host: data[:n:n], Dev: &packedWeight{be: b}}, nil
}

// packedWeight is the Dev of a tensor made by Weight: the weight repacked
// for the backend's GEMM kernels, made on the first MatMul that uses it
// (nil data: not packed yet, or the type has no packed form).
type packedWeight struct {
	be   *Backend
	done bool
	data []byte
}

// packed returns w's repacked form for this backend, packing it on first
// use, or nil when MatMul should read the row-major weight.
func (b *Backend) packed(w *kernels.Tensor) unsafe.Pointer {
	pw, ok := w.Dev.(*packedWeight)
	if !ok || pw.be != b {
		return nil
	}
	if !pw.done {
		pw.done = true
		n := int(C.sl_packed_bytes(b.c, C.int(w.Type), C.int(w.Rows), C.int(w.Cols)))
		if n > 0 {
			buf := make([]byte, n)
			if C.sl_pack(b.c, C.int(w.Type), bytep(w), C.int(w.Rows), C.int(w.Cols), unsafe.Pointer(&buf[0])) == C.SL_OK {
				pw.data = buf
			}
		}
	}
	if len(pw.data) == 0 {
		return nil
	}
	return unsafe.Pointer(&pw.data[0])
}

// PackedBytes is the size of the panel copy MatMul makes of a weight of
// type t and shape rows×cols on its first use (0 for types and kernel
// paths that read weights row by row).
func (b *Backend) PackedBytes(t quant.Type, rows, cols int) int64 {
	if b == nil || b.c == nil || rows <= 0 || cols <= 0 || rows > math.MaxInt32 || cols > math.MaxInt32 {
		return 0
	}
	return int64(C.sl_packed_bytes(b.c, C.int(t), C.int(rows), C.int(cols)))
}

// Free drops the tensor's storage (and a weight's packed form); the
// garbage collector reclaims it.
func (b *Backend) Free(t *kernels.Tensor) {
	if t != nil {
		t.Host = nil
		t.Dev = nil
	}
}

// Write copies src into the leading elements of an F32 tensor.
func (b *Backend) Write(dst *kernels.Tensor, src []float32) error {
	if err := checkF32(dst, "Write dst", 0, -1); err != nil {
		return err
	}
	d := dst.F32()
	if len(src) > len(d) {
		return fmt.Errorf("cpu: Write: %d values do not fit in %v", len(src), dst)
	}
	copy(d, src)
	return nil
}

// Read copies the leading len(dst) elements of an F32 tensor to dst.
func (b *Backend) Read(dst []float32, src *kernels.Tensor) error {
	if err := checkF32(src, "Read src", 0, -1); err != nil {
		return err
	}
	s := src.F32()
	if len(dst) > len(s) {
		return fmt.Errorf("cpu: Read: %d values requested from %v", len(dst), src)
	}
	copy(dst, s)
	return nil
}

// checkHost verifies that t is a well-formed host tensor.
func checkHost(t *kernels.Tensor, what string) error {
	if t == nil {
		return fmt.Errorf("cpu: %s is nil", what)
	}
	if t.Rows < 0 || t.Cols < 0 {
		return fmt.Errorf("cpu: %s has negative shape %v", what, t)
	}
	rb, err := quant.RowBytes(t.Type, t.Cols)
	if err != nil {
		return fmt.Errorf("cpu: %s %v: %w", what, t, err)
	}
	if t.Rows > 0 && t.Cols > 0 && (t.Host == nil || len(t.Host)/rb < t.Rows) {
		if t.Host == nil {
			return fmt.Errorf("cpu: %s %v has no host storage (freed, or from another backend)", what, t)
		}
		return fmt.Errorf("cpu: %s %v has %d bytes of storage, needs %d", what, t, len(t.Host), t.Rows*rb)
	}
	return nil
}

// checkF32 verifies an F32 host tensor with at least rows rows and, when
// cols ≥ 0, exactly cols columns.
func checkF32(t *kernels.Tensor, what string, rows, cols int) error {
	if err := checkHost(t, what); err != nil {
		return err
	}
	if t.Type != quant.F32 {
		return fmt.Errorf("cpu: %s must be F32, got %v", what, t)
	}
	if t.Rows < rows {
		return fmt.Errorf("cpu: %s %v has fewer than %d rows", what, t, rows)
	}
	if cols >= 0 && t.Cols != cols {
		return fmt.Errorf("cpu: %s %v must have %d columns", what, t, cols)
	}
	return nil
}

func f32p(t *kernels.Tensor) *C.float {
	if len(t.Host) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&t.Host[0]))
}

func bytep(t *kernels.Tensor) unsafe.Pointer {
	if len(t.Host) == 0 {
		return nil
	}
	return unsafe.Pointer(&t.Host[0])
}

func i32p(s []int32) *C.int32_t {
	if len(s) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&s[0]))
}

func cErr(op string, rc C.int) error {
	switch rc {
	case C.SL_OK:
		return nil
	case C.SL_ERR_TYPE:
		return fmt.Errorf("cpu: %s: unsupported type", op)
	case C.SL_ERR_NOMEM:
		return fmt.Errorf("cpu: %s: out of memory", op)
	default:
		return fmt.Errorf("cpu: %s: invalid arguments", op)
	}
}

// GetRows dequantizes the table rows named by ids into dst.
func (b *Backend) GetRows(dst, table *kernels.Tensor, ids []int32) error {
	if b.c == nil {
		return errClosed
	}
	if err := checkHost(table, "GetRows table"); err != nil {
		return err
	}
	if !isSupported(table.Type) {
		return fmt.Errorf("cpu: GetRows: table type %v is not supported", table.Type)
	}
	if err := checkF32(dst, "GetRows dst", len(ids), table.Cols); err != nil {
		return err
	}
	for i, id := range ids {
		if id < 0 || int(id) >= table.Rows {
			return fmt.Errorf("cpu: GetRows: ids[%d] = %d is out of range for %v", i, id, table)
		}
	}
	if len(ids) == 0 || table.Cols == 0 {
		return nil
	}
	return cErr("GetRows", C.sl_get_rows(b.c, C.int(table.Type), bytep(table), C.int(table.Cols), i32p(ids),
		C.int(len(ids)), f32p(dst)))
}

// MatMul computes dst = x·wᵀ over the first n rows.
func (b *Backend) MatMul(dst, x, w *kernels.Tensor, n int) error {
	if b.c == nil {
		return errClosed
	}
	if err := checkHost(w, "MatMul w"); err != nil {
		return err
	}
	if !isSupported(w.Type) {
		return fmt.Errorf("cpu: MatMul: weight type %v is not supported", w.Type)
	}
	if n < 0 {
		return fmt.Errorf("cpu: MatMul: negative n %d", n)
	}
	if err := checkF32(x, "MatMul x", n, w.Cols); err != nil {
		return err
	}
	if err := checkF32(dst, "MatMul dst", n, w.Rows); err != nil {
		return err
	}
	if n == 0 || w.Rows == 0 {
		return nil
	}
	if w.Cols == 0 {
		clear(dst.F32()[:n*dst.Cols])
		return nil
	}
	return cErr("MatMul", C.sl_matmul_packed(b.c, C.int(w.Type), bytep(w), b.packed(w), C.int(w.Rows), C.int(w.Cols),
		f32p(x), C.int(n), f32p(dst), C.int(dst.Cols)))
}

// RMSNorm normalizes the first n rows of x into dst and scales them by w.
func (b *Backend) RMSNorm(dst, x, w *kernels.Tensor, n int, eps float32) error {
	if b.c == nil {
		return errClosed
	}
	if n < 0 {
		return fmt.Errorf("cpu: RMSNorm: negative n %d", n)
	}
	if err := checkF32(x, "RMSNorm x", n, -1); err != nil {
		return err
	}
	if err := checkF32(dst, "RMSNorm dst", n, x.Cols); err != nil {
		return err
	}
	if err := checkF32(w, "RMSNorm w", 1, x.Cols); err != nil {
		return err
	}
	if n == 0 || x.Cols == 0 {
		return nil
	}
	return cErr("RMSNorm", C.sl_rmsnorm(b.c, f32p(dst), f32p(x), f32p(w), C.int(n), C.int(x.Cols), C.float(eps)))
}

// AddBias adds the row b to each of the first n rows of x.
func (b *Backend) AddBias(x, bias *kernels.Tensor, n int) error {
	if b.c == nil {
		return errClosed
	}
	if n < 0 {
		return fmt.Errorf("cpu: AddBias: negative n %d", n)
	}
	if err := checkF32(x, "AddBias x", n, -1); err != nil {
		return err
	}
	if err := checkF32(bias, "AddBias b", 1, x.Cols); err != nil {
		return err
	}
	if n == 0 || x.Cols == 0 {
		return nil
	}
	return cErr("AddBias", C.sl_add_bias(b.c, f32p(x), f32p(bias), C.int(n), C.int(x.Cols)))
}

// Add computes dst = a + bb over the first n rows.
func (b *Backend) Add(dst, a, bb *kernels.Tensor, n int) error {
	if b.c == nil {
		return errClosed
	}
	if n < 0 {
		return fmt.Errorf("cpu: Add: negative n %d", n)
	}
	if err := checkF32(a, "Add a", n, -1); err != nil {
		return err
	}
	if err := checkF32(bb, "Add b", n, a.Cols); err != nil {
		return err
	}
	if err := checkF32(dst, "Add dst", n, a.Cols); err != nil {
		return err
	}
	if n == 0 || a.Cols == 0 {
		return nil
	}
	return cErr("Add", C.sl_add(b.c, f32p(dst), f32p(a), f32p(bb), C.int(n), C.int(a.Cols)))
}

// Scale multiplies the first n rows of x by s in place.
func (b *Backend) Scale(x *kernels.Tensor, s float32, n int) error {
	if b.c == nil {
		return errClosed
	}
	if n < 0 {
		return fmt.Errorf("cpu: Scale: negative n %d", n)
	}
	if err := checkF32(x, "Scale x", n, -1); err != nil {
		return err
	}
	if n == 0 || x.Cols == 0 {
		return nil
	}
	return cErr("Scale", C.sl_scale(b.c, f32p(x), C.float(s), C.int(n), C.int(x.Cols)))
}

// SiLUMul computes dst = silu(gate) ⊙ up over the first n rows.
func (b *Backend) SiLUMul(dst, gate, up *kernels.Tensor, n int) error {
	if b.c == nil {
		return errClosed
	}
	if n < 0 {
		return fmt.Errorf("cpu: SiLUMul: negative n %d", n)
	}
	if err := checkF32(gate, "SiLUMul gate", n, -1); err != nil {
		return err
	}
	if err := checkF32(up, "SiLUMul up", n, gate.Cols); err != nil {
		return err
	}
	if err := checkF32(dst, "SiLUMul dst", n, gate.Cols); err != nil {
		return err
	}
	if n == 0 || gate.Cols == 0 {
		return nil
	}
	return cErr("SiLUMul", C.sl_silu_mul(b.c, f32p(dst), f32p(gate), f32p(up), C.int(n), C.int(gate.Cols)))
}

// Rope rotates every head of the first len(pos) rows of x in place.
// p.Dims = 0 means p.HeadDim and p.Scale = 0 means 1.
func (b *Backend) Rope(x *kernels.Tensor, pos []int32, p kernels.RopeParams) error {
	if b.c == nil {
		return errClosed
	}
	if err := checkF32(x, "Rope x", len(pos), -1); err != nil {
		return err
	}
	dims := p.Dims
	if dims == 0 {
		dims = p.HeadDim
	}
	switch {
	case p.HeadDim <= 0 || x.Cols%p.HeadDim != 0:
		return fmt.Errorf("cpu: Rope: head dim %d does not divide the %d columns of x", p.HeadDim, x.Cols)
	case dims <= 0 || dims > p.HeadDim || dims%2 != 0:
		return fmt.Errorf("cpu: Rope: rotated dims %d must be even and in (0, %d]", dims, p.HeadDim)
	case dims > 2048:
		return fmt.Errorf("cpu: Rope: rotated dims %d exceed 2048", dims)
	case !(p.Base > 0) || math.IsInf(float64(p.Base), 0):
		return fmt.Errorf("cpu: Rope: frequency base %v must be positive", p.Base)
	case p.Freqs != nil && len(p.Freqs) < dims/2:
		return fmt.Errorf("cpu: Rope: %d frequency factors, need %d", len(p.Freqs), dims/2)
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	if len(pos) == 0 {
		return nil
	}
	var freqs *C.float
	if p.Freqs != nil {
		freqs = (*C.float)(unsafe.Pointer(&p.Freqs[0]))
	}
	neox := 0
	if p.NeoX {
		neox = 1
	}
	return cErr("Rope", C.sl_rope(b.c, f32p(x), C.int(len(pos)), C.int(x.Cols), i32p(pos), C.int(p.HeadDim),
		C.int(dims), C.float(p.Base), C.float(scale), C.int(neox), freqs))
}

func checkCache(t *kernels.Tensor, what string) error {
	if err := checkHost(t, what); err != nil {
		return err
	}
	if t.Type != quant.F32 && t.Type != quant.F16 {
		return fmt.Errorf("cpu: %s must be F32 or F16, got %v", what, t)
	}
	return nil
}

// StoreKV writes k and v rows into the caches at the given slots.
func (b *Backend) StoreKV(kc, vc, k, v *kernels.Tensor, slots []int32) error {
	if b.c == nil {
		return errClosed
	}
	if err := checkCache(kc, "StoreKV k cache"); err != nil {
		return err
	}
	if err := checkCache(vc, "StoreKV v cache"); err != nil {
		return err
	}
	if kc.Type != vc.Type || kc.Cols != vc.Cols {
		return fmt.Errorf("cpu: StoreKV: caches %v and %v differ", kc, vc)
	}
	if err := checkF32(k, "StoreKV k", len(slots), kc.Cols); err != nil {
		return err
	}
	if err := checkF32(v, "StoreKV v", len(slots), kc.Cols); err != nil {
		return err
	}
	for i, s := range slots {
		if s < 0 || int(s) >= kc.Rows || int(s) >= vc.Rows {
			return fmt.Errorf("cpu: StoreKV: slots[%d] = %d is out of range for %v", i, s, kc)
		}
	}
	if len(slots) == 0 || kc.Cols == 0 {
		return nil
	}
	f16 := 0
	if kc.Type == quant.F16 {
		f16 = 1
	}
	return cErr("StoreKV", C.sl_store_kv(b.c, bytep(kc), bytep(vc), C.int(f16), f32p(k), f32p(v),
		C.int(len(slots)), C.int(kc.Cols), i32p(slots)))
}

// Attention computes causal attention of each token over its sequence's
// cached keys and values.
func (b *Backend) Attention(out, q, kc, vc *kernels.Tensor, ab *kernels.AttnBatch, p kernels.AttnParams) error {
	if b.c == nil {
		return errClosed
	}
	if ab == nil {
		return errors.New("cpu: Attention: nil batch")
	}
	n := len(ab.Pos)
	switch {
	case p.Heads <= 0 || p.KVHeads <= 0 || p.HeadDim <= 0:
		return fmt.Errorf("cpu: Attention: bad head geometry %+v", p)
	case p.Heads%p.KVHeads != 0:
		return fmt.Errorf("cpu: Attention: %d heads is not a multiple of %d KV heads", p.Heads, p.KVHeads)
	case p.HeadDim > 1024:
		return fmt.Errorf("cpu: Attention: head dim %d exceeds 1024", p.HeadDim)
	case len(ab.Seq) < n:
		return fmt.Errorf("cpu: Attention: %d sequence ids for %d tokens", len(ab.Seq), n)
	case ab.BlockSize <= 0 || ab.MaxBlocks <= 0:
		return fmt.Errorf("cpu: Attention: block size %d and max blocks %d must be positive", ab.BlockSize, ab.MaxBlocks)
	}
	if err := checkF32(q, "Attention q", n, p.Heads*p.HeadDim); err != nil {
		return err
	}
	if err := checkF32(out, "Attention out", n, p.Heads*p.HeadDim); err != nil {
		return err
	}
	if err := checkCache(kc, "Attention k cache"); err != nil {
		return err
	}
	if err := checkCache(vc, "Attention v cache"); err != nil {
		return err
	}
	if kc.Type != vc.Type || kc.Cols != p.KVHeads*p.HeadDim || vc.Cols != kc.Cols {
		return fmt.Errorf("cpu: Attention: caches %v and %v must both have %d columns and one type",
			kc, vc, p.KVHeads*p.HeadDim)
	}
	if n == 0 {
		return nil
	}
	numSeqs := len(ab.BlockTables) / ab.MaxBlocks
	rows := min(kc.Rows, vc.Rows)
	// The largest position per sequence bounds the block table entries read.
	if cap(b.seqMax) < numSeqs {
		b.seqMax = make([]int32, numSeqs)
	}
	seqMax := b.seqMax[:numSeqs]
	for i := range seqMax {
		seqMax[i] = -1
	}
	for i := 0; i < n; i++ {
		s, ps := ab.Seq[i], ab.Pos[i]
		if s < 0 || int(s) >= numSeqs {
			return fmt.Errorf("cpu: Attention: token %d has sequence %d, block tables hold %d", i, s, numSeqs)
		}
		if ps < 0 || int(ps)/ab.BlockSize >= ab.MaxBlocks {
			return fmt.Errorf("cpu: Attention: token %d position %d is outside %d blocks of %d", i, ps, ab.MaxBlocks, ab.BlockSize)
		}
		seqMax[s] = max(seqMax[s], ps)
	}
	for s, mp := range seqMax {
		if mp < 0 {
			continue
		}
		last := int(mp) / ab.BlockSize
		for blk := 0; blk <= last; blk++ {
			id := int(ab.BlockTables[s*ab.MaxBlocks+blk])
			used := ab.BlockSize
			if blk == last {
				used = int(mp)%ab.BlockSize + 1
			}
			if id < 0 || id*ab.BlockSize+used > rows {
				return fmt.Errorf("cpu: Attention: sequence %d block %d has id %d, outside the %d-row cache", s, blk, id, rows)
			}
		}
	}
	f16 := 0
	if kc.Type == quant.F16 {
		f16 = 1
	}
	return cErr("Attention", C.sl_attention(b.c, f32p(out), f32p(q), bytep(kc), bytep(vc), C.int(f16), C.int(n),
		i32p(ab.Pos), i32p(ab.Seq), i32p(ab.BlockTables), C.int(ab.MaxBlocks), C.int(ab.BlockSize),
		C.int(p.Heads), C.int(p.KVHeads), C.int(p.HeadDim), C.float(p.Scale)))
}

// Softmax normalizes each of the first n rows of x in place.
func (b *Backend) Softmax(x *kernels.Tensor, n int) error {
	if b.c == nil {
		return errClosed
	}
	if n < 0 {
		return fmt.Errorf("cpu: Softmax: negative n %d", n)
	}
	if err := checkF32(x, "Softmax x", n, -1); err != nil {
		return err
	}
	if n == 0 || x.Cols == 0 {
		return nil
	}
	return cErr("Softmax", C.sl_softmax(b.c, f32p(x), C.int(n), C.int(x.Cols)))
}

// Argmax writes the index of the largest element of each of the first
// len(dst) rows of x.
func (b *Backend) Argmax(dst []int32, x *kernels.Tensor) error {
	if b.c == nil {
		return errClosed
	}
	if err := checkF32(x, "Argmax x", len(dst), -1); err != nil {
		return err
	}
	if len(dst) == 0 {
		return nil
	}
	if x.Cols == 0 {
		return fmt.Errorf("cpu: Argmax: %v has no columns", x)
	}
	return cErr("Argmax", C.sl_argmax(b.c, i32p(dst), f32p(x), C.int(len(dst)), C.int(x.Cols)))
}
