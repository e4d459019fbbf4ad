// Portable C kernels: plain scalar code that compiles on any target. They
// define the results the vector paths must reproduce (integer dot products
// are exact, so only the float accumulation order may differ).
#include <math.h>
#include <pthread.h>

#include "sl.h"

// F16 to F32 through a table: the bit-level conversion branches on every
// element, which dominates the portable F16 kernels.
static float f16_table[65536];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void f16_table_init(void) {
	for (uint32_t i = 0; i < 65536; i++) f16_table[i] = sl_h2f((uint16_t)i);
}

static inline float h2f_t(uint16_t h) { return f16_table[h]; }

// ---- activation quantizers (GGML reference rounding) ----

void sl_quantize_q8_0_ref(const float *x, void *vy, int K) {
	blk_q8_0 *y = vy;
	for (int i = 0; i < K / SL_QK; i++, x += SL_QK) {
		float amax = 0;
		for (int j = 0; j < SL_QK; j++) {
			float a = fabsf(x[j]);
			if (a > amax) amax = a;
		}
		float d = amax / 127.0f;
		float id = d != 0 ? 1.0f / d : 0.0f;
		y[i].d = sl_f2h(d);
		for (int j = 0; j < SL_QK; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
	}
}

void sl_quantize_q8_1_ref(const float *x, void *vy, int K) {
	blk_q8_1 *y = vy;
	for (int i = 0; i < K / SL_QK; i++, x += SL_QK) {
		float amax = 0;
		for (int j = 0; j < SL_QK; j++) {
			float a = fabsf(x[j]);
			if (a > amax) amax = a;
		}
		float d = amax / 127.0f;
		float id = d != 0 ? 1.0f / d : 0.0f;
		y[i].d = sl_f2h(d);
		int sum = 0;
		for (int j = 0; j < SL_QK; j++) {
			int q = (int)roundf(x[j] * id);
			y[i].qs[j] = (int8_t)q;
			sum += q;
		}
		y[i].s = sl_f2h((float)sum * d);
	}
}

// Round to nearest, ties to even, for |f| < 2^22 (GGML's nearest_int).
static inline int nearest_int(float f) {
	float v = f + 12582912.0f;
	int32_t i;
	memcpy(&i, &v, 4);
	return (i & 0x007fffff) - 0x00400000;
}

void sl_quantize_q8_K_ref(const float *x, void *vy, int K) {
	blk_q8_K *y = vy;
	for (int i = 0; i < K / SL_QKK; i++, x += SL_QKK) {
		float maxv = 0, amax = 0;
		for (int j = 0; j < SL_QKK; j++) {
			float a = fabsf(x[j]);
			if (a > amax) {
				amax = a;
				maxv = x[j];
			}
		}
		if (amax == 0) {
			memset(&y[i], 0, sizeof y[i]);
			continue;
		}
		float iscale = -127.0f / maxv;
		for (int j = 0; j < SL_QKK; j++) {
			int v = nearest_int(iscale * x[j]);
			y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
		}
		for (int g = 0; g < 16; g++) {
			int s = 0;
			for (int l = 0; l < 16; l++) s += y[i].qs[16 * g + l];
			y[i].bsums[g] = (int16_t)s;
		}
		y[i].d = 1.0f / iscale;
	}
}

// ---- block unpacking shared by dot products and dequantizers ----

// Q4_K / Q5_K: 6-bit scale and min of sub-block j (0..7).
static inline void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
	if (j < 4) {
		*sc = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
		*m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

// Q3_K: signed 6-bit scale of sub-block j (0..15).
static inline int scale_q3k(int j, const uint8_t *s) {
	int lo = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
	int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
	return (lo | (hi << 4)) - 32;
}

// Quants of a Q2_K block, 0..3, element order.
static inline void unpack_q2k(const blk_q2_K *b, int8_t *q) {
	for (int n = 0; n < 2; n++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++) q[128 * n + 32 * j + l] = (b->qs[32 * n + l] >> (2 * j)) & 3;
}

// Quants of a Q3_K block, -4..3.
static inline void unpack_q3k(const blk_q3_K *b, int8_t *q) {
	for (int n = 0; n < 2; n++)
		for (int j = 0; j < 4; j++)
			for (int l = 0; l < 32; l++) {
				int v = (b->qs[32 * n + l] >> (2 * j)) & 3;
				int h = (b->hmask[l] >> (4 * n + j)) & 1;
				q[128 * n + 32 * j + l] = (int8_t)(v - (h ? 0 : 4));
			}
}

// Quants of a Q4_K block, 0..15.
static inline void unpack_q4k(const blk_q4_K *b, int8_t *q) {
	for (int j = 0; j < 4; j++)
		for (int l = 0; l < 32; l++) {
			q[64 * j + l] = b->qs[32 * j + l] & 15;
			q[64 * j + 32 + l] = b->qs[32 * j + l] >> 4;
		}
}

// Quants of a Q5_K block, 0..31.
static inline void unpack_q5k(const blk_q5_K *b, int8_t *q) {
	for (int j = 0; j < 4; j++)
		for (int l = 0; l < 32; l++) {
			int h0 = (b->qh[l] >> (2 * j)) & 1, h1 = (b->qh[l] >> (2 * j + 1)) & 1;
			q[64 * j + l] = (int8_t)((b->qs[32 * j + l] & 15) | (h0 << 4));
			q[64 * j + 32 + l] = (int8_t)((b->qs[32 * j + l] >> 4) | (h1 << 4));
		}
}

// Quants of a Q6_K block, -32..31.
static inline void unpack_q6k(const blk_q6_K *b, int8_t *q) {
	const uint8_t *ql = b->ql, *qh = b->qh;
	for (int n = 0; n < 2; n++, ql += 64, qh += 32, q += 128)
		for (int l = 0; l < 32; l++) {
			q[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
			q[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
			q[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
			q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
		}
}

static inline int dot_i8(const int8_t *a, const int8_t *b, int n) {
	int s = 0;
	for (int i = 0; i < n; i++) s += a[i] * b[i];
	return s;
}

// ---- dot products ----

static float vd_f32(int K, const void *vw, const void *vx) {
	const float *w = vw, *x = vx;
	float acc[8] = {0};
	int i = 0;
	for (; i + 8 <= K; i += 8)
		for (int j = 0; j < 8; j++) acc[j] += w[i + j] * x[i + j];
	float s = 0;
	for (; i < K; i++) s += w[i] * x[i];
	for (int j = 0; j < 8; j++) s += acc[j];
	return s;
}

static float vd_f16(int K, const void *vw, const void *vx) {
	const uint16_t *w = vw;
	const float *x = vx;
	float acc[8] = {0};
	int i = 0;
	for (; i + 8 <= K; i += 8)
		for (int j = 0; j < 8; j++) acc[j] += h2f_t(w[i + j]) * x[i + j];
	float s = 0;
	for (; i < K; i++) s += h2f_t(w[i]) * x[i];
	for (int j = 0; j < 8; j++) s += acc[j];
	return s;
}

static float vd_bf16(int K, const void *vw, const void *vx) {
	const uint16_t *w = vw;
	const float *x = vx;
	float acc[8] = {0};
	int i = 0;
	for (; i + 8 <= K; i += 8)
		for (int j = 0; j < 8; j++) acc[j] += sl_bf2f(w[i + j]) * x[i + j];
	float s = 0;
	for (; i < K; i++) s += sl_bf2f(w[i]) * x[i];
	for (int j = 0; j < 8; j++) s += acc[j];
	return s;
}

static float vd_q4_0(int K, const void *vw, const void *vx) {
	const blk_q4_0 *w = vw;
	const blk_q8_0 *x = vx;
	float s = 0;
	for (int i = 0; i < K / SL_QK; i++) {
		int sumi = 0;
		for (int j = 0; j < 16; j++) {
			int v0 = (w[i].qs[j] & 15) - 8, v1 = (w[i].qs[j] >> 4) - 8;
			sumi += v0 * x[i].qs[j] + v1 * x[i].qs[j + 16];
		}
		s += (float)sumi * (sl_h2f(w[i].d) * sl_h2f(x[i].d));
	}
	return s;
}

static float vd_q4_1(int K, const void *vw, const void *vx) {
	const blk_q4_1 *w = vw;
	const blk_q8_1 *x = vx;
	float s = 0;
	for (int i = 0; i < K / SL_QK; i++) {
		int sumi = 0;
		for (int j = 0; j < 16; j++)
			sumi += (w[i].qs[j] & 15) * x[i].qs[j] + (w[i].qs[j] >> 4) * x[i].qs[j + 16];
		s += (float)sumi * (sl_h2f(w[i].d) * sl_h2f(x[i].d)) + sl_h2f(w[i].m) * sl_h2f(x[i].s);
	}
	return s;
}

static float vd_q5_0(int K, const void *vw, const void *vx) {
	const blk_q5_0 *w = vw;
	const blk_q8_0 *x = vx;
	float s = 0;
	for (int i = 0; i < K / SL_QK; i++) {
		uint32_t qh;
		memcpy(&qh, w[i].qh, 4);
		int sumi = 0;
		for (int j = 0; j < 16; j++) {
			int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
			int v0 = ((w[i].qs[j] & 15) | (h0 << 4)) - 16;
			int v1 = ((w[i].qs[j] >> 4) | (h1 << 4)) - 16;
			sumi += v0 * x[i].qs[j] + v1 * x[i].qs[j + 16];
		}
		s += (float)sumi * (sl_h2f(w[i].d) * sl_h2f(x[i].d));
	}
	return s;
}

static float vd_q5_1(int K, const void *vw, const void *vx) {
	const blk_q5_1 *w = vw;
	const blk_q8_1 *x = vx;
	float s = 0;
	for (int i = 0; i < K / SL_QK; i++) {
		uint32_t qh;
		memcpy(&qh, w[i].qh, 4);
		int sumi = 0;
		for (int j = 0; j < 16; j++) {
			int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
			int v0 = (w[i].qs[j] & 15) | (h0 << 4);
			int v1 = (w[i].qs[j] >> 4) | (h1 << 4);
			sumi += v0 * x[i].qs[j] + v1 * x[i].qs[j + 16];
		}
		s += (float)sumi * (sl_h2f(w[i].d) * sl_h2f(x[i].d)) + sl_h2f(w[i].m) * sl_h2f(x[i].s);
	}
	return s;
}

static float vd_q8_0(int K, const void *vw, const void *vx) {
	const blk_q8_0 *w = vw;
	const blk_q8_0 *x = vx;
	float s = 0;
	for (int i = 0; i < K / SL_QK; i++)
		s += (float)dot_i8(w[i].qs, x[i].qs, 32) * (sl_h2f(w[i].d) * sl_h2f(x[i].d));
	return s;
}

static float vd_q2_K(int K, const void *vw, const void *vx) {
	const blk_q2_K *w = vw;
	const blk_q8_K *x = vx;
	float s = 0;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++) {
		unpack_q2k(&w[i], q);
		int isum = 0, summ = 0;
		for (int g = 0; g < 16; g++) {
			isum += (w[i].scales[g] & 15) * dot_i8(q + 16 * g, x[i].qs + 16 * g, 16);
			summ += (w[i].scales[g] >> 4) * x[i].bsums[g];
		}
		s += x[i].d * sl_h2f(w[i].d) * (float)isum - x[i].d * sl_h2f(w[i].dmin) * (float)summ;
	}
	return s;
}

static float vd_q3_K(int K, const void *vw, const void *vx) {
	const blk_q3_K *w = vw;
	const blk_q8_K *x = vx;
	float s = 0;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++) {
		unpack_q3k(&w[i], q);
		int isum = 0;
		for (int g = 0; g < 16; g++)
			isum += scale_q3k(g, w[i].scales) * dot_i8(q + 16 * g, x[i].qs + 16 * g, 16);
		s += x[i].d * sl_h2f(w[i].d) * (float)isum;
	}
	return s;
}

static float vd_q4_K(int K, const void *vw, const void *vx) {
	const blk_q4_K *w = vw;
	const blk_q8_K *x = vx;
	float s = 0;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++) {
		unpack_q4k(&w[i], q);
		int isum = 0, summ = 0;
		for (int g = 0; g < 8; g++) {
			int sc, m;
			scale_min_k4(g, w[i].scales, &sc, &m);
			isum += sc * dot_i8(q + 32 * g, x[i].qs + 32 * g, 32);
			summ += m * (x[i].bsums[2 * g] + x[i].bsums[2 * g + 1]);
		}
		s += x[i].d * sl_h2f(w[i].d) * (float)isum - x[i].d * sl_h2f(w[i].dmin) * (float)summ;
	}
	return s;
}

static float vd_q5_K(int K, const void *vw, const void *vx) {
	const blk_q5_K *w = vw;
	const blk_q8_K *x = vx;
	float s = 0;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++) {
		unpack_q5k(&w[i], q);
		int isum = 0, summ = 0;
		for (int g = 0; g < 8; g++) {
			int sc, m;
			scale_min_k4(g, w[i].scales, &sc, &m);
			isum += sc * dot_i8(q + 32 * g, x[i].qs + 32 * g, 32);
			summ += m * (x[i].bsums[2 * g] + x[i].bsums[2 * g + 1]);
		}
		s += x[i].d * sl_h2f(w[i].d) * (float)isum - x[i].d * sl_h2f(w[i].dmin) * (float)summ;
	}
	return s;
}

static float vd_q6_K(int K, const void *vw, const void *vx) {
	const blk_q6_K *w = vw;
	const blk_q8_K *x = vx;
	float s = 0;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++) {
		unpack_q6k(&w[i], q);
		int isum = 0;
		for (int g = 0; g < 16; g++) isum += w[i].scales[g] * dot_i8(q + 16 * g, x[i].qs + 16 * g, 16);
		s += x[i].d * sl_h2f(w[i].d) * (float)isum;
	}
	return s;
}

