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
	"github.com/sluice-llm/sluice/quant"
)

func tensorBytes(t quant.Type, rows, cols int) (int64, error) {
	if rows < 0 || cols < 0 {
		return 0, fmt.Errorf("negative shape %d×%d", rows, cols)
	}
	rb, err := quant.RowBytes(t, cols)
	if err != nil {
		return 0, err
	}
	if cols > math.MaxInt32 || rows > math.MaxInt32 || (rb > 0 && rows > math.MaxInt64/rb) {
		return 0, fmt.Errorf("shape %d×%d is too large", rows, cols)
	}
	return int64(rows) * int64(rb), nil
}

// NewTensor allocates a zeroed device tensor.
func (b *Backend) NewTensor(t quant.Type, rows, cols int) (*kernels.Tensor, error) {
	if b.libs == nil {
		return nil, errClosed
	}
	if t != quant.F32 && t != quant.F16 {
		return nil, fmt.Errorf("cuda: NewTensor: type %v is not supported (F32 activations, F32 or F16 caches)", t)
	}
	n, err := tensorBytes(t, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("cuda: NewTensor %v: %w", t, err)
	}
	if err := b.setCurrent(); err != nil {
		return nil, err
	}
	d, err := b.alloc(n)
	if err != nil {
		return nil, err
	}
	rc := C.sl_cu_memset_d8(b.drv.memsetD8, d.ptr, 0, C.size_t(d.size), b.strm)
	if err := b.drv.check("cuMemsetD8", rc); err != nil {
		b.release(d)
		return nil, err
	}
	return &kernels.Tensor{Type: t, Rows: rows, Cols: cols, Dev: d}, nil
}

// Weight uploads weight data to the device. MatMul and GetRows read rows in
// 32-element chunks and refuse F32/F16/BF16 weights whose columns are not
// a multiple of 32; norms and biases may have any width.
func (b *Backend) Weight(t quant.Type, rows, cols int, data []byte) (*kernels.Tensor, error) {
	if b.libs == nil {
		return nil, errClosed
	}
	if weightSuffix(t) == "" {
		return nil, fmt.Errorf("cuda: weight type %v is not supported (supported: %v)", t, supported)
	}
	n, err := tensorBytes(t, rows, cols)
	if err != nil {
		return nil, fmt.Errorf("cuda: Weight %v: %w", t, err)
	}
	if int64(len(data)) < n {
		return nil, fmt.Errorf("cuda: Weight %v(%d×%d) needs %d bytes, got %d", t, rows, cols, n, len(data))
	}
	if err := b.setCurrent(); err != nil {
		return nil, err
	}
	d, err := b.alloc(n)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		if err := b.copyIn(d.ptr, unsafe.Pointer(&data[0]), n); err != nil {
			b.release(d)
			return nil, err
		}
	}
	return &kernels.Tensor{Type: t, Rows: rows, Cols: cols, Dev: d}, nil
}

// copyIn copies n host bytes to the device and waits for the copy, so the
// host memory is free to change when it returns.
func (b *Backend) copyIn(dst C.sl_cu_devptr, src unsafe.Pointer, n int64) error {
	rc := C.sl_cu_memcpy_htod(b.drv.memcpyHtoD, dst, src, C.size_t(n), b.strm)
	if err := b.drv.check("copying to the GPU", rc); err != nil {
		return err
	}
	return b.drv.check("cuStreamSynchronize", C.sl_cu_stream_sync(b.drv.sync, b.strm))
}

// Free releases a tensor's device memory (after pending work on it).
func (b *Backend) Free(t *kernels.Tensor) {
	if t == nil || b.libs == nil {
		return
	}
	if d, ok := t.Dev.(*devBuf); ok && b.setCurrent() == nil {
		b.release(d)
	}
	t.Dev = nil
}

// Write copies src into the leading elements of an F32 tensor.
func (b *Backend) Write(dst *kernels.Tensor, src []float32) error {
	d, err := b.f32(dst, "Write dst", 0, -1)
	if err != nil {
		return err
	}
	if len(src) > dst.Rows*dst.Cols {
		return fmt.Errorf("cuda: Write: %d values do not fit in %v", len(src), dst)
	}
	if len(src) == 0 {
		return nil
	}
	return b.copyIn(d, unsafe.Pointer(&src[0]), int64(4*len(src)))
}

// Read waits for pending work and copies an F32 tensor's leading len(dst)
// elements to the host.
func (b *Backend) Read(dst []float32, src *kernels.Tensor) error {
	s, err := b.f32(src, "Read src", 0, -1)
	if err != nil {
		return err
	}
	if len(dst) > src.Rows*src.Cols {
		return fmt.Errorf("cuda: Read: %d values requested from %v", len(dst), src)
	}
	if len(dst) == 0 {
		return b.drv.check("cuStreamSynchronize", C.sl_cu_stream_sync(b.drv.sync, b.strm))
	}
	rc := C.sl_cu_memcpy_dtoh(b.drv.memcpyDtoH, unsafe.Pointer(&dst[0]), s, C.size_t(4*len(dst)), b.strm)
	if err := b.drv.check("copying from the GPU", rc); err != nil {
		return err
	}
	return b.drv.check("cuStreamSynchronize", C.sl_cu_stream_sync(b.drv.sync, b.strm))
}

// dev checks that t is a live tensor of this backend with storage for its
// shape, binds the context, and returns its device address.
func (b *Backend) dev(t *kernels.Tensor, what string) (C.sl_cu_devptr, error) {
	if b.libs == nil {
		return 0, errClosed
	}
	if t == nil {
		return 0, fmt.Errorf("cuda: %s is nil", what)
	}
	d, ok := t.Dev.(*devBuf)
	if !ok || d == nil || d.ptr == 0 {
		return 0, fmt.Errorf("cuda: %s %v has no device storage (freed, or from another backend)", what, t)
	}
	if _, mine := b.allocs[d.ptr]; !mine {
		return 0, fmt.Errorf("cuda: %s %v belongs to another backend", what, t)
	}
	n, err := tensorBytes(t.Type, t.Rows, t.Cols)
	if err != nil {
		return 0, fmt.Errorf("cuda: %s %v: %w", what, t, err)
	}
	if n > d.size {
		return 0, fmt.Errorf("cuda: %s %v has %d bytes of storage, needs %d", what, t, d.size, n)
	}
	return d.ptr, b.setCurrent()
}

// f32 is dev for an F32 tensor with at least rows rows and, when cols ≥ 0,
// exactly cols columns.
func (b *Backend) f32(t *kernels.Tensor, what string, rows, cols int) (C.sl_cu_devptr, error) {
	p, err := b.dev(t, what)
	if err != nil {
		return 0, err
	}
	switch {
	case t.Type != quant.F32:
		return 0, fmt.Errorf("cuda: %s must be F32, got %v", what, t)
	case t.Rows < rows:
		return 0, fmt.Errorf("cuda: %s %v has fewer than %d rows", what, t, rows)
	case cols >= 0 && t.Cols != cols:
		return 0, fmt.Errorf("cuda: %s %v must have %d columns", what, t, cols)
	}
	return p, nil
}
