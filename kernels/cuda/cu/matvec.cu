// matvec.cu: decode matmul, dequantizing weights on the fly.
// matvec_<w>(dst, x, w, rows, cols, n, rowBytes):
//   dst (n, rows) F32, x (n, cols) F32, w (rows, cols) in format <w>,
//   n ≤ MV_MAXN; dst(i,j) = Σ_k x(i,k)·w(j,k).
// grid (ceil(rows/MV_WARPS)), block (32*MV_WARPS): one warp per weight
// row; lane l takes the row's 32-element chunks l, l+32, ... so each weight
// byte is read once for all n activation rows.
#define MV_WARPS 4
#define MV_MAXN 8

template <class W>
__device__ __forceinline__ void matvec(float *dst, const float *x, const u8 *w, int rows, int cols, int n, i64 rb) {
	int lane = threadIdx.x % WARP;
	int j = blockIdx.x * MV_WARPS + threadIdx.x / WARP;
	if (j >= rows) return;
	const u8 *wr = w + (size_t)j * rb;
	float acc[MV_MAXN];
#pragma unroll
	for (int i = 0; i < MV_MAXN; i++) acc[i] = 0.0f;
	for (int c = lane; c < cols / 32; c += WARP) {
		float v[32];
		W::deq32(wr, c, v);
#pragma unroll
		for (int i = 0; i < MV_MAXN; i++) {
			if (i >= n) break;
			const float4 *xp = (const float4 *)(x + (size_t)i * cols + (size_t)c * 32);
			float s = 0.0f;
#pragma unroll
			for (int k = 0; k < 8; k++) {
				float4 a = xp[k];
				s += a.x * v[4 * k] + a.y * v[4 * k + 1] + a.z * v[4 * k + 2] + a.w * v[4 * k + 3];
			}
			acc[i] += s;
		}
	}
#pragma unroll
	for (int i = 0; i < MV_MAXN; i++) {
		if (i >= n) break;
		float s = warp_sum(acc[i]);
		if (lane == 0) dst[(size_t)i * rows + j] = s;
	}
}

#define MATVEC(name, W) \
	extern "C" __global__ void __launch_bounds__(MV_WARPS * WARP) matvec_##name( \
		float *dst, const float *x, const u8 *w, int rows, int cols, int n, i64 rb) { \
		matvec<W>(dst, x, w, rows, cols, n, rb); \
	}
FOR_EACH_WEIGHT(MATVEC)