// ---- dequantizers (GGML's order of operations, for bit-exact rows) ----

static void dq_f32(const void *w, float *y, int K) { memcpy(y, w, (size_t)K * 4); }

static void dq_f16(const void *vw, float *y, int K) {
	const uint16_t *w = vw;
	for (int i = 0; i < K; i++) y[i] = h2f_t(w[i]);
}

static void dq_bf16(const void *vw, float *y, int K) {
	const uint16_t *w = vw;
	for (int i = 0; i < K; i++) y[i] = sl_bf2f(w[i]);
}

static void dq_q4_0(const void *vw, float *y, int K) {
	const blk_q4_0 *w = vw;
	for (int i = 0; i < K / SL_QK; i++, y += SL_QK) {
		float d = sl_h2f(w[i].d);
		for (int j = 0; j < 16; j++) {
			y[j] = (float)((w[i].qs[j] & 15) - 8) * d;
			y[j + 16] = (float)((w[i].qs[j] >> 4) - 8) * d;
		}
	}
}

static void dq_q4_1(const void *vw, float *y, int K) {
	const blk_q4_1 *w = vw;
	for (int i = 0; i < K / SL_QK; i++, y += SL_QK) {
		float d = sl_h2f(w[i].d), m = sl_h2f(w[i].m);
		for (int j = 0; j < 16; j++) {
			y[j] = (float)(w[i].qs[j] & 15) * d + m;
			y[j + 16] = (float)(w[i].qs[j] >> 4) * d + m;
		}
	}
}

