// attention.cu: paged attention over the engine's block tables.
// Common arguments: q (n, heads*D) F32 with D = headDim ≤ MAX_D (a multiple
// of 32); kc, vc (numSlots, kvHeads*D) F32 or F16 caches; pos, seq (n) int32;
// bt (numSeqs, maxBlocks) int32 block tables. Token i attends to positions
// 0..pos[i] of sequence seq[i]; position p lives in cache row
// bt[seq[i]*maxBlocks + p/blockSize]*blockSize + p%blockSize. Query head h
// reads KV head h / (heads/kvHeads). Scores are scale·q·k.
#define MAX_D 256
#define DT (MAX_D / WARP)

__device__ __forceinline__ float ldkv(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float ldkv(const u16 *p, size_t i) { return h2f(p[i]); }

__device__ __forceinline__ size_t kv_row(const int *tbl, int p, int blockSize) {
	return (size_t)tbl[p / blockSize] * blockSize + p % blockSize;
}

// Decode, split-K: attn_decode_<kv>(po, pml, q, kc, vc, pos, seq, bt,
//   maxBlocks, blockSize, heads, kvHeads, D, scale, splitLen)
//   po (n, heads, splits, D) unnormalized partial outputs, pml (n, heads,
//   splits, 2) their running max and sum; split s covers positions
//   [s*splitLen, (s+1)*splitLen). attn_combine merges the splits.
// grid (n, heads, splits), block (AD_WARPS*32): warp w takes positions
//   w, w+AD_WARPS, ... of the split with an online softmax.
#define AD_WARPS 4

template <class KV>
__device__ __forceinline__ void attn_decode(float *po, float *pml, const float *q, const KV *kc, const KV *vc,
	const int *pos, const int *seq, const int *bt, int maxBlocks, int blockSize, int heads, int kvHeads, int D,
	float scale, int splitLen) {
	__shared__ float qs[MAX_D];
	__shared__ float wm[AD_WARPS], wl[AD_WARPS];
	__shared__ float wo[AD_WARPS][MAX_D];
	int i = blockIdx.x, h = blockIdx.y, sp = blockIdx.z, splits = gridDim.z;
	int lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
	int g = h / (heads / kvHeads), kvCols = kvHeads * D;
	int p0 = sp * splitLen, p1 = min(pos[i] + 1, p0 + splitLen);
	for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = q[(size_t)i * heads * D + (size_t)h * D + d] * scale;
	__syncthreads();
	const int *tbl = bt + (size_t)seq[i] * maxBlocks;
	float m = NEG_INF, l = 0.0f, acc[DT];
#pragma unroll
	for (int t = 0; t < DT; t++) acc[t] = 0.0f;
	for (int p = p0 + w; p < p1; p += AD_WARPS) {
		size_t base = kv_row(tbl, p, blockSize) * kvCols + (size_t)g * D;
		float s = 0.0f;
		for (int d = lane; d < D; d += WARP) s += qs[d] * ldkv(kc, base + d);
		s = warp_sum(s);
		float mn = fmaxf(m, s), corr = __expf(m - mn), e = __expf(s - mn);
		l = l * corr + e;
#pragma unroll
		for (int t = 0; t < DT; t++) {
			int d = lane + WARP * t;
			if (d < D) acc[t] = acc[t] * corr + e * ldkv(vc, base + d);
		}
		m = mn;
	}
	if (lane == 0) wm[w] = m, wl[w] = l;
#pragma unroll
	for (int t = 0; t < DT; t++) {
		int d = lane + WARP * t;
		if (d < D) wo[w][d] = acc[t];
	}
	__syncthreads();
	float M = NEG_INF;
	for (int k = 0; k < AD_WARPS; k++) M = fmaxf(M, wm[k]);
	size_t o = ((size_t)(i * heads + h) * splits + sp);
	for (int d = threadIdx.x; d < D; d += blockDim.x) {
		float v = 0.0f;
		for (int k = 0; k < AD_WARPS; k++)
			if (wm[k] != NEG_INF) v += wo[k][d] * __expf(wm[k] - M);
		po[o * D + d] = v;
	}
	if (threadIdx.x == 0) {
		float L = 0.0f;
		for (int k = 0; k < AD_WARPS; k++)
			if (wm[k] != NEG_INF) L += wl[k] * __expf(wm[k] - M);
		pml[2 * o] = M, pml[2 * o + 1] = L;
	}
}

// attn_combine(out, po, pml, heads, D, splits): out (n, heads*D) F32 =
//   Σ_s po_s·exp(m_s - M) / Σ_s l_s·exp(m_s - M). grid (n, heads), block (128).
extern "C" __global__ void attn_combine(float *out, const float *po, const float *pml, int heads, int D, int splits) {
	int i = blockIdx.x, h = blockIdx.y;
	size_t o0 = (size_t)(i * heads + h) * splits;
	float M = NEG_INF;
	for (int s = 0; s < splits; s++) M = fmaxf(M, pml[2 * (o0 + s)]);
	float L = 0.0f;
	for (int s = 0; s < splits; s++) {
		float m = pml[2 * (o0 + s)];
		if (m != NEG_INF) L += pml[2 * (o0 + s) + 1] * __expf(m - M);
	}
	float inv = L > 0.0f ? 1.0f / L : 0.0f;
	for (int d = threadIdx.x; d < D; d += blockDim.x) {
		float v = 0.0f;
		for (int s = 0; s < splits; s++) {
			float m = pml[2 * (o0 + s)];
			if (m != NEG_INF) v += po[(o0 + s) * D + d] * __expf(m - M);
		}
		out[(size_t)i * heads * D + (size_t)h * D + d] = v * inv;
	}
}

// Prefill, flash tiles: attn_prefill_<kv>(out, q, kc, vc, tiles, pos, seq,
//   bt, maxBlocks, blockSize, heads, kvHeads, D, scale)
//   tiles (numTiles, 2): first token and count (≤ AP_TQ) of a run of tokens
//   of one sequence. out (n, heads*D) F32.
// grid (numTiles, heads), block (AP_WARPS*32): the tile's K/V rows are staged
//   AP_KC positions at a time in shared memory (F32) and shared by its
//   queries; warp w owns queries w, w+AP_WARPS, ... with an online softmax.
#define AP_WARPS 4
#define AP_TQ 16
#define AP_QW (AP_TQ / AP_WARPS)
#define AP_KC 16

template <class KV>
__device__ __forceinline__ void attn_prefill(float *out, const float *q, const KV *kc, const KV *vc,
	const int *tiles, const int *pos, const int *seq, const int *bt, int maxBlocks, int blockSize, int heads,
	int kvHeads, int D, float scale) {
	__shared__ float ks[AP_KC][MAX_D], vs[AP_KC][MAX_D];
	int t0 = tiles[2 * blockIdx.x], cnt = tiles[2 * blockIdx.x + 1], h = blockIdx.y;
	int lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
	int g = h / (heads / kvHeads), kvCols = kvHeads * D;
	const int *tbl = bt + (size_t)seq[t0] * maxBlocks;
	int maxP = 0;
	for (int k = 0; k < cnt; k++) maxP = max(maxP, pos[t0 + k]);
	float qf[AP_QW][DT], acc[AP_QW][DT], m[AP_QW], l[AP_QW];
	int qp[AP_QW];
#pragma unroll
	for (int a = 0; a < AP_QW; a++) {
		int ti = w + AP_WARPS * a;
		qp[a] = ti < cnt ? pos[t0 + ti] : -1;
		m[a] = NEG_INF, l[a] = 0.0f;
#pragma unroll
		for (int t = 0; t < DT; t++) {
			int d = lane + WARP * t;
			acc[a][t] = 0.0f;
			qf[a][t] = (ti < cnt && d < D) ? q[(size_t)(t0 + ti) * heads * D + (size_t)h * D + d] * scale : 0.0f;
		}
	}
	for (int c0 = 0; c0 <= maxP; c0 += AP_KC) {
		__syncthreads();
		for (int e = threadIdx.x; e < AP_KC * D; e += blockDim.x) {
			int r = e / D, d = e % D, p = c0 + r;
			size_t base = p <= maxP ? kv_row(tbl, p, blockSize) * kvCols + (size_t)g * D : 0;
			ks[r][d] = p <= maxP ? ldkv(kc, base + d) : 0.0f;
			vs[r][d] = p <= maxP ? ldkv(vc, base + d) : 0.0f;
		}
		__syncthreads();
#pragma unroll
		for (int a = 0; a < AP_QW; a++) {
			for (int r = 0; r < AP_KC && c0 + r <= qp[a]; r++) {
				float s = 0.0f;
#pragma unroll
				for (int t = 0; t < DT; t++) {
					int d = lane + WARP * t;
					if (d < D) s += qf[a][t] * ks[r][d];
				}
				s = warp_sum(s);
				float mn = fmaxf(m[a], s), corr = __expf(m[a] - mn), e = __expf(s - mn);
				l[a] = l[a] * corr + e;
#pragma unroll
				for (int t = 0; t < DT; t++) {
					int d = lane + WARP * t;
					if (d < D) acc[a][t] = acc[a][t] * corr + e * vs[r][d];
				}
				m[a] = mn;
			}
		}
	}
#pragma unroll
	for (int a = 0; a < AP_QW; a++) {
		int ti = w + AP_WARPS * a;
		if (ti >= cnt) continue;
		float inv = l[a] > 0.0f ? 1.0f / l[a] : 0.0f;
#pragma unroll
		for (int t = 0; t < DT; t++) {
			int d = lane + WARP * t;
			if (d < D) out[(size_t)(t0 + ti) * heads * D + (size_t)h * D + d] = acc[a][t] * inv;
		}
	}
}

#define ATTN(name, KV) \
	extern "C" __global__ void __launch_bounds__(AD_WARPS * WARP) attn_decode_##name(float *po, float *pml, \
		const float *q, const KV *kc, const KV *vc, const int *pos, const int *seq, const int *bt, int maxBlocks, \
		int blockSize, int heads, int kvHeads, int D, float scale, int splitLen) { \
		attn_decode<KV>(po, pml, q, kc, vc, pos, seq, bt, maxBlocks, blockSize, heads, kvHeads, D, scale, splitLen); \
	} \
	extern "C" __global__ void __launch_bounds__(AP_WARPS * WARP) attn_prefill_##name(float *out, const float *q, \
		const KV *kc, const KV *vc, const int *tiles, const int *pos, const int *seq, const int *bt, int maxBlocks, \
		int blockSize, int heads, int kvHeads, int D, float scale) { \
		attn_prefill<KV>(out, q, kc, vc, tiles, pos, seq, bt, maxBlocks, blockSize, heads, kvHeads, D, scale); \
	}
ATTN(f32, float)
ATTN(f16, u16)
