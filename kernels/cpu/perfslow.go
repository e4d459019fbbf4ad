//go:build perfslow

package cpu

// Built with -tags perfslow, the AVX2 Q4_0 dot product (vd_q4_0_avx2 in
// k_avx2.c) does its work twice. Only the performance gate's own test
// (bench/perf, TestGateCatchesSlowedKernel) builds with this tag, to show
// that the gate fails on a slowed kernel.

// #cgo CFLAGS: -DSL_PERF_SLOW
import "C"