static void dq_q5_0(const void *vw, float *y, int K) {
	const blk_q5_0 *w = vw;
	for (int i = 0; i < K / SL_QK; i++, y += SL_QK) {
		float d = sl_h2f(w[i].d);
		uint32_t qh;
		memcpy(&qh, w[i].qh, 4);
		for (int j = 0; j < 16; j++) {
			int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
			y[j] = (float)(((w[i].qs[j] & 15) | (h0 << 4)) - 16) * d;
			y[j + 16] = (float)(((w[i].qs[j] >> 4) | (h1 << 4)) - 16) * d;
		}
	}
}

static void dq_q5_1(const void *vw, float *y, int K) {
	const blk_q5_1 *w = vw;
	for (int i = 0; i < K / SL_QK; i++, y += SL_QK) {
		float d = sl_h2f(w[i].d), m = sl_h2f(w[i].m);
		uint32_t qh;
		memcpy(&qh, w[i].qh, 4);
		for (int j = 0; j < 16; j++) {
			int h0 = (qh >> j) & 1, h1 = (qh >> (j + 16)) & 1;
			y[j] = (float)((w[i].qs[j] & 15) | (h0 << 4)) * d + m;
			y[j + 16] = (float)((w[i].qs[j] >> 4) | (h1 << 4)) * d + m;
		}
	}
}

