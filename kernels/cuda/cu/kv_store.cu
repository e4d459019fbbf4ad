// kv_store.cu: write new K/V rows into the paged cache by slot.
// kv_store_<kv>(kc, vc, k, v, slots, cols): k, v (n, cols) F32; slots (n)
//   int32; kc, vc (numSlots, cols) F32 or F16; kc(slots[i],:) = k(i,:).
// grid (n), block (256).
extern "C" __global__ void kv_store_f32(float *kc, float *vc, const float *k, const float *v, const int *slots,
	int cols) {
	size_t d = (size_t)slots[blockIdx.x] * cols, s = (size_t)blockIdx.x * cols;
	for (int e = threadIdx.x; e < cols; e += blockDim.x) kc[d + e] = k[s + e], vc[d + e] = v[s + e];
}

extern "C" __global__ void kv_store_f16(u16 *kc, u16 *vc, const float *k, const float *v, const int *slots,
	int cols) {
	size_t d = (size_t)slots[blockIdx.x] * cols, s = (size_t)blockIdx.x * cols;
	for (int e = threadIdx.x; e < cols; e += blockDim.x) kc[d + e] = f2h(k[s + e]), vc[d + e] = f2h(v[s + e]);
}
