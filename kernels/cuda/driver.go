package cuda

/*
#include <stdlib.h>
#include "dl.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// driver holds the CUDA driver API entry points, resolved once from libcuda
// through cuGetProcAddress (so the per-version symbol, e.g. cuMemAlloc_v2,
// is the one this code was written for).
type driver struct {
	init, driverVersion, deviceCount, deviceGet, deviceAttr, deviceName  unsafe.Pointer
	ctxRetain, ctxRelease, ctxSetCurrent, memGetInfo, memAlloc, memFree  unsafe.Pointer
	memsetD8, memcpyHtoD, memcpyDtoH, streamCreate, streamDestroy, sync  unsafe.Pointer
	moduleLoadData, moduleUnload, moduleGetFunction, launch, errorString unsafe.Pointer
}

// apiVersion is the CUDA API version whose symbol variants we request.
const apiVersion = 12000

// Device attributes (CUdevice_attribute).
const (
	attrSMCount  = 16
	attrCCMajor  = 75
	attrCCMinor  = 76
	errNoDevice  = 100
	errNoDriver  = 35 // CUDA_ERROR_INSUFFICIENT_DRIVER
	errNotInited = 3
)

func newDriver(l lib) (*driver, error) {
	v2 := 1
	gp, err := l.Sym("cuGetProcAddress_v2")
	if err != nil {
		v2 = 0
		if gp, err = l.Sym("cuGetProcAddress"); err != nil {
			return nil, fmt.Errorf("cuda: the NVIDIA driver is too old (no cuGetProcAddress; CUDA 12 needs driver 525 or newer): %w", err)
		}
	}
	var d driver
	for _, s := range []struct {
		p    *unsafe.Pointer
		name string
	}{
		{&d.init, "cuInit"}, {&d.driverVersion, "cuDriverGetVersion"}, {&d.deviceCount, "cuDeviceGetCount"},
		{&d.deviceGet, "cuDeviceGet"}, {&d.deviceAttr, "cuDeviceGetAttribute"}, {&d.deviceName, "cuDeviceGetName"},
		{&d.ctxRetain, "cuDevicePrimaryCtxRetain"}, {&d.ctxRelease, "cuDevicePrimaryCtxRelease"},
		{&d.ctxSetCurrent, "cuCtxSetCurrent"}, {&d.memGetInfo, "cuMemGetInfo"}, {&d.memAlloc, "cuMemAlloc"},
		{&d.memFree, "cuMemFree"}, {&d.memsetD8, "cuMemsetD8Async"}, {&d.memcpyHtoD, "cuMemcpyHtoDAsync"},
		{&d.memcpyDtoH, "cuMemcpyDtoHAsync"}, {&d.streamCreate, "cuStreamCreate"},
		{&d.streamDestroy, "cuStreamDestroy"}, {&d.sync, "cuStreamSynchronize"},
		{&d.moduleLoadData, "cuModuleLoadData"}, {&d.moduleUnload, "cuModuleUnload"},
		{&d.moduleGetFunction, "cuModuleGetFunction"}, {&d.launch, "cuLaunchKernel"},
		{&d.errorString, "cuGetErrorString"},
	} {
		cname := C.CString(s.name)
		rc := C.sl_cu_get_proc(gp, C.int(v2), cname, s.p, apiVersion)
		C.free(unsafe.Pointer(cname))
		if rc != 0 || *s.p == nil {
			return nil, fmt.Errorf("cuda: the NVIDIA driver lacks %s (error %d); update the driver", s.name, int(rc))
		}
	}
	return &d, nil
}

// check turns a CUresult into an error naming the call; nil on success.
func (d *driver) check(op string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	var s *C.char
	msg := "unknown error"
	if C.sl_cu_error_string(d.errorString, rc, &s) == 0 && s != nil {
		msg = C.GoString(s)
	}
	return &cuError{Op: op, Code: int(rc), Msg: msg}
}

// cuError is a failed driver call.
type cuError struct {
	Op   string
	Code int
	Msg  string
}

func (e *cuError) Error() string {
	return fmt.Sprintf("cuda: %s: %s (CUDA error %d)", e.Op, e.Msg, e.Code)
}

// deviceInfo describes the device a backend runs on.
type deviceInfo struct {
	Ordinal       int
	Name          string
	Major, Minor  int // compute capability
	SMs           int
	DriverVersion int // e.g. 12040 for 12.4
	FreeBytes     int64
	TotalBytes    int64
}

// Arch is the NVRTC architecture of the device, e.g. "sm_90".
func (i deviceInfo) Arch() string { return fmt.Sprintf("sm_%d%d", i.Major, i.Minor) }

// minDriver is the oldest driver API version the backend accepts: NVRTC
// 12 cubins need a CUDA 12 driver.
const minDriver = 12000

// openDevice initializes the driver and describes device ordinal, failing
// with a clear error when there is no usable device.
func (d *driver) openDevice(ordinal int) (deviceInfo, int32, error) {
	info := deviceInfo{Ordinal: ordinal}
	if rc := C.sl_cu_init(d.init, 0); rc != 0 {
		if rc == errNoDevice {
			return info, 0, fmt.Errorf("cuda: the NVIDIA driver is installed but finds no GPU")
		}
		return info, 0, d.check("cuInit (is the driver loaded and the GPU visible?)", rc)
	}
	var v, count C.int
	if err := d.check("cuDriverGetVersion", C.sl_cu_driver_version(d.driverVersion, &v)); err != nil {
		return info, 0, err
	}
	info.DriverVersion = int(v)
	if info.DriverVersion < minDriver {
		return info, 0, fmt.Errorf("cuda: the NVIDIA driver supports CUDA %d.%d; the backend needs 12.0 or newer",
			info.DriverVersion/1000, info.DriverVersion%1000/10)
	}
	if err := d.check("cuDeviceGetCount", C.sl_cu_device_count(d.deviceCount, &count)); err != nil {
		return info, 0, err
	}
	if ordinal < 0 || ordinal >= int(count) {
		return info, 0, fmt.Errorf("cuda: no GPU %d (this machine has %d)", ordinal, int(count))
	}
	var dev C.int
	if err := d.check("cuDeviceGet", C.sl_cu_device_get(d.deviceGet, &dev, C.int(ordinal))); err != nil {
		return info, 0, err
	}
	var maj, min, sms C.int
	var name [256]C.char
	for _, a := range []struct {
		p    *C.int
		attr int
	}{{&maj, attrCCMajor}, {&min, attrCCMinor}, {&sms, attrSMCount}} {
		if err := d.check("cuDeviceGetAttribute", C.sl_cu_device_attr(d.deviceAttr, a.p, C.int(a.attr), dev)); err != nil {
			return info, 0, err
		}
	}
	if err := d.check("cuDeviceGetName", C.sl_cu_device_name(d.deviceName, &name[0], C.int(len(name)), dev)); err != nil {
		return info, 0, err
	}
	info.Major, info.Minor, info.SMs, info.Name = int(maj), int(min), int(sms), C.GoString(&name[0])
	if info.Major < 8 {
		return info, 0, fmt.Errorf("cuda: %s has compute capability %d.%d; the backend needs 8.0 (Ampere) or newer",
			info.Name, info.Major, info.Minor)
	}
	return info, int32(dev), nil
}
