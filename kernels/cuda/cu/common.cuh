// common.cuh: types and helpers prepended to every kernel source. NVRTC
// compiles these without any CUDA header: fixed-width types, half and
// bfloat16 conversions are declared here.
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef long long i64;

#define WARP 32
#define NEG_INF (-__int_as_float(0x7f800000))

#ifndef SLUICE_HOST // the host test harness supplies these
__device__ __forceinline__ float h2f(u16 h) {
	float f;
	asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
	return f;
}

__device__ __forceinline__ u16 f2h(float f) {
	u16 h;
	asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
	return h;
}

__device__ __forceinline__ float bf2f(u16 b) { return __uint_as_float(((u32)b) << 16); }

// ld16 reads a little-endian 16-bit value from a 2-byte aligned address.
__device__ __forceinline__ u16 ld16(const u8 *p) { return *(const u16 *)p; }
#endif

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
	for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
	return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
	for (int o = WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

// block_sum reduces v over a block of blockDim.x threads (a multiple of 32,
// at most 1024); every thread gets the total. scratch holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float *scratch) {
	int lane = threadIdx.x % WARP, w = threadIdx.x / WARP, nw = blockDim.x / WARP;
	v = warp_sum(v);
	__syncthreads();
	if (lane == 0) scratch[w] = v;
	__syncthreads();
	v = lane < nw ? scratch[lane] : 0.0f;
	return warp_sum(v);
}

// block_max is block_sum with max.
__device__ __forceinline__ float block_max(float v, float *scratch) {
	int lane = threadIdx.x % WARP, w = threadIdx.x / WARP, nw = blockDim.x / WARP;
	v = warp_max(v);
	__syncthreads();
	if (lane == 0) scratch[w] = v;
	__syncthreads();
	v = lane < nw ? scratch[lane] : NEG_INF;
	return warp_max(v);
}
