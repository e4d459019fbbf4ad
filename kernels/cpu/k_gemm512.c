// AVX-512 VNNI matrix multiplication over repacked weights.
//
// A quantized weight matrix is repacked once into panels of 16 rows. Inside
// a panel, for each group of 4 consecutive elements, one 64-byte vector
// holds those 4 quants of all 16 rows as unsigned bytes (or as nibbles that
// unpack to two such vectors). A vpdpbusd of that vector with the 4
// activation bytes broadcast to every lane adds the group's products to 16
// per-row sums at once, so a block's dot products for 16 rows come out in
// one register without horizontal sums, and each decoded weight vector is
// reused for every activation row of the tile. The block scales of the 16
// rows sit next to the quants as one vector.
//
// Activations are prepared per op from the row quantizer's output (Q8_0 or
// Q8_K, byte for byte as quant.Quantize writes them) into a plain layout:
// int8 values, the scale per block, and the integer sum per sub-block that
// turns the unsigned weights back into signed ones (w = q - off gives
// Σ w·x = Σ q·x - off·Σ x, exactly in integers).
#include "sl.h"

#if SL_X86
#include <immintrin.h>

#define T5 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define AI __attribute__((always_inline)) inline

// Packed bytes per panel and 32/256-element block.
#define PK_Q4_0 (256 + 32)
#define PK_Q8_0 (512 + 32)
#define PK_Q4_K (2048 + 128 + 128 + 32 + 32)
#define PK_Q6_K (3072 + 256 + 32)

size_t sl_pack512_block_bytes(int type) {
	switch (type) {
	case SL_Q4_0: return PK_Q4_0;
	case SL_Q8_0: return PK_Q8_0;
	case SL_Q4_K: return PK_Q4_K;
	case SL_Q6_K: return PK_Q6_K;
	}
	return 0;
}

static int block_elems(int type) { return type == SL_Q4_K || type == SL_Q6_K ? 256 : 32; }

size_t sl_pack512_bytes(int type, int M, int K) {
	size_t bb = sl_pack512_block_bytes(type);
	if (!bb || K % block_elems(type)) return 0;
	size_t panels = ((size_t)M + SL_PANEL - 1) / SL_PANEL;
	return panels * (size_t)(K / block_elems(type)) * bb;
}

// Copies 4 bytes of row r into lane r of a 64-byte vector.
static inline void put4(uint8_t *v, int r, const uint8_t *src, uint8_t xor) {
	for (int i = 0; i < 4; i++) v[4 * r + i] = src[i] ^ xor;
}

