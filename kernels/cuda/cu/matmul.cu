// matmul.cu: prefill matmul, tiled, dequantizing weights into shared memory.
// matmul_<w>(dst, x, w, rows, cols, n, rowBytes):
//   dst (n, rows) F32, x (n, cols) F32, w (rows, cols) in format <w>;
//   dst(i,j) = Σ_k x(i,k)·w(j,k).
// grid (ceil(rows/MM_BN), ceil(n/MM_BM)), block (256): each block computes
// an MM_BM×MM_BN output tile, 4×4 per thread, stepping k by one 32-element
// chunk: all threads stage x, the first MM_BN threads dequantize w.
#define MM_BM 64
#define MM_BN 64
#define MM_THREADS 256

template <class W>
__device__ __forceinline__ void matmul(float *dst, const float *x, const u8 *w, int rows, int cols, int n, i64 rb) {
	__shared__ float xs[MM_BM][33];
	__shared__ float ws[MM_BN][33];
	int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
	int i0 = blockIdx.y * MM_BM, j0 = blockIdx.x * MM_BN;
	float acc[4][4];
#pragma unroll
	for (int r = 0; r < 4; r++)
#pragma unroll
		for (int s = 0; s < 4; s++) acc[r][s] = 0.0f;
	for (int c = 0; c < cols / 32; c++) {
		for (int e = tid; e < MM_BM * 32; e += MM_THREADS) {
			int r = e / 32, k = e % 32, i = i0 + r;
			xs[r][k] = i < n ? x[(size_t)i * cols + (size_t)c * 32 + k] : 0.0f;
		}
		if (tid < MM_BN) {
			float v[32];
			int j = j0 + tid;
			if (j < rows) {
				W::deq32(w + (size_t)j * rb, c, v);
			} else {
#pragma unroll
				for (int k = 0; k < 32; k++) v[k] = 0.0f;
			}
#pragma unroll
			for (int k = 0; k < 32; k++) ws[tid][k] = v[k];
		}
		__syncthreads();
#pragma unroll 8
		for (int k = 0; k < 32; k++) {
			float a[4], b[4];
#pragma unroll
			for (int r = 0; r < 4; r++) a[r] = xs[ty + 16 * r][k], b[r] = ws[tx + 16 * r][k];
#pragma unroll
			for (int r = 0; r < 4; r++)
#pragma unroll
				for (int s = 0; s < 4; s++) acc[r][s] += a[r] * b[s];
		}
		__syncthreads();
	}
#pragma unroll
	for (int r = 0; r < 4; r++) {
		int i = i0 + ty + 16 * r;
		if (i >= n) break;
#pragma unroll
		for (int s = 0; s < 4; s++) {
			int j = j0 + tx + 16 * s;
			if (j < rows) dst[(size_t)i * rows + j] = acc[r][s];
		}
	}
}

#define MATMUL(name, W) \
	extern "C" __global__ void __launch_bounds__(MM_THREADS) matmul_##name( \
		float *dst, const float *x, const u8 *w, int rows, int cols, int n, i64 rb) { \
		matmul<W>(dst, x, w, rows, cols, n, rb); \
	}
FOR_EACH_WEIGHT(MATMUL)
