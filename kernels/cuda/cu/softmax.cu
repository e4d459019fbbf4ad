// softmax.cu: row softmax, in place.
// softmax(x, cols): x (n, cols) F32; x(i,:) = exp(x(i,:) - max) / Σ exp.
// grid (n), block (256).
extern "C" __global__ void __launch_bounds__(256) softmax(float *x, int cols) {
	__shared__ float scratch[32];
	float *r = x + (size_t)blockIdx.x * cols;
	float m = NEG_INF;
	for (int k = threadIdx.x; k < cols; k += blockDim.x) m = fmaxf(m, r[k]);
	m = block_max(m, scratch);
	float s = 0.0f;
	for (int k = threadIdx.x; k < cols; k += blockDim.x) {
		float e = __expf(r[k] - m);
		r[k] = e;
		s += e;
	}
	s = block_sum(s, scratch);
	float inv = 1.0f / s;
	for (int k = threadIdx.x; k < cols; k += blockDim.x) r[k] *= inv;
}
