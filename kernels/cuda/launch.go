package cuda

/*
#include <stdlib.h>
#include "dl.h"
*/
import "C"

import (
	"fmt"
	"math"
	"unsafe"
)

// maxArgs is the most parameters a kernel takes.
const maxArgs = 16

// launchArgs is the parameter block of one cuLaunchKernel call, in C memory
// so the driver may read it: vals holds each argument in an 8-byte slot and
// ptrs[k] = &vals[k]. Reused by every launch (no allocation per op).
type launchArgs struct {
	vals *[maxArgs]uint64
	ptrs *[maxArgs]unsafe.Pointer
	n    int
}

func newLaunchArgs() *launchArgs {
	a := &launchArgs{
		vals: (*[maxArgs]uint64)(C.calloc(maxArgs, 8)),
		ptrs: (*[maxArgs]unsafe.Pointer)(C.calloc(maxArgs, C.size_t(unsafe.Sizeof(unsafe.Pointer(nil))))),
	}
	for k := range a.ptrs {
		a.ptrs[k] = unsafe.Pointer(&a.vals[k])
	}
	return a
}

func (a *launchArgs) free() {
	C.free(unsafe.Pointer(a.vals))
	C.free(unsafe.Pointer(a.ptrs))
}

func (a *launchArgs) reset() *launchArgs { a.n = 0; return a }

// ptr, i32, i64 and f32 append one argument of the kernel's C type.
func (a *launchArgs) ptr(p C.sl_cu_devptr) *launchArgs { a.vals[a.n] = uint64(p); a.n++; return a }
func (a *launchArgs) i64(v int64) *launchArgs          { a.vals[a.n] = uint64(v); a.n++; return a }
func (a *launchArgs) i32(v int) *launchArgs {
	a.vals[a.n] = uint64(uint32(int32(v)))
	a.n++
	return a
}
func (a *launchArgs) f32(v float32) *launchArgs {
	a.vals[a.n] = uint64(math.Float32bits(v))
	a.n++
	return a
}

// grid is a launch shape: blocks in x, y, z and threads per block.
type grid struct {
	X, Y, Z, Threads int
}

// fn returns the named kernel, compiling or loading its module on first use.
func (b *Backend) fn(name string) (unsafe.Pointer, error) {
	if f, ok := b.fns[name]; ok {
		return f, nil
	}
	for _, m := range modules {
		for _, k := range m.Kernels {
			if k == name {
				if err := b.loadModule(m); err != nil {
					return nil, err
				}
				return b.fns[name], nil
			}
		}
	}
	return nil, fmt.Errorf("cuda: no kernel %q", name)
}

// loadModule loads a module's image (from the cache, else compiled by
// NVRTC and cached) and resolves all its kernels.
func (b *Backend) loadModule(m module) error {
	src, err := m.Source()
	if err != nil {
		return err
	}
	arch := b.info.Arch()
	key := cacheKey(m.File, src, arch, b.nvMajor, b.nvMinor, b.info.DriverVersion)
	image := readCache(b.cache, key)
	if image == nil {
		out, err := b.nv.Compile(src, m.File, arch, false)
		if err != nil {
			return err
		}
		image = out.Image
		_ = writeCache(b.cache, key, image) // the cache only saves time
	}
	cimg := C.CBytes(image)
	defer C.free(cimg)
	var mod unsafe.Pointer
	if err := b.drv.check("cuModuleLoadData "+m.File, C.sl_cu_module_load_data(b.drv.moduleLoadData, &mod, cimg)); err != nil {
		return err
	}
	b.mods[m.File] = mod
	for _, k := range m.Kernels {
		var f unsafe.Pointer
		ck := C.CString(k)
		rc := C.sl_cu_module_get_function(b.drv.moduleGetFunction, &f, mod, ck)
		C.free(unsafe.Pointer(ck))
		if err := b.drv.check("cuModuleGetFunction "+k, rc); err != nil {
			return err
		}
		b.fns[k] = f
	}
	return nil
}

