package cuda

/*
#include <stdlib.h>
#include "dl.h"
*/
import "C"

import (
	"unsafe"

	"github.com/sluice-llm/sluice/kernels"
)

// The fake driver of dl.c, for the package's tests: a Backend whose device
// memory is host memory and whose launches are recorded instead of run,
// so the host side (argument packing, launch shapes, metadata uploads,
// allocation per step) is tested without a GPU.

// fakeLaunch is one recorded cuLaunchKernel.
type fakeLaunch struct {
	Kernel  string
	Grid    [3]int
	Threads int
	Args    [maxArgs]uint64
}

// newFakeBackend returns a Backend over the fake driver for a device with
// sms multiprocessors. Every kernel resolves to a distinct fake handle.
func newFakeBackend(sms int) *Backend {
	var fns [9]unsafe.Pointer
	C.sl_fake_driver(&fns[0], C.int(len(fns)))
	okU, okP, alloc, free, memset, htod, dtoh, launch, errStr := fns[0], fns[1], fns[2], fns[3], fns[4], fns[5], fns[6], fns[7], fns[8]
	d := &driver{
		init: okU, ctxSetCurrent: okP, sync: okP, streamDestroy: okP, moduleUnload: okP, ctxRelease: okU,
		memAlloc: alloc, memFree: free, memsetD8: memset, memcpyHtoD: htod, memcpyDtoH: dtoh,
		launch: launch, errorString: errStr,
	}
	b := &Backend{libs: &libs{}, drv: d, info: deviceInfo{Name: "fake", Major: 9, SMs: sms, DriverVersion: 12040},
		mods: map[string]unsafe.Pointer{}, fns: map[string]unsafe.Pointer{}, allocs: map[C.sl_cu_devptr]int64{},
		args: newLaunchArgs()}
	// Distinct handles: addresses inside one C allocation (never freed: a
	// few bytes per test backend).
	handles := C.malloc(1024)
	b.ctx = handles // any non-nil C pointer: the fake context
	n := 1
	for _, m := range modules {
		for _, k := range m.Kernels {
			b.fns[k] = unsafe.Add(handles, n)
			n++
		}
	}
	C.sl_fake_reset()
	return b
}

// fakeLaunches returns the launches recorded since the last reset and
// resets the log (at most the last 64).
func (b *Backend) fakeLaunches() []fakeLaunch {
	names := map[unsafe.Pointer]string{}
	for k, f := range b.fns {
		names[f] = k
	}
	n := int(C.sl_fake_launch_count())
	var out []fakeLaunch
	for i := max(0, n-64); i < n; i++ {
		l := C.sl_fake_launch_at(C.int(i))
		fl := fakeLaunch{Kernel: names[l.fn], Grid: [3]int{int(l.grid[0]), int(l.grid[1]), int(l.grid[2])}, Threads: int(l.block)}
		for k := range fl.Args {
			fl.Args[k] = uint64(l.args[k])
		}
		out = append(out, fl)
	}
	C.sl_fake_reset()
	return out
}

// fakeLiveAllocs is the number of fake device allocations not yet freed.
func fakeLiveAllocs() int { return int(C.sl_fake_live_allocs()) }

// devAddr is a tensor's device address (for checking launch arguments).
func devAddr(t *kernels.Tensor) uint64 { return uint64(t.Dev.(*devBuf).ptr) }

// fakeRead reads n int32s at a fake device address.
func (b *Backend) fakeRead(addr uint64, n int) []int32 {
	out := make([]int32, n)
	if err := b.copyOut(out, C.sl_cu_devptr(addr)); err != nil {
		panic(err)
	}
	return out
}
