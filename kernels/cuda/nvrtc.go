package cuda

/*
#include <stdlib.h>
#include "dl.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// nvrtc is the CUDA runtime compiler, resolved from an open libnvrtc.
type nvrtc struct {
	version, create, compile, destroy, errString unsafe.Pointer
	logSize, log, cubinSize, cubin, ptxSize, ptx unsafe.Pointer
}

func newNVRTC(l lib) (*nvrtc, error) {
	var n nvrtc
	for _, s := range []struct {
		p    *unsafe.Pointer
		name string
	}{
		{&n.version, "nvrtcVersion"}, {&n.create, "nvrtcCreateProgram"},
		{&n.compile, "nvrtcCompileProgram"}, {&n.destroy, "nvrtcDestroyProgram"},
		{&n.errString, "nvrtcGetErrorString"}, {&n.logSize, "nvrtcGetProgramLogSize"},
		{&n.log, "nvrtcGetProgramLog"}, {&n.cubinSize, "nvrtcGetCUBINSize"},
		{&n.cubin, "nvrtcGetCUBIN"}, {&n.ptxSize, "nvrtcGetPTXSize"}, {&n.ptx, "nvrtcGetPTX"},
	} {
		p, err := l.Sym(s.name)
		if err != nil {
			return nil, fmt.Errorf("cuda: NVRTC too old or damaged: %w", err)
		}
		*s.p = p
	}
	return &n, nil
}

// Version returns NVRTC's major and minor version.
func (n *nvrtc) Version() (int, int, error) {
	var maj, min C.int
	if rc := C.sl_nvrtc_version(n.version, &maj, &min); rc != 0 {
		return 0, 0, n.err("nvrtcVersion", rc)
	}
	return int(maj), int(min), nil
}

func (n *nvrtc) err(op string, rc C.int) error {
	return fmt.Errorf("cuda: %s: %s (NVRTC error %d)", op, C.GoString(C.sl_nvrtc_error_string(n.errString, rc)), int(rc))
}

// compiled is the output of one NVRTC compilation.
type compiled struct {
	Image []byte // cubin for a real architecture (sm_XX), else PTX
	Log   string // compiler messages (warnings), "" when clean
}

// compileOptions are the NVRTC options for arch ("sm_90"). The cubin's
// ptxas statistics (registers, spills) go to the log when verbose is set.
func compileOptions(arch string, verbose bool) []string {
	opts := []string{
		// No --use_fast_math: its sin/cos are wrong for rope's large
		// angles. Kernels call the fast intrinsics (__expf) by name.
		"--gpu-architecture=" + arch, "--std=c++17", "--extra-device-vectorization", "-default-device",
	}
	if verbose {
		opts = append(opts, "--ptxas-options=-v")
	}
	return opts
}

// Compile compiles one source for arch ("sm_80", or "compute_80" for PTX)
// and returns the image with the compiler's log. A failed compilation's
// error carries the log.
func (n *nvrtc) Compile(src, name, arch string, verbose bool) (*compiled, error) {
	csrc, cname := C.CString(src), C.CString(name)
	defer C.free(unsafe.Pointer(csrc))
	defer C.free(unsafe.Pointer(cname))
	var prog unsafe.Pointer
	if rc := C.sl_nvrtc_create(n.create, &prog, csrc, cname); rc != 0 {
		return nil, n.err("nvrtcCreateProgram "+name, rc)
	}
	defer C.sl_nvrtc_destroy(n.destroy, &prog)
	opts := compileOptions(arch, verbose)
	copts := make([]*C.char, len(opts))
	for i, o := range opts {
		copts[i] = C.CString(o)
		defer C.free(unsafe.Pointer(copts[i]))
	}
	copt := (**C.char)(C.malloc(C.size_t(len(copts)) * C.size_t(unsafe.Sizeof(copts[0]))))
	defer C.free(unsafe.Pointer(copt))
	copy(unsafe.Slice(copt, len(copts)), copts)
	rc := C.sl_nvrtc_compile(n.compile, prog, C.int(len(opts)), copt)
	log := n.read(prog, n.logSize, n.log)
	if rc != 0 {
		return nil, fmt.Errorf("%w\n%s", n.err("compiling "+name+" for "+arch, rc), log)
	}
	out := &compiled{Log: strings.TrimSpace(strings.TrimRight(string(log), "\x00"))}
	if strings.HasPrefix(arch, "sm_") {
		out.Image = n.read(prog, n.cubinSize, n.cubin)
	} else {
		out.Image = n.read(prog, n.ptxSize, n.ptx)
	}
	return out, nil
}

// read fetches one of a program's outputs (log, cubin, PTX); nil on error.
func (n *nvrtc) read(prog, sizeFn, getFn unsafe.Pointer) []byte {
	var size C.size_t
	if C.sl_nvrtc_size(sizeFn, prog, &size) != 0 || size == 0 {
		return nil
	}
	buf := C.malloc(size)
	defer C.free(buf)
	if C.sl_nvrtc_get(getFn, prog, (*C.char)(buf)) != 0 {
		return nil
	}
	return C.GoBytes(buf, C.int(size))
}
