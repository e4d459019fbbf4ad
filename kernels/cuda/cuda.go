// Package cuda is the GPU backend: the kernels.Backend op set run by CUDA
// kernels on one NVIDIA GPU, with no CUDA SDK needed at build time.
//
// The driver (libcuda.so.1, entry points through cuGetProcAddress), NVRTC
// (libnvrtc.so.13 or .12) and, when present, cuBLASLt are opened with dlopen
// when a backend is created; a machine without them gets an error naming
// the library it could not load. Kernels are .cu sources embedded in the
// binary (cu/, one file per op family), compiled by NVRTC for the device's
// architecture on first use and cached under $SLUICE_HOME/cuda-cache.
//
// Ownership: a Backend owns its context (the device's primary context),
// one stream, the modules it loaded and every device allocation it made;
// tensors it returns hold device pointers (Tensor.Dev) valid until Free or
// Close. All work is issued on the one stream in program order; Read waits
// for it.
package cuda

import (
	"github.com/sluice-llm/sluice/kernels"
)

func init() {
	kernels.Register("cuda", func(opts kernels.Options) (kernels.Backend, error) {
		b, err := New(opts)
		if err != nil {
			// Never a typed nil inside the interface.
			return nil, err
		}
		return b, nil
	})
}
