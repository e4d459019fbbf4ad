package cuda

/*
#include "dl.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/sluice-llm/sluice/kernels"
)

// weight checks a weight tensor of a supported type and returns its device
// address and kernel suffix.
func (b *Backend) weight(w *kernels.Tensor, what string) (C.sl_cu_devptr, string, error) {
	p, err := b.dev(w, what)
	if err != nil {
		return 0, "", err
	}
	s := weightSuffix(w.Type)
	if s == "" || w.Cols%32 != 0 {
		return 0, "", fmt.Errorf("cuda: %s: %v is not a supported weight (types %v, columns a multiple of 32)", what, w, supported)
	}
	return p, s, nil
}

// GetRows: dst(i,:) = dequantize(table(ids[i],:)).
func (b *Backend) GetRows(dst, table *kernels.Tensor, ids []int32) error {
	tp, sfx, err := b.weight(table, "GetRows table")
	if err != nil {
		return err
	}
	dp, err := b.f32(dst, "GetRows dst", len(ids), table.Cols)
	if err != nil {
		return err
	}
	for i, id := range ids {
		if id < 0 || int(id) >= table.Rows {
			return fmt.Errorf("cuda: GetRows: ids[%d] = %d is out of range for %v", i, id, table)
		}
	}
	if len(ids) == 0 || table.Cols == 0 {
		return nil
	}
	m, err := b.uploadMeta(ids)
	if err != nil {
		return err
	}
	b.args.reset().ptr(dp).ptr(tp).ptr(m[0]).i32(table.Cols).i64(int64(table.RowBytes()))
	return b.launch(getRowsNames[sfx], grid{X: len(ids), Y: 1, Z: 1, Threads: 128})
}

// MatMul: dst = x·wᵀ over the first n rows.
func (b *Backend) MatMul(dst, x, w *kernels.Tensor, n int) error {
	wp, sfx, err := b.weight(w, "MatMul w")
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("cuda: MatMul: negative n %d", n)
	}
	xp, err := b.f32(x, "MatMul x", n, w.Cols)
	if err != nil {
		return err
	}
	dp, err := b.f32(dst, "MatMul dst", n, w.Rows)
	if err != nil {
		return err
	}
	if n == 0 || w.Rows == 0 {
		return nil
	}
	prefix, g := matmulPlan(n, w.Rows)
	b.args.reset().ptr(dp).ptr(xp).ptr(wp).i32(w.Rows).i32(w.Cols).i32(n).i64(int64(w.RowBytes()))
	name := matvecNames[sfx]
	if prefix == "matmul_" {
		name = matmulNames[sfx]
	}
	return b.launch(name, g)
}

// RMSNorm: dst(i,:) = x(i,:)/sqrt(mean(x(i,:)²)+eps) ⊙ w.
func (b *Backend) RMSNorm(dst, x, w *kernels.Tensor, n int, eps float32) error {
	if n < 0 {
		return fmt.Errorf("cuda: RMSNorm: negative n %d", n)
	}
	xp, err := b.f32(x, "RMSNorm x", n, -1)
	if err != nil {
		return err
	}
	dp, err := b.f32(dst, "RMSNorm dst", n, x.Cols)
	if err != nil {
		return err
	}
	wp, err := b.f32(w, "RMSNorm w", 1, x.Cols)
	if err != nil {
		return err
	}
	if n == 0 || x.Cols == 0 {
		return nil
	}
	b.args.reset().ptr(dp).ptr(xp).ptr(wp).i32(x.Cols).f32(eps)
	return b.launch("rmsnorm", grid{X: n, Y: 1, Z: 1, Threads: 256})
}

// AddBias: x(i,:) += bias.
func (b *Backend) AddBias(x, bias *kernels.Tensor, n int) error {
	if n < 0 {
		return fmt.Errorf("cuda: AddBias: negative n %d", n)
	}
	xp, err := b.f32(x, "AddBias x", n, -1)
	if err != nil {
		return err
	}
	bp, err := b.f32(bias, "AddBias b", 1, x.Cols)
	if err != nil {
		return err
	}
	if n == 0 || x.Cols == 0 {
		return nil
	}
	total := n * x.Cols
	b.args.reset().ptr(xp).ptr(bp).i32(x.Cols).i64(int64(total))
	return b.launch("add_bias", elementwisePlan(total))
}

// Scale: x = s·x over the first n rows, in place.
func (b *Backend) Scale(x *kernels.Tensor, s float32, n int) error {
	if n < 0 {
		return fmt.Errorf("cuda: Scale: negative n %d", n)
	}
	xp, err := b.f32(x, "Scale x", n, -1)
	if err != nil {
		return err
	}
	if n == 0 || x.Cols == 0 {
		return nil
	}
	total := n * x.Cols
	b.args.reset().ptr(xp).f32(s).i64(int64(total))
	return b.launch("scale", elementwisePlan(total))
}

// Add: dst = a + bb over the first n rows.
func (b *Backend) Add(dst, a, bb *kernels.Tensor, n int) error {
	return b.binary("Add", "add", dst, a, bb, n)
}

// SiLUMul: dst = silu(gate) ⊙ up over the first n rows.
func (b *Backend) SiLUMul(dst, gate, up *kernels.Tensor, n int) error {
	return b.binary("SiLUMul", "silu_mul", dst, gate, up, n)
}

// binary runs add or silu_mul; the operand names are constants so that a
// successful call does not allocate.
func (b *Backend) binary(op, kernel string, dst, a, bb *kernels.Tensor, n int) error {
	if n < 0 {
		return fmt.Errorf("cuda: %s: negative n %d", op, n)
	}
	whatA, whatB, whatDst := "Add a", "Add b", "Add dst"
	if kernel == "silu_mul" {
		whatA, whatB, whatDst = "SiLUMul gate", "SiLUMul up", "SiLUMul dst"
	}
	ap, err := b.f32(a, whatA, n, -1)
	if err != nil {
		return err
	}
	bp, err := b.f32(bb, whatB, n, a.Cols)
	if err != nil {
		return err
	}
	dp, err := b.f32(dst, whatDst, n, a.Cols)
	if err != nil {
		return err
	}
	if n == 0 || a.Cols == 0 {
		return nil
	}
	total := n * a.Cols
	b.args.reset().ptr(dp).ptr(ap).ptr(bp).i64(int64(total))
	return b.launch(kernel, elementwisePlan(total))
}

// Rope rotates every head of the first len(pos) rows of x in place.
func (b *Backend) Rope(x *kernels.Tensor, pos []int32, p kernels.RopeParams) error {
	xp, err := b.f32(x, "Rope x", len(pos), -1)
	if err != nil {
		return err
	}
	dims := p.Dims
	if dims == 0 {
		dims = p.HeadDim
	}
	switch {
	case p.HeadDim <= 0 || x.Cols%p.HeadDim != 0:
		return fmt.Errorf("cuda: Rope: head dim %d does not divide the %d columns of x", p.HeadDim, x.Cols)
	case dims <= 0 || dims > p.HeadDim || dims%2 != 0:
		return fmt.Errorf("cuda: Rope: rotated dims %d must be even and in (0, %d]", dims, p.HeadDim)
	case !(p.Base > 0) || math.IsInf(float64(p.Base), 0):
		return fmt.Errorf("cuda: Rope: frequency base %v must be positive", p.Base)
	case p.Freqs != nil && len(p.Freqs) < dims/2:
		return fmt.Errorf("cuda: Rope: %d frequency factors, need %d", len(p.Freqs), dims/2)
	}
	scale := p.Scale
	if scale == 0 {
		scale = 1
	}
	if len(pos) == 0 {
		return nil
	}
	var freqs []int32 // the factors travel as raw bits with the positions
	if p.Freqs != nil {
		freqs = floatBits(p.Freqs[:dims/2])
	}
	m, err := b.uploadMeta(pos, freqs)
	if err != nil {
		return err
	}
	if freqs == nil {
		m[1] = 0
	}
	neox := 0
	if p.NeoX {
		neox = 1
	}
	// powf(base, -2.0f/dims) as the CPU backend computes it.
	theta := float32(math.Pow(float64(p.Base), float64(float32(-2)/float32(dims))))
	b.args.reset().ptr(xp).ptr(m[0]).ptr(m[1]).i32(x.Cols).i32(p.HeadDim).i32(dims).f32(theta).f32(scale).i32(neox)
	return b.launch("rope", ropePlan(len(pos), x.Cols/p.HeadDim, dims))
}

// Softmax normalizes each of the first n rows of x in place.
func (b *Backend) Softmax(x *kernels.Tensor, n int) error {
	if n < 0 {
		return fmt.Errorf("cuda: Softmax: negative n %d", n)
	}
	xp, err := b.f32(x, "Softmax x", n, -1)
	if err != nil {
		return err
	}
	if n == 0 || x.Cols == 0 {
		return nil
	}
	b.args.reset().ptr(xp).i32(x.Cols)
	return b.launch("softmax", grid{X: n, Y: 1, Z: 1, Threads: 256})
}

// Argmax writes the index of each of the first len(dst) rows' largest
// element (ties: lowest index). It waits for the result.
func (b *Backend) Argmax(dst []int32, x *kernels.Tensor) error {
	xp, err := b.f32(x, "Argmax x", len(dst), -1)
	if err != nil {
		return err
	}
	if len(dst) == 0 {
		return nil
	}
	if x.Cols == 0 {
		return fmt.Errorf("cuda: Argmax: %v has no columns", x)
	}
	if err := b.grow(&b.part, int64(4*len(dst))); err != nil {
		return err
	}
	b.args.reset().ptr(b.part.ptr).ptr(xp).i32(x.Cols)
	if err := b.launch("argmax", grid{X: len(dst), Y: 1, Z: 1, Threads: 256}); err != nil {
		return err
	}
	return b.copyOut(dst, b.part.ptr)
}

// getRowsNames, matvecNames and matmulNames map a weight suffix to its
// kernel, built once so that ops do not build strings.
var getRowsNames, matvecNames, matmulNames = names("get_rows_"), names("matvec_"), names("matmul_")

func names(prefix string) map[string]string {
	m := map[string]string{}
	for _, w := range weightNames {
		m[w] = prefix + w
	}
	return m
}

// floatBits views float32 values as their int32 bit patterns (no copy).
func floatBits(f []float32) []int32 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*int32)(unsafe.Pointer(&f[0])), len(f))
}

// copyOut copies len(dst) int32s from device address src and waits.
func (b *Backend) copyOut(dst []int32, src C.sl_cu_devptr) error {
	rc := C.sl_cu_memcpy_dtoh(b.drv.memcpyDtoH, unsafe.Pointer(&dst[0]), src, C.size_t(4*len(dst)), b.strm)
	if err := b.drv.check("copying from the GPU", rc); err != nil {
		return err
	}
	return b.drv.check("cuStreamSynchronize", C.sl_cu_stream_sync(b.drv.sync, b.strm))
}