static void dq_q8_0(const void *vw, float *y, int K) {
	const blk_q8_0 *w = vw;
	for (int i = 0; i < K / SL_QK; i++, y += SL_QK) {
		float d = sl_h2f(w[i].d);
		for (int j = 0; j < 32; j++) y[j] = (float)w[i].qs[j] * d;
	}
}

static void dq_q2_K(const void *vw, float *y, int K) {
	const blk_q2_K *w = vw;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++, y += SL_QKK) {
		float d = sl_h2f(w[i].d), dmin = sl_h2f(w[i].dmin);
		unpack_q2k(&w[i], q);
		for (int g = 0; g < 16; g++) {
			float dl = d * (float)(w[i].scales[g] & 15), ml = dmin * (float)(w[i].scales[g] >> 4);
			for (int l = 0; l < 16; l++) y[16 * g + l] = dl * (float)q[16 * g + l] - ml;
		}
	}
}

static void dq_q3_K(const void *vw, float *y, int K) {
	const blk_q3_K *w = vw;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++, y += SL_QKK) {
		float d = sl_h2f(w[i].d);
		unpack_q3k(&w[i], q);
		for (int g = 0; g < 16; g++) {
			float dl = d * (float)scale_q3k(g, w[i].scales);
			for (int l = 0; l < 16; l++) y[16 * g + l] = dl * (float)q[16 * g + l];
		}
	}
}

