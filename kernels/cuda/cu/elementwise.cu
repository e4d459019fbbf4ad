// elementwise.cu: element-wise ops over the first n rows of F32 tensors,
// counted as total = n*cols elements. grid (ceil(total/256)), block (256).

// add(dst, a, b, total): dst = a + b; dst may alias a or b.
extern "C" __global__ void add(float *dst, const float *a, const float *b, i64 total) {
	i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (e < total) dst[e] = a[e] + b[e];
}

// add_bias(x, b, cols, total): x(i,k) += b(k).
extern "C" __global__ void add_bias(float *x, const float *b, int cols, i64 total) {
	i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (e < total) x[e] += b[e % cols];
}

// scale(x, s, total): x = s·x in place.
extern "C" __global__ void scale(float *x, float s, i64 total) {
	i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (e < total) x[e] *= s;
}

// silu_mul(dst, gate, up, total): dst = silu(gate) ⊙ up; dst may alias gate.
extern "C" __global__ void silu_mul(float *dst, const float *gate, const float *up, i64 total) {
	i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
	if (e < total) {
		float g = gate[e];
		dst[e] = g / (1.0f + __expf(-g)) * up[e];
	}
}
