// rope.cu: rotary position embedding, in place.
// rope(x, pos, freqs, cols, headDim, dims, thetaScale, freqScale, neox):
//   x (n, cols) F32 holding cols/headDim heads per row; pos (n) int32;
//   freqs (dims/2) F32 divisors of each frequency or NULL. Pair i of every
//   head (elements (2i, 2i+1), or (i, i+dims/2) when neox) rotates by
//   θ = freqScale · (pos · thetaScale^i / freqs[i]), thetaScale = base^(-2/dims).
// grid (n, cols/headDim), block (dims/2 rounded up to 32, at most 256).
extern "C" __global__ void rope(float *x, const int *pos, const float *freqs, int cols, int headDim, int dims,
	float thetaScale, float freqScale, int neox) {
	int half = dims / 2;
	float *v = x + (size_t)blockIdx.x * cols + (size_t)blockIdx.y * headDim;
	float p = (float)pos[blockIdx.x];
	for (int i = threadIdx.x; i < half; i += blockDim.x) {
		float ff = freqs ? freqs[i] : 1.0f;
		// θ_i by repeated multiplication, as the CPU backend (and GGML)
		// computes it, so both round the same way.
		float t = p;
		for (int k = 0; k < i; k++) t *= thetaScale;
		float th = freqScale * (t / ff);
		float s, c;
		sincosf(th, &s, &c);
		int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
		float x0 = v[a], x1 = v[b];
		v[a] = x0 * c - x1 * s;
		v[b] = x0 * s + x1 * c;
	}
}