static void dq_q4_K(const void *vw, float *y, int K) {
	const blk_q4_K *w = vw;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++, y += SL_QKK) {
		float d = sl_h2f(w[i].d), dmin = sl_h2f(w[i].dmin);
		unpack_q4k(&w[i], q);
		for (int g = 0; g < 8; g++) {
			int sc, m;
			scale_min_k4(g, w[i].scales, &sc, &m);
			float dl = d * (float)sc, ml = dmin * (float)m;
			for (int l = 0; l < 32; l++) y[32 * g + l] = dl * (float)q[32 * g + l] - ml;
		}
	}
}

static void dq_q5_K(const void *vw, float *y, int K) {
	const blk_q5_K *w = vw;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++, y += SL_QKK) {
		float d = sl_h2f(w[i].d), dmin = sl_h2f(w[i].dmin);
		unpack_q5k(&w[i], q);
		for (int g = 0; g < 8; g++) {
			int sc, m;
			scale_min_k4(g, w[i].scales, &sc, &m);
			float dl = d * (float)sc, ml = dmin * (float)m;
			for (int l = 0; l < 32; l++) y[32 * g + l] = dl * (float)q[32 * g + l] - ml;
		}
	}
}

static void dq_q6_K(const void *vw, float *y, int K) {
	const blk_q6_K *w = vw;
	int8_t q[SL_QKK];
	for (int i = 0; i < K / SL_QKK; i++, y += SL_QKK) {
		float d = sl_h2f(w[i].d);
		unpack_q6k(&w[i], q);
		for (int g = 0; g < 16; g++) {
			float dl = d * (float)w[i].scales[g];
			for (int l = 0; l < 16; l++) y[16 * g + l] = dl * (float)q[16 * g + l];
		}
	}
}

// ---- float helpers and elementwise ops ----

static float p_dot_f32(const float *a, const float *b, int n) { return vd_f32(n, b, a); }
static float p_dot_f16(const float *a, const uint16_t *b, int n) { return vd_f16(n, b, a); }

static void p_axpy_f32(float *y, float a, const float *x, int n) {
	for (int i = 0; i < n; i++) y[i] += a * x[i];
}

static void p_axpy_f16(float *y, float a, const uint16_t *x, int n) {
	for (int i = 0; i < n; i++) y[i] += a * h2f_t(x[i]);
}

static void p_dot_f16_n(const float *q, size_t qs, int nh, const uint16_t *k, int n, float *s) {
	for (int h = 0; h < nh; h++) s[h] = vd_f16(n, k, q + h * qs);
}

static void p_dot_f32_n(const float *q, size_t qs, int nh, const float *k, int n, float *s) {
	for (int h = 0; h < nh; h++) s[h] = vd_f32(n, k, q + h * qs);
}

static void p_axpy_f16_n(float *y, size_t ys, int nh, const float *a, const uint16_t *v, int n) {
	for (int h = 0; h < nh; h++) p_axpy_f16(y + h * ys, a[h], v, n);
}

static void p_axpy_f32_n(float *y, size_t ys, int nh, const float *a, const float *v, int n) {
	for (int h = 0; h < nh; h++) p_axpy_f32(y + h * ys, a[h], v, n);
}

static void p_scale(float *y, float a, int n) {
	for (int i = 0; i < n; i++) y[i] *= a;
}

static void p_f32_to_f16(uint16_t *y, const float *x, int n) {
	for (int i = 0; i < n; i++) y[i] = sl_f2h(x[i]);
}

static void p_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
	double sum = 0;
	for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
	float mean = (float)(sum / n);
	float sc = 1.0f / sqrtf(mean + eps);
	for (int i = 0; i < n; i++) y[i] = (x[i] * sc) * w[i];
}