// Packs panel p (rows 16p..16p+15, missing rows as zeros) of a weight
// matrix with row stride ws.
void sl_pack512_panel(int type, const void *w, size_t ws, int M, int K, int p, uint8_t *out) {
	int nb = K / block_elems(type);
	size_t bb = sl_pack512_block_bytes(type);
	uint8_t *pp = out + (size_t)p * nb * bb;
	memset(pp, 0, nb * bb);
	for (int r = 0; r < SL_PANEL; r++) {
		int row = p * SL_PANEL + r;
		if (row >= M) break;
		const uint8_t *wr = (const uint8_t *)w + (size_t)row * ws;
		for (int j = 0; j < nb; j++) {
			uint8_t *o = pp + (size_t)j * bb;
			switch (type) {
			case SL_Q4_0: {
				const blk_q4_0 *b = (const blk_q4_0 *)wr + j;
				for (int h = 0; h < 4; h++) put4(o + 64 * h, r, b->qs + 4 * h, 0);
				memcpy(o + 256 + 2 * r, &b->d, 2);
				break;
			}
			case SL_Q8_0: {
				const blk_q8_0 *b = (const blk_q8_0 *)wr + j;
				for (int g = 0; g < 8; g++) put4(o + 64 * g, r, (const uint8_t *)b->qs + 4 * g, 0x80);
				memcpy(o + 512 + 2 * r, &b->d, 2);
				break;
			}
			case SL_Q4_K: {
				const blk_q4_K *b = (const blk_q4_K *)wr + j;
				// Vector (j4, g): bytes 32·j4 + 4g..+3; low nibbles are
				// sub-block 2·j4, high nibbles sub-block 2·j4+1.
				for (int j4 = 0; j4 < 4; j4++)
					for (int g = 0; g < 8; g++) put4(o + 64 * (8 * j4 + g), r, b->qs + 32 * j4 + 4 * g, 0);
				const uint8_t *q = b->scales;
				for (int s = 0; s < 8; s++) {
					int sc, m;
					if (s < 4) {
						sc = q[s] & 63;
						m = q[s + 4] & 63;
					} else {
						sc = (q[s + 4] & 0xF) | ((q[s - 4] >> 6) << 4);
						m = (q[s + 4] >> 4) | ((q[s] >> 6) << 4);
					}
					o[2048 + 16 * s + r] = (uint8_t)sc;
					o[2048 + 128 + 16 * s + r] = (uint8_t)m;
				}
				memcpy(o + 2048 + 256 + 2 * r, &b->d, 2);
				memcpy(o + 2048 + 256 + 32 + 2 * r, &b->dmin, 2);
				break;
			}
			case SL_Q6_K: {
				const blk_q6_K *b = (const blk_q6_K *)wr + j;
				// Per (n, g): three vectors, ql[64n+4g], ql[64n+32+4g] and
				// qh[32n+4g], 4 bytes each per row.
				for (int n = 0; n < 2; n++)
					for (int g = 0; g < 8; g++) {
						uint8_t *v = o + 192 * (8 * n + g);
						put4(v, r, b->ql + 64 * n + 4 * g, 0);
						put4(v + 64, r, b->ql + 64 * n + 32 + 4 * g, 0);
						put4(v + 128, r, b->qh + 32 * n + 4 * g, 0);
					}
				for (int s = 0; s < 16; s++) o[3072 + 16 * s + r] = (uint8_t)b->scales[s];
				memcpy(o + 3072 + 256 + 2 * r, &b->d, 2);
				break;
			}
			}
		}
	}
}

// ---- activation layout ----

// Prepares n activation rows quantized as Q8_0 (xtype SL_Q8_0) or Q8_K
// (SL_Q8_K), row stride xs bytes, into a->q (K bytes per row), a->d (one
// float per 32 or 256 elements), a->s (int sum per 32 or 16 elements) and
// a->sf (the same sums times the row's scale, as floats).
void sl_act_prepare(int xtype, const void *xq, size_t xs, int K, int row, sl_act *a) {
	const uint8_t *src = (const uint8_t *)xq + (size_t)row * xs;
	int8_t *q = a->q + (size_t)row * K;
	if (xtype == SL_Q8_0) {
		int nb = K / 32;
		float *d = a->d + (size_t)row * nb;
		int32_t *s = a->s + (size_t)row * nb;
		float *sf = a->sf + (size_t)row * nb;
		for (int j = 0; j < nb; j++) {
			const blk_q8_0 *b = (const blk_q8_0 *)src + j;
			memcpy(q + 32 * j, b->qs, 32);
			d[j] = sl_h2f(b->d);
			int sum = 0;
			for (int i = 0; i < 32; i++) sum += b->qs[i];
			s[j] = sum;
			sf[j] = (float)sum * d[j];
		}
	} else {
		int nb = K / 256;
		float *d = a->d + (size_t)row * nb;
		int32_t *s = a->s + (size_t)row * (K / 16);
		float *sf = a->sf + (size_t)row * (K / 32);
		for (int j = 0; j < nb; j++) {
			const blk_q8_K *b = (const blk_q8_K *)src + j;
			memcpy(q + 256 * j, b->qs, 256);
			d[j] = b->d;
			for (int g = 0; g < 16; g++) s[16 * j + g] = b->bsums[g];
			for (int g = 0; g < 8; g++) sf[8 * j + g] = (float)(b->bsums[2 * g] + b->bsums[2 * g + 1]) * b->d;
		}
	}
}

// ---- micro-kernels: one panel of 16 rows × NC activation rows ----

