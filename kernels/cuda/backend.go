package cuda

/*
#include <stdlib.h>
#include "dl.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

// Backend is the CUDA implementation of kernels.Backend.
type Backend struct {
	libs   *libs
	drv    *driver
	nv     *nvrtc
	info   deviceInfo
	devOrd int32
	ctx    unsafe.Pointer
	strm   unsafe.Pointer
	cache  string // kernel cache directory; "" disables it

	nvMajor, nvMinor int
	mods             map[string]unsafe.Pointer // module file → CUmodule
	fns              map[string]unsafe.Pointer // kernel name → CUfunction
	args             *launchArgs

	meta    devBuf  // device copy of per-op int32 metadata
	stage   []int32 // host staging for meta (C memory, metaCap entries)
	part    devBuf  // attention split-K partial outputs
	tiles   []int32 // host scratch: prefill tiles
	allocs  map[C.sl_cu_devptr]int64
	devUsed int64
}

var (
	_ kernels.Backend      = (*Backend)(nil)
	_ kernels.DeviceMemory = (*Backend)(nil)
)

// devBuf is a device allocation; Tensor.Dev holds a *devBuf.
type devBuf struct {
	ptr  C.sl_cu_devptr
	size int64
}

var errClosed = errors.New("cuda: backend is closed")

// New opens the libraries, the device opts.Device and a stream. Kernels
// are compiled (or loaded from the cache) when first used.
func New(opts kernels.Options) (*Backend, error) {
	return newWith(dlOpen, opts)
}

// maxThreads bounds Options.Threads as the CPU backend does; the CUDA
// backend runs its host side on the caller's thread.
const maxThreads = 1024

// checkOptions refuses options that do not apply to a GPU backend.
func checkOptions(opts kernels.Options) error {
	switch {
	case opts.Path != "":
		return fmt.Errorf("cuda: kernel path %q is an option of the CPU backend", opts.Path)
	case opts.Threads > maxThreads:
		return fmt.Errorf("cuda: %d threads is too many (at most %d)", opts.Threads, maxThreads)
	case opts.Device < 0:
		return fmt.Errorf("cuda: negative GPU ordinal %d", opts.Device)
	}
	return nil
}

func newWith(open opener, opts kernels.Options) (_ *Backend, err error) {
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	l, err := loadLibs(open)
	if err != nil {
		return nil, err
	}
	b := &Backend{libs: l, cache: cacheDir(), mods: map[string]unsafe.Pointer{}, fns: map[string]unsafe.Pointer{},
		allocs: map[C.sl_cu_devptr]int64{}}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	if b.drv, err = newDriver(l.driver); err != nil {
		return nil, err
	}
	if b.nv, err = newNVRTC(l.nvrtc); err != nil {
		return nil, err
	}
	if b.nvMajor, b.nvMinor, err = b.nv.Version(); err != nil {
		return nil, err
	}
	if b.info, b.devOrd, err = b.drv.openDevice(opts.Device); err != nil {
		return nil, err
	}
	if err = b.drv.check("cuDevicePrimaryCtxRetain", C.sl_cu_primary_ctx_retain(b.drv.ctxRetain, &b.ctx, C.int(b.devOrd))); err != nil {
		return nil, err
	}
	if err = b.setCurrent(); err != nil {
		return nil, err
	}
	if err = b.drv.check("cuStreamCreate", C.sl_cu_stream_create(b.drv.streamCreate, &b.strm, 0)); err != nil {
		return nil, err
	}
	var free, total C.size_t
	if err = b.drv.check("cuMemGetInfo", C.sl_cu_mem_get_info(b.drv.memGetInfo, &free, &total)); err != nil {
		return nil, err
	}
	b.info.FreeBytes, b.info.TotalBytes = int64(free), int64(total)
	b.args = newLaunchArgs()
	return b, nil
}

// setCurrent binds the backend's context to the calling OS thread. The
// engine drives a backend from one goroutine, which may move between
// threads, so every entry point that calls the driver binds it first.
func (b *Backend) setCurrent() error {
	return b.drv.check("cuCtxSetCurrent", C.sl_cu_ctx_set_current(b.drv.ctxSetCurrent, b.ctx))
}

// Name returns "cuda".
func (b *Backend) Name() string { return "cuda" }

// Device describes the GPU: name, compute capability and memory.
func (b *Backend) Device() string {
	return fmt.Sprintf("%s (%s, %d SMs, %.1f of %.1f GiB free, driver %d.%d)", b.info.Name, b.info.Arch(), b.info.SMs,
		float64(b.info.FreeBytes)/(1<<30), float64(b.info.TotalBytes)/(1<<30),
		b.info.DriverVersion/1000, b.info.DriverVersion%1000/10)
}

// FreeDeviceMemory returns the device's free memory at creation and in
// total, in bytes: the engine's memory plan sizes the KV pool from it.
func (b *Backend) FreeDeviceMemory() (free, total int64) { return b.info.FreeBytes, b.info.TotalBytes }

// DeviceName names the GPU, e.g. "GPU 0 (NVIDIA H200, sm_90)".
func (b *Backend) DeviceName() string {
	return fmt.Sprintf("GPU %d (%s, %s)", b.info.Ordinal, b.info.Name, b.info.Arch())
}

// supported lists the weight formats the kernels read (quant.cuh).
var supported = []quant.Type{
	quant.F32, quant.F16, quant.BF16, quant.Q8_0, quant.Q4_0, quant.Q5_0, quant.Q4_K, quant.Q5_K, quant.Q6_K,
	quant.Q4_1, quant.Q5_1, quant.Q2_K, quant.Q3_K,
}

// SupportedWeights lists the weight types MatMul and GetRows accept.
func (b *Backend) SupportedWeights() []quant.Type { return append([]quant.Type(nil), supported...) }

// weightSuffix is the kernel name suffix of a weight type ("" if none).
func weightSuffix(t quant.Type) string {
	for i, s := range supported {
		if s == t {
			return weightNames[i]
		}
	}
	return ""
}

// Close frees every device allocation, the modules, the stream and the
// context reference, then unloads the libraries. Closing twice is allowed.
func (b *Backend) Close() error {
	if b == nil || b.libs == nil {
		return nil
	}
	if b.drv != nil && b.ctx != nil {
		b.setCurrent()
		if b.strm != nil {
			C.sl_cu_stream_sync(b.drv.sync, b.strm)
		}
		for p := range b.allocs {
			C.sl_cu_mem_free(b.drv.memFree, p)
		}
		for _, m := range b.mods {
			C.sl_cu_module_unload(b.drv.moduleUnload, m)
		}
		if b.strm != nil {
			C.sl_cu_stream_destroy(b.drv.streamDestroy, b.strm)
		}
		C.sl_cu_primary_ctx_release(b.drv.ctxRelease, C.int(b.devOrd))
	}
	if b.args != nil {
		b.args.free()
	}
	if b.stage != nil {
		C.free(unsafe.Pointer(&b.stage[0]))
	}
	b.libs.close()
	*b = Backend{}
	return nil
}
