// rmsnorm.cu: RMS normalization.
// rmsnorm(dst, x, w, cols, eps): dst, x (n, cols) F32 (dst may alias x),
//   w (cols) F32; dst(i,:) = x(i,:) / sqrt(mean(x(i,:)²) + eps) ⊙ w.
// grid (n), block (256).
extern "C" __global__ void __launch_bounds__(256) rmsnorm(float *dst, const float *x, const float *w, int cols, float eps) {
	__shared__ float scratch[32];
	const float *xr = x + (size_t)blockIdx.x * cols;
	float *dr = dst + (size_t)blockIdx.x * cols;
	float ss = 0.0f;
	for (int k = threadIdx.x; k < cols; k += blockDim.x) ss += xr[k] * xr[k];
	ss = block_sum(ss, scratch);
	float r = rsqrtf(ss / (float)cols + eps);
	for (int k = threadIdx.x; k < cols; k += blockDim.x) dr[k] = xr[k] * r * w[k];
}