static AI T5 __m512i bc4(const int8_t *p) {
	int32_t v;
	memcpy(&v, p, 4);
	return _mm512_set1_epi32(v);
}

// With one or two activation rows the kernels stream weights faster than
// the hardware prefetcher fetches them: ask for the panel bytes that follow.
#define PF_AHEAD 2048
static AI T5 void prefetch_block(const uint8_t *p, int bytes) {
	for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(p + PF_AHEAD + o), _MM_HINT_T0);
}

static AI T5 void store_tile(float *dst, int ldd, int NC, __m512 *acc, __mmask16 rmask) {
	for (int c = 0; c < NC; c++) _mm512_mask_storeu_ps(dst + (size_t)c * ldd, rmask, acc[c]);
}

static AI T5 void tile_q4_0(const uint8_t *P, int K, const sl_act *a, int c0, const int NC, float *dst, int ldd,
	__mmask16 rmask) {
	const int nb = K / 32;
	__m512 acc[8];
	for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps();
	const __m512i m4 = _mm512_set1_epi8(0x0F);
	for (int j = 0; j < nb; j++) {
		const uint8_t *pb = P + (size_t)j * PK_Q4_0;
		if (NC <= 2) prefetch_block(pb, PK_Q4_0);
		__m512i W[8];
		for (int h = 0; h < 4; h++) {
			__m512i l = _mm512_loadu_si512(pb + 64 * h);
			W[h] = _mm512_and_si512(l, m4);
			W[h + 4] = _mm512_and_si512(_mm512_srli_epi16(l, 4), m4);
		}
		__m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + 256)));
		for (int c = 0; c < NC; c++) {
			size_t row = (size_t)(c0 + c);
			const int8_t *x = a->q + row * K + 32 * j;
			// Two dependency chains: dpbusd's latency, not its throughput,
			// limits a tile of one or two activation rows.
			__m512i s = _mm512_set1_epi32(-8 * a->s[row * nb + j]), s1 = _mm512_setzero_si512();
			for (int g = 0; g < 8; g += 2) {
				s = _mm512_dpbusd_epi32(s, W[g], bc4(x + 4 * g));
				s1 = _mm512_dpbusd_epi32(s1, W[g + 1], bc4(x + 4 * g + 4));
			}
			s = _mm512_add_epi32(s, s1);
			__m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(a->d[row * nb + j]));
			acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc[c]);
		}
	}
	store_tile(dst, ldd, NC, acc, rmask);
}

static AI T5 void tile_q8_0(const uint8_t *P, int K, const sl_act *a, int c0, const int NC, float *dst, int ldd,
	__mmask16 rmask) {
	const int nb = K / 32;
	__m512 acc[8];
	for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps();
	for (int j = 0; j < nb; j++) {
		const uint8_t *pb = P + (size_t)j * PK_Q8_0;
		if (NC <= 2) prefetch_block(pb, PK_Q8_0);
		__m512i W[8];
		for (int g = 0; g < 8; g++) W[g] = _mm512_loadu_si512(pb + 64 * g);
		__m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + 512)));
		for (int c = 0; c < NC; c++) {
			size_t row = (size_t)(c0 + c);
			const int8_t *x = a->q + row * K + 32 * j;
			__m512i s = _mm512_set1_epi32(-128 * a->s[row * nb + j]), s1 = _mm512_setzero_si512();
			for (int g = 0; g < 8; g += 2) {
				s = _mm512_dpbusd_epi32(s, W[g], bc4(x + 4 * g));
				s1 = _mm512_dpbusd_epi32(s1, W[g + 1], bc4(x + 4 * g + 4));
			}
			s = _mm512_add_epi32(s, s1);
			__m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(a->d[row * nb + j]));
			acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc[c]);
		}
	}
	store_tile(dst, ldd, NC, acc, rmask);
}