static void p_add(float *y, const float *a, const float *b, int n) {
	for (int i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static void p_silu_mul(float *y, const float *g, const float *u, int n) {
	for (int i = 0; i < n; i++) {
		float v = g[i];
		y[i] = v / (1.0f + expf(-v)) * u[i];
	}
}

static void p_softmax(float *x, int n) {
	float m = -INFINITY;
	for (int i = 0; i < n; i++)
		if (x[i] > m) m = x[i];
	double sum = 0;
	for (int i = 0; i < n; i++) {
		x[i] = expf(x[i] - m);
		sum += x[i];
	}
	float inv = (float)(1.0 / sum);
	for (int i = 0; i < n; i++) x[i] *= inv;
}

static void p_exp(float *x, int n) {
	for (int i = 0; i < n; i++) x[i] = expf(x[i]);
}

void sl_kernels_portable(sl_kernels *k) {
	pthread_once(&f16_once, f16_table_init);
	memset(k, 0, sizeof *k);
	k->name = "portable";
	for (int t = 0; t < SL_NTYPES; t++) k->vdt[t] = -1;
	k->vdt[SL_F32] = SL_F32;
	k->vdt[SL_F16] = SL_F32;
	k->vdt[SL_BF16] = SL_F32;
	k->vdt[SL_Q4_0] = SL_Q8_0;
	k->vdt[SL_Q5_0] = SL_Q8_0;
	k->vdt[SL_Q8_0] = SL_Q8_0;
	k->vdt[SL_Q4_1] = SL_Q8_1;
	k->vdt[SL_Q5_1] = SL_Q8_1;
	k->vdt[SL_Q2_K] = SL_Q8_K;
	k->vdt[SL_Q3_K] = SL_Q8_K;
	k->vdt[SL_Q4_K] = SL_Q8_K;
	k->vdt[SL_Q5_K] = SL_Q8_K;
	k->vdt[SL_Q6_K] = SL_Q8_K;

	k->vec_dot[SL_F32] = vd_f32;
	k->vec_dot[SL_F16] = vd_f16;
	k->vec_dot[SL_BF16] = vd_bf16;
	k->vec_dot[SL_Q4_0] = vd_q4_0;
	k->vec_dot[SL_Q4_1] = vd_q4_1;
	k->vec_dot[SL_Q5_0] = vd_q5_0;
	k->vec_dot[SL_Q5_1] = vd_q5_1;
	k->vec_dot[SL_Q8_0] = vd_q8_0;
	k->vec_dot[SL_Q2_K] = vd_q2_K;
	k->vec_dot[SL_Q3_K] = vd_q3_K;
	k->vec_dot[SL_Q4_K] = vd_q4_K;
	k->vec_dot[SL_Q5_K] = vd_q5_K;
	k->vec_dot[SL_Q6_K] = vd_q6_K;

	k->quantize[SL_Q8_0] = sl_quantize_q8_0_ref;
	k->quantize[SL_Q8_1] = sl_quantize_q8_1_ref;
	k->quantize[SL_Q8_K] = sl_quantize_q8_K_ref;

	k->dequant[SL_F32] = dq_f32;
	k->dequant[SL_F16] = dq_f16;
	k->dequant[SL_BF16] = dq_bf16;
	k->dequant[SL_Q4_0] = dq_q4_0;
	k->dequant[SL_Q4_1] = dq_q4_1;
	k->dequant[SL_Q5_0] = dq_q5_0;
	k->dequant[SL_Q5_1] = dq_q5_1;
	k->dequant[SL_Q8_0] = dq_q8_0;
	k->dequant[SL_Q2_K] = dq_q2_K;
	k->dequant[SL_Q3_K] = dq_q3_K;
	k->dequant[SL_Q4_K] = dq_q4_K;
	k->dequant[SL_Q5_K] = dq_q5_K;
	k->dequant[SL_Q6_K] = dq_q6_K;

	k->dot_f32 = p_dot_f32;
	k->dot_f16 = p_dot_f16;
	k->axpy_f32 = p_axpy_f32;
	k->axpy_f16 = p_axpy_f16;
	k->scale = p_scale;
	k->dot_f16_n = p_dot_f16_n;
	k->dot_f32_n = p_dot_f32_n;
	k->axpy_f16_n = p_axpy_f16_n;
	k->axpy_f32_n = p_axpy_f32_n;
	k->f32_to_f16 = p_f32_to_f16;
	k->rmsnorm = p_rmsnorm;
	k->add = p_add;
	k->silu_mul = p_silu_mul;
	k->softmax = p_softmax;
	k->exp_inplace = p_exp;
}
