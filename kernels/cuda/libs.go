package cuda

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "dl.h"
*/
import "C"

import (
	"fmt"
	"os"
	"strings"
	"unsafe"
)

// lib is an open shared library. Sym resolves a symbol or returns an error
// naming it; Close unloads the library.
type lib interface {
	Sym(name string) (unsafe.Pointer, error)
	Close()
}

// opener opens a shared library by file name or path. The real one is
// dlopen; tests replace it to fake missing or present libraries.
type opener func(name string) (lib, error)

type dlLib struct {
	h    unsafe.Pointer
	name string
}

const errBufLen = 512

func dlOpen(name string) (lib, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var buf [errBufLen]C.char
	h := C.sl_dlopen(cname, &buf[0], errBufLen)
	if h == nil {
		return nil, fmt.Errorf("%s", C.GoString(&buf[0]))
	}
	return &dlLib{h: h, name: name}, nil
}

func (l *dlLib) Sym(name string) (unsafe.Pointer, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var buf [errBufLen]C.char
	p := C.sl_dlsym(l.h, cname, &buf[0], errBufLen)
	if p == nil {
		return nil, fmt.Errorf("%s: symbol %s not found: %s", l.name, name, C.GoString(&buf[0]))
	}
	return p, nil
}

func (l *dlLib) Close() { C.sl_dlclose(l.h) }

// Library names, newest first.
var (
	driverNames   = []string{"libcuda.so.1"}
	nvrtcNames    = []string{"libnvrtc.so.13", "libnvrtc.so.12"}
	cublasLtNames = []string{"libcublasLt.so.13", "libcublasLt.so.12"}
)

// EnvNVRTC names the environment variable holding a path to libnvrtc, tried
// before the standard names (for example the pip wheel nvidia-cuda-nvrtc-cu12's
// site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12).
const EnvNVRTC = "SLUICE_NVRTC"

// openFirst opens the first of names that loads. The error names every
// library tried, what it is for, and the last loader message.
func openFirst(open opener, what, hint string, names []string) (lib, string, error) {
	var last error
	for _, n := range names {
		l, err := open(n)
		if err == nil {
			return l, n, nil
		}
		last = err
	}
	return nil, "", fmt.Errorf("cuda: cannot load %s (tried %s): %v; %s",
		what, strings.Join(names, ", "), last, hint)
}

// libs are the shared libraries the backend runs on. cublasLt is optional
// (nil when absent): kernels of our own cover every GEMM without it.
type libs struct {
	driver, nvrtc, cublasLt lib
	nvrtcName               string
}

func (l *libs) close() {
	for _, x := range []lib{l.cublasLt, l.nvrtc, l.driver} {
		if x != nil {
			x.Close()
		}
	}
}

const (
	driverHint = "the NVIDIA driver is not installed or not on the loader path (no GPU on this machine?)"
	nvrtcHint  = "install the CUDA runtime compiler (for example `pip install nvidia-cuda-nvrtc-cu12`) " +
		"and add its lib directory to LD_LIBRARY_PATH, or set " + EnvNVRTC + " to the library's path"
)

// loadDriver opens libcuda.
func loadDriver(open opener) (lib, error) {
	l, _, err := openFirst(open, "the CUDA driver library", driverHint, driverNames)
	return l, err
}

// loadNVRTC opens NVRTC: $SLUICE_NVRTC when set (and then only it), else the
// standard names.
func loadNVRTC(open opener) (lib, string, error) {
	names := nvrtcNames
	if p := strings.TrimSpace(os.Getenv(EnvNVRTC)); p != "" {
		names = []string{p}
	}
	return openFirst(open, "NVRTC, the CUDA runtime compiler", nvrtcHint, names)
}

// loadLibs opens the driver, then NVRTC, then (optionally) cuBLASLt. On error
// whatever was opened is closed again.
func loadLibs(open opener) (*libs, error) {
	var l libs
	var err error
	if l.driver, err = loadDriver(open); err != nil {
		return nil, err
	}
	if l.nvrtc, l.nvrtcName, err = loadNVRTC(open); err != nil {
		l.close()
		return nil, err
	}
	l.cublasLt, _, _ = openFirst(open, "cuBLASLt", "", cublasLtNames)
	return &l, nil
}