static AI T5 void tile_q4_K(const uint8_t *P, int K, const sl_act *a, int c0, const int NC, float *dst, int ldd,
	__mmask16 rmask) {
	const int nb = K / 256;
	__m512 acc[8];
	for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps();
	const __m512i m4 = _mm512_set1_epi8(0x0F);
	for (int j = 0; j < nb; j++) {
		const uint8_t *pb = P + (size_t)j * PK_Q4_K;
		if (NC <= 2) prefetch_block(pb, PK_Q4_K);
		const uint8_t *scp = pb + 2048, *mnp = pb + 2048 + 128;
		__m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + 2048 + 256)));
		__m512 dmv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + 2048 + 256 + 32)));
		float dx[8];
		for (int c = 0; c < NC; c++) dx[c] = a->d[(size_t)(c0 + c) * nb + j];
		for (int sb = 0; sb < 8; sb++) {
			const uint8_t *qv = pb + 64 * 8 * (sb >> 1);
			__m512i W[8];
			if (sb & 1)
				for (int g = 0; g < 8; g++)
					W[g] = _mm512_and_si512(_mm512_srli_epi16(_mm512_loadu_si512(qv + 64 * g), 4), m4);
			else
				for (int g = 0; g < 8; g++) W[g] = _mm512_and_si512(_mm512_loadu_si512(qv + 64 * g), m4);
			__m512 dsc = _mm512_mul_ps(dv,
				_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(scp + 16 * sb)))));
			__m512 dm = _mm512_mul_ps(dmv,
				_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(mnp + 16 * sb)))));
			for (int c = 0; c < NC; c++) {
				size_t row = (size_t)(c0 + c);
				const int8_t *x = a->q + row * K + 256 * j + 32 * sb;
				__m512i s = _mm512_setzero_si512(), s1 = s;
				for (int g = 0; g < 8; g += 2) {
					s = _mm512_dpbusd_epi32(s, W[g], bc4(x + 4 * g));
					s1 = _mm512_dpbusd_epi32(s1, W[g + 1], bc4(x + 4 * g + 4));
				}
				s = _mm512_add_epi32(s, s1);
				acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dsc, _mm512_set1_ps(dx[c])), acc[c]);
				acc[c] = _mm512_fnmadd_ps(dm, _mm512_set1_ps(a->sf[row * (K / 32) + 8 * j + sb]), acc[c]);
			}
		}
	}
	store_tile(dst, ldd, NC, acc, rmask);
}

static AI T5 void tile_q6_K(const uint8_t *P, int K, const sl_act *a, int c0, const int NC, float *dst, int ldd,
	__mmask16 rmask) {
	const int nb = K / 256;
	__m512 acc[8];
	for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps();
	const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(0x30);
	for (int j = 0; j < nb; j++) {
		const uint8_t *pb = P + (size_t)j * PK_Q6_K;
		if (NC <= 2) prefetch_block(pb, PK_Q6_K);
		__m512 dv = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(pb + 3072 + 256)));
		float dx[8];
		for (int c = 0; c < NC; c++) dx[c] = a->d[(size_t)(c0 + c) * nb + j];
		// Sub-block sb (16 elements) = 128n + 32·part + 16·half; its four
		// groups come from g = 4·half .. 4·half+3 of (n, g).
		for (int n = 0; n < 2; n++)
			for (int part = 0; part < 4; part++)
				for (int half = 0; half < 2; half++) {
					int sb = 8 * n + 2 * part + half;
					__m512i W[4];
					for (int gi = 0; gi < 4; gi++) {
						const uint8_t *v = pb + 192 * (8 * n + 4 * half + gi);
						__m512i ql = _mm512_loadu_si512(v + 64 * (part & 1));
						__m512i qh = _mm512_loadu_si512(v + 128);
						__m512i lo = (part & 2) ? _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4) : _mm512_and_si512(ql, m4);
						__m512i hi;
						switch (part) {
						case 0: hi = _mm512_slli_epi16(qh, 4); break;
						case 1: hi = _mm512_slli_epi16(qh, 2); break;
						case 2: hi = qh; break;
						default: hi = _mm512_srli_epi16(qh, 2); break;
						}
						W[gi] = _mm512_ternarylogic_epi32(lo, hi, m3, 0xF8); // lo | (hi & m3)
					}
					__m512 dsc = _mm512_mul_ps(dv, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
									       _mm_loadu_si128((const __m128i *)(pb + 3072 + 16 * sb)))));
					for (int c = 0; c < NC; c++) {
						size_t row = (size_t)(c0 + c);
						const int8_t *x = a->q + row * K + 256 * j + 16 * sb;
						__m512i s = _mm512_set1_epi32(-32 * a->s[row * (K / 16) + 16 * j + sb]);
						__m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[1], bc4(x + 4));
						s = _mm512_dpbusd_epi32(s, W[0], bc4(x));
						s1 = _mm512_dpbusd_epi32(s1, W[3], bc4(x + 12));
						s = _mm512_dpbusd_epi32(s, W[2], bc4(x + 8));
						s = _mm512_add_epi32(s, s1);
						acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dsc, _mm512_set1_ps(dx[c])), acc[c]);
					}
				}
	}
	store_tile(dst, ldd, NC, acc, rmask);
}