// launch runs kernel name with the arguments in b.args on the stream.
func (b *Backend) launch(name string, g grid) error {
	f, err := b.fn(name)
	if err != nil {
		return err
	}
	if g.X <= 0 || g.Y <= 0 || g.Z <= 0 || g.X > math.MaxInt32 || g.Y > 65535 || g.Z > 65535 {
		return fmt.Errorf("cuda: %s: grid %d×%d×%d is out of range", name, g.X, g.Y, g.Z)
	}
	rc := C.sl_cu_launch(b.drv.launch, f, C.uint(g.X), C.uint(g.Y), C.uint(g.Z), C.uint(g.Threads), 1, 1, 0, b.strm,
		&b.args.ptrs[0])
	if rc != 0 { // the message is built only on failure: launches do not allocate
		return b.drv.check("launching "+name, rc)
	}
	return nil
}

// alloc allocates n device bytes (at least 1), tracked for Close.
func (b *Backend) alloc(n int64) (*devBuf, error) {
	if n < 1 {
		n = 1
	}
	var p C.sl_cu_devptr
	if err := b.drv.check(fmt.Sprintf("cuMemAlloc(%d bytes)", n), C.sl_cu_mem_alloc(b.drv.memAlloc, &p, C.size_t(n))); err != nil {
		return nil, err
	}
	b.allocs[p] = n
	b.devUsed += n
	return &devBuf{ptr: p, size: n}, nil
}

// release frees a device allocation after pending work that may use it.
func (b *Backend) release(d *devBuf) {
	if d == nil || d.ptr == 0 {
		return
	}
	if _, ok := b.allocs[d.ptr]; ok {
		C.sl_cu_stream_sync(b.drv.sync, b.strm)
		C.sl_cu_mem_free(b.drv.memFree, d.ptr)
		delete(b.allocs, d.ptr)
		b.devUsed -= d.size
	}
	*d = devBuf{}
}

// grow makes d hold at least n bytes, reallocating (contents lost) when
// it is smaller. Growth is geometric so steady-state steps do not allocate.
func (b *Backend) grow(d *devBuf, n int64) error {
	if d.size >= n {
		return nil
	}
	b.release(d)
	nd, err := b.alloc(max(n, 2*d.size, 1<<16))
	if err != nil {
		return err
	}
	*d = *nd
	return nil
}

// uploadMeta copies int32 metadata arrays into the device meta buffer, one
// after another, and returns their device addresses. The host side is
// staged in C memory; the copy is queued on the stream, so a later op's
// upload cannot overwrite data an earlier kernel still reads.
func (b *Backend) uploadMeta(parts ...[]int32) ([4]C.sl_cu_devptr, error) {
	var out [4]C.sl_cu_devptr
	total := 0
	for _, p := range parts {
		total += (len(p) + 63) &^ 63 // 256-byte aligned parts
	}
	if err := b.growStage(total); err != nil {
		return out, err
	}
	if err := b.grow(&b.meta, int64(4*total)); err != nil {
		return out, err
	}
	off := 0
	for i, p := range parts {
		copy(b.stage[off:], p)
		out[i] = b.meta.ptr + C.sl_cu_devptr(4*off)
		off += (len(p) + 63) &^ 63
	}
	rc := C.sl_cu_memcpy_htod(b.drv.memcpyHtoD, b.meta.ptr, unsafe.Pointer(&b.stage[0]), C.size_t(4*total), b.strm)
	return out, b.drv.check("copying metadata to the GPU", rc)
}

// growStage makes the C staging buffer hold n int32s. It waits for the
// stream first: a queued copy may still read the old buffer.
func (b *Backend) growStage(n int) error {
	if len(b.stage) >= n {
		return nil
	}
	if err := b.drv.check("cuStreamSynchronize", C.sl_cu_stream_sync(b.drv.sync, b.strm)); err != nil {
		return err
	}
	if b.stage != nil {
		C.free(unsafe.Pointer(&b.stage[0]))
	}
	n = max(n, 2*len(b.stage), 1<<14)
	p := C.malloc(C.size_t(4 * n))
	if p == nil {
		b.stage = nil
		return fmt.Errorf("cuda: out of host memory for %d metadata entries", n)
	}
	b.stage = unsafe.Slice((*int32)(p), n)
	return nil
}
