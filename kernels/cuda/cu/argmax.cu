// argmax.cu: index of each row's largest element (ties: lowest index).
// argmax(dst, x, cols): dst (n) int32, x (n, cols) F32.
// grid (n), block (256).
extern "C" __global__ void __launch_bounds__(256) argmax(int *dst, const float *x, int cols) {
	__shared__ float sv[32];
	__shared__ int si[32];
	const float *r = x + (size_t)blockIdx.x * cols;
	float best = NEG_INF;
	int bi = 0x7fffffff;
	for (int k = threadIdx.x; k < cols; k += blockDim.x) {
		float v = r[k];
		if (v > best || (v == best && k < bi)) best = v, bi = k;
	}
#pragma unroll
	for (int o = WARP / 2; o > 0; o >>= 1) {
		float ov = __shfl_xor_sync(0xffffffffu, best, o);
		int oi = __shfl_xor_sync(0xffffffffu, bi, o);
		if (ov > best || (ov == best && oi < bi)) best = ov, bi = oi;
	}
	int lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
	if (lane == 0) sv[w] = best, si[w] = bi;
	__syncthreads();
	if (threadIdx.x == 0) {
		for (int k = 1; k < (int)(blockDim.x / WARP); k++)
			if (sv[k] > best || (sv[k] == best && si[k] < bi)) best = sv[k], bi = si[k];
		dst[blockIdx.x] = bi == 0x7fffffff ? 0 : bi;
	}
}