#define TILE_SWITCH(fn)                                                                  \
	switch (nc) {                                                                    \
	case 1: fn(P, K, a, c0, 1, dst, ldd, rmask); break;                              \
	case 2: fn(P, K, a, c0, 2, dst, ldd, rmask); break;                              \
	case 3: fn(P, K, a, c0, 3, dst, ldd, rmask); break;                              \
	case 4: fn(P, K, a, c0, 4, dst, ldd, rmask); break;                              \
	case 5: fn(P, K, a, c0, 5, dst, ldd, rmask); break;                              \
	case 6: fn(P, K, a, c0, 6, dst, ldd, rmask); break;                              \
	case 7: fn(P, K, a, c0, 7, dst, ldd, rmask); break;                              \
	default: fn(P, K, a, c0, 8, dst, ldd, rmask); break;                             \
	}

static T5 void gemm_q4_0(const uint8_t *P, int K, const sl_act *a, int c0, int nc, float *dst, int ldd, __mmask16 rmask) {
	TILE_SWITCH(tile_q4_0)
}
static T5 void gemm_q8_0(const uint8_t *P, int K, const sl_act *a, int c0, int nc, float *dst, int ldd, __mmask16 rmask) {
	TILE_SWITCH(tile_q8_0)
}
static T5 void gemm_q4_K(const uint8_t *P, int K, const sl_act *a, int c0, int nc, float *dst, int ldd, __mmask16 rmask) {
	TILE_SWITCH(tile_q4_K)
}
static T5 void gemm_q6_K(const uint8_t *P, int K, const sl_act *a, int c0, int nc, float *dst, int ldd, __mmask16 rmask) {
	TILE_SWITCH(tile_q6_K)
}

// Computes rows 16p..16p+15 (those below M) of the outputs of activation
// rows c0..c0+nc-1 (nc ≤ SL_TILE_N) from panel p.
T5 void sl_gemm512_tile(int type, const uint8_t *packed, int M, int K, int p, const sl_act *a, int c0, int nc, float *dst,
	int ldd) {
	const uint8_t *P = packed + (size_t)p * (K / block_elems(type)) * sl_pack512_block_bytes(type);
	int left = M - p * SL_PANEL;
	__mmask16 rmask = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
	dst += (size_t)c0 * ldd + (size_t)p * SL_PANEL;
	switch (type) {
	case SL_Q4_0: gemm_q4_0(P, K, a, c0, nc, dst, ldd, rmask); break;
	case SL_Q8_0: gemm_q8_0(P, K, a, c0, nc, dst, ldd, rmask); break;
	case SL_Q4_K: gemm_q4_K(P, K, a, c0, nc, dst, ldd, rmask); break;
	case SL_Q6_K: gemm_q6_K(P, K, a, c0, nc, dst, ldd, rmask); break;
	}
}


// ---- F16 weights × F32 activations ----

