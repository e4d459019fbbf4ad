// get_rows.cu: embedding lookup.
// get_rows_<w>(dst, table, ids, cols, rowBytes):
//   dst (n, cols) F32, table (vocab, cols) in format <w>, ids (n) int32;
//   dst(i,:) = dequantize(table(ids[i],:)).
// grid (n), block (128): thread t dequantizes chunks t, t+128, ... of the row.
template <class W>
__device__ __forceinline__ void get_rows(float *dst, const u8 *table, const int *ids, int cols, i64 rb) {
	const u8 *row = table + (size_t)ids[blockIdx.x] * rb;
	float *out = dst + (size_t)blockIdx.x * cols;
	for (int c = threadIdx.x; c < cols / 32; c += blockDim.x) {
		float v[32];
		W::deq32(row, c, v);
#pragma unroll
		for (int k = 0; k < 32; k++) out[c * 32 + k] = v[k];
	}
}

#define GET_ROWS(name, W) \
	extern "C" __global__ void get_rows_##name(float *dst, const u8 *table, const int *ids, int cols, i64 rb) { \
		get_rows<W>(dst, table, ids, cols, rb); \
	}
FOR_EACH_WEIGHT(GET_ROWS)
