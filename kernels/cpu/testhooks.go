package cpu

// Hooks into single C kernels of one path, used by the package's tests to
// compare activation quantizers and dot products with the quant reference.

/*
#include "sl.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/sluice-llm/sluice/quant"
)

// actType is the activation format the path pairs with weight type t
// (quant.F32 meaning raw floats).
func actType(path string, t quant.Type) quant.Type {
	id, _ := pathID(path)
	return quant.Type(C.sl_test_act_type(id, C.int(t)))
}

// quantizeAct runs the path's activation quantizer for type t over x.
func quantizeAct(path string, t quant.Type, x []float32) ([]byte, error) {
	id, ok := pathID(path)
	if !ok {
		return nil, fmt.Errorf("unknown path %q", path)
	}
	n, err := quant.RowBytes(t, len(x))
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	if rc := C.sl_test_quantize(id, C.int(t), (*C.float)(unsafe.Pointer(&x[0])), unsafe.Pointer(&out[0]), C.int(len(x))); rc != 0 {
		return nil, fmt.Errorf("quantize %v on %s: code %d", t, path, rc)
	}
	return out, nil
}

// vecDot runs the path's dot product of one weight row with one activation
// row in the path's paired format.
func vecDot(path string, t quant.Type, k int, w, x []byte) (float32, error) {
	id, ok := pathID(path)
	if !ok {
		return 0, fmt.Errorf("unknown path %q", path)
	}
	var out C.float
	if rc := C.sl_test_vec_dot(id, C.int(t), C.int(k), unsafe.Pointer(&w[0]), unsafe.Pointer(&x[0]), &out); rc != 0 {
		return 0, fmt.Errorf("vec dot %v on %s: code %d", t, path, rc)
	}
	return float32(out), nil
}