// R weight rows × C activation rows, 16 elements per step, products summed
// in F32 and reduced once at the end.
static AI T5 void tile_f16(const uint16_t *w, size_t ws, const float *x, size_t xs, int K, const int R, const int C,
	float *dst, int ldd) {
	__m512 acc[4][6];
	for (int r = 0; r < R; r++)
		for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
	int k = 0;
	for (; k + 16 <= K; k += 16) {
		__m512 wv[4];
		// With few activation rows the weight stream is the bottleneck:
		// fetch the next R rows' lines while these are computed.
		if (C <= 2 && !(k & 31))
			for (int r = 0; r < R; r++) _mm_prefetch((const char *)(w + (r + R) * ws + k), _MM_HINT_T0);
		for (int r = 0; r < R; r++) wv[r] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + r * ws + k)));
		for (int c = 0; c < C; c++) {
			__m512 xv = _mm512_loadu_ps(x + c * xs + k);
			for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
		}
	}
	if (k < K) {
		__mmask16 m = (__mmask16)((1u << (K - k)) - 1);
		__m512 wv[4];
		for (int r = 0; r < R; r++) wv[r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + r * ws + k));
		for (int c = 0; c < C; c++) {
			__m512 xv = _mm512_maskz_loadu_ps(m, x + c * xs + k);
			for (int r = 0; r < R; r++) acc[r][c] = _mm512_fmadd_ps(wv[r], xv, acc[r][c]);
		}
	}
	for (int c = 0; c < C; c++)
		for (int r = 0; r < R; r++) dst[(size_t)c * ldd + r] = _mm512_reduce_add_ps(acc[r][c]);
}

#define F16_C(R)                                                                    \
	switch (nc) {                                                               \
	case 1: tile_f16(w, ws, x, xs, K, R, 1, dst, ldd); break;                   \
	case 2: tile_f16(w, ws, x, xs, K, R, 2, dst, ldd); break;                   \
	case 3: tile_f16(w, ws, x, xs, K, R, 3, dst, ldd); break;                   \
	case 4: tile_f16(w, ws, x, xs, K, R, 4, dst, ldd); break;                   \
	case 5: tile_f16(w, ws, x, xs, K, R, 5, dst, ldd); break;                   \
	default: tile_f16(w, ws, x, xs, K, R, 6, dst, ldd); break;                  \
	}

// Rows r0..r0+nr-1 of the outputs of activation rows c0..c0+nc-1 (nr ≤ 4,
// nc ≤ 6) for an F16 weight with row stride ws elements.
T5 void sl_gemm512_f16(const uint16_t *w, size_t ws, int K, int r0, int nr, const float *x, int c0, int nc, float *dst,
	int ldd) {
	w += (size_t)r0 * ws;
	size_t xs = (size_t)K;
	x += (size_t)c0 * xs;
	dst += (size_t)c0 * ldd + r0;
	switch (nr) {
	case 1: F16_C(1) break;
	case 2: F16_C(2) break;
	case 3: F16_C(3) break;
	default: F16_C(4) break;
	}
}

#else

void sl_gemm512_f16(const uint16_t *w, size_t ws, int K, int r0, int nr, const float *x, int c0, int nc, float *dst,
	int ldd) {
	(void)w, (void)ws, (void)K, (void)r0, (void)nr, (void)x, (void)c0, (void)nc, (void)dst, (void)ldd;
}

size_t sl_pack512_block_bytes(int type) {
	(void)type;
	return 0;
}
size_t sl_pack512_bytes(int type, int M, int K) {
	(void)type, (void)M, (void)K;
	return 0;
}
void sl_pack512_panel(int type, const void *w, size_t ws, int M, int K, int p, uint8_t *out) {
	(void)type, (void)w, (void)ws, (void)M, (void)K, (void)p, (void)out;
}
void sl_act_prepare(int xtype, const void *xq, size_t xs, int K, int row, sl_act *a) {
	(void)xtype, (void)xq, (void)xs, (void)K, (void)row, (void)a;
}
T5 void sl_gemm512_tile(int type, const uint8_t *packed, int M, int K, int p, const sl_act *a, int c0, int nc, float *dst,
	int ldd) {
	(void)type, (void)packed, (void)M, (void)K, (void)p, (void)a, (void)c0, (void)nc, (void)dst, (void)ldd;
}
#endif
