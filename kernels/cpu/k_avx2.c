// AVX2 + FMA + F16C kernels. Every function carries a target attribute, so
// the package builds without -m flags and this code only runs after the
// CPU check in sl_path_available.
#include "sl.h"

#if SL_X86
#include <immintrin.h>
#include <math.h>

#define T2 __attribute__((target("avx2,fma,f16c")))

// ---- helpers ----

static inline T2 float hsum8(__m256 v) {
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline T2 int hsum8i(__m256i v) {
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
	return _mm_cvtsi128_si32(s);
}

static inline T2 float hmax8(__m256 v) {
	__m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_max_ps(s, _mm_movehl_ps(s, s));
	s = _mm_max_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline T2 float h2f(uint16_t h) { return _cvtsh_ss(h); }

// 32 nibbles of 16 bytes: low nibbles in bytes 0..15, high in 16..31.
static inline T2 __m256i nibbles32(const uint8_t *p) {
	__m128i t = _mm_loadu_si128((const __m128i *)p);
	__m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
	return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

// 32 bits expanded to 32 bytes of 0xFF (bit set) or 0x00.
static inline T2 __m256i bits32(const uint8_t *p) {
	uint32_t x;
	memcpy(&x, p, 4);
	__m256i v = _mm256_set1_epi32((int)x);
	const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
		3, 3, 3, 3, 3, 3, 3, 3);
	v = _mm256_shuffle_epi8(v, shuf);
	const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
	v = _mm256_and_si256(v, bit);
	return _mm256_cmpeq_epi8(v, bit);
}

// Σ over pairs of u8×s8 products, widened to 8 int32 sums.
static inline T2 __m256i dot_us8(__m256i u, __m256i s) {
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Signed×signed byte products summed to 8 int32 lanes (|x| ≤ 127 or x = -128
// with |y| ≤ 127 stays within maddubs' int16 range).
static inline T2 __m256i dot_ss8(__m256i x, __m256i y) {
	return dot_us8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

// ---- activation quantizers (same bytes as the portable reference) ----

// roundf (half away from zero) of floats that are integers below 2^23 after
// rounding, exactly.
static inline T2 __m256 round_away(__m256 v) {
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
	__m256 f = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
	__m256 ge = _mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
	__m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(v, sign));
	return _mm256_add_ps(t, _mm256_and_ps(ge, one));
}

// Packs 4×8 int32 (in element order) into 32 int8.
static inline T2 __m256i pack32(__m256i i0, __m256i i1, __m256i i2, __m256i i3) {
	__m256i a = _mm256_packs_epi32(i0, i1);
	__m256i b = _mm256_packs_epi32(i2, i3);
	__m256i c = _mm256_packs_epi16(a, b);
	return _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

static inline T2 float amax32(const float *x) {
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
	m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8)));
	m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 16)));
	m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 24)));
	return hmax8(m);
}

static T2 void q8_0_avx2(const float *x, void *vy, int K) {
	blk_q8_0 *y = vy;
	for (int i = 0; i < K / 32; i++, x += 32) {
		float amax = amax32(x);
		float d = amax / 127.0f;
		float id = d != 0 ? 1.0f / d : 0.0f;
		y[i].d = sl_f2h(d);
		__m256 vid = _mm256_set1_ps(id);
		__m256i q[4];
		for (int j = 0; j < 4; j++)
			q[j] = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), vid)));
		_mm256_storeu_si256((__m256i *)y[i].qs, pack32(q[0], q[1], q[2], q[3]));
	}
}

static T2 void q8_1_avx2(const float *x, void *vy, int K) {
	blk_q8_1 *y = vy;
	for (int i = 0; i < K / 32; i++, x += 32) {
		float amax = amax32(x);
		float d = amax / 127.0f;
		float id = d != 0 ? 1.0f / d : 0.0f;
		y[i].d = sl_f2h(d);
		__m256 vid = _mm256_set1_ps(id);
		__m256i q[4];
		for (int j = 0; j < 4; j++)
			q[j] = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * j), vid)));
		int sum = hsum8i(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
		y[i].s = sl_f2h((float)sum * d);
		_mm256_storeu_si256((__m256i *)y[i].qs, pack32(q[0], q[1], q[2], q[3]));
	}
}

static T2 void q8_K_avx2(const float *x, void *vy, int K) {
	blk_q8_K *y = vy;
	const __m256 sign = _mm256_set1_ps(-0.0f);
	for (int i = 0; i < K / 256; i++, x += 256) {
		__m256 m = _mm256_setzero_ps();
		for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
		float amax = hmax8(m);
		if (amax == 0) {
			memset(&y[i], 0, sizeof y[i]);
			continue;
		}
		// The first element of largest magnitude fixes the scale's sign.
		float maxv = 0;
		for (int j = 0; j < 256; j++)
			if (fabsf(x[j]) == amax) {
				maxv = x[j];
				break;
			}
		float iscale = -127.0f / maxv;
		__m256 vs = _mm256_set1_ps(iscale);
		const __m256i lim = _mm256_set1_epi32(127);
		for (int g = 0; g < 8; g++) {
			__m256i q[4];
			for (int j = 0; j < 4; j++) {
				__m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * g + 8 * j), vs);
				v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
				q[j] = _mm256_min_epi32(_mm256_cvtps_epi32(v), lim);
			}
			y[i].bsums[2 * g] = (int16_t)hsum8i(_mm256_add_epi32(q[0], q[1]));
			y[i].bsums[2 * g + 1] = (int16_t)hsum8i(_mm256_add_epi32(q[2], q[3]));
			_mm256_storeu_si256((__m256i *)(y[i].qs + 32 * g), pack32(q[0], q[1], q[2], q[3]));
		}
		y[i].d = 1.0f / iscale;
	}
}

// ---- float dot products ----

static T2 float vd_f32_avx2(int K, const void *vw, const void *vx) {
	const float *w = vw, *x = vx;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int i = 0;
	for (; i + 32 <= K; i += 32) {
		a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
		a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
		a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
	}
	for (; i + 8 <= K; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
	float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < K; i++) s += w[i] * x[i];
	return s;
}

static inline T2 __m256 ld_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static inline T2 __m256 ld_bf16(const uint16_t *p) {
	__m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static T2 float vd_f16_avx2(int K, const void *vw, const void *vx) {
	const uint16_t *w = vw;
	const float *x = vx;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int i = 0;
	for (; i + 32 <= K; i += 32) {
		a0 = _mm256_fmadd_ps(ld_f16(w + i), _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(ld_f16(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
		a2 = _mm256_fmadd_ps(ld_f16(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
		a3 = _mm256_fmadd_ps(ld_f16(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
	}
	for (; i + 8 <= K; i += 8) a0 = _mm256_fmadd_ps(ld_f16(w + i), _mm256_loadu_ps(x + i), a0);
	float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < K; i++) s += sl_h2f(w[i]) * x[i];
	return s;
}

static T2 float vd_bf16_avx2(int K, const void *vw, const void *vx) {
	const uint16_t *w = vw;
	const float *x = vx;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int i = 0;
	for (; i + 32 <= K; i += 32) {
		a0 = _mm256_fmadd_ps(ld_bf16(w + i), _mm256_loadu_ps(x + i), a0);
		a1 = _mm256_fmadd_ps(ld_bf16(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
		a2 = _mm256_fmadd_ps(ld_bf16(w + i + 16), _mm256_loadu_ps(x + i + 16), a2);
		a3 = _mm256_fmadd_ps(ld_bf16(w + i + 24), _mm256_loadu_ps(x + i + 24), a3);
	}
	for (; i + 8 <= K; i += 8) a0 = _mm256_fmadd_ps(ld_bf16(w + i), _mm256_loadu_ps(x + i), a0);
	float s = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
	for (; i < K; i++) s += sl_bf2f(w[i]) * x[i];
	return s;
}

// ---- 32-element block formats ----

static T2 float vd_q4_0_avx2(int K, const void *vw, const void *vx) {
	const blk_q4_0 *w = vw;
	const blk_q8_0 *x = vx;
	const __m256i off = _mm256_set1_epi8(8);
	__m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
	int nb = K / 32, i = 0;
	for (; i + 2 <= nb; i += 2) {
		__m256i q0 = _mm256_sub_epi8(nibbles32(w[i].qs), off);
		__m256i q1 = _mm256_sub_epi8(nibbles32(w[i + 1].qs), off);
		__m256i p0 = dot_ss8(q0, _mm256_loadu_si256((const __m256i *)x[i].qs));
		__m256i p1 = dot_ss8(q1, _mm256_loadu_si256((const __m256i *)x[i + 1].qs));
		acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p0), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i + 1].d) * h2f(x[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
	}
	for (; i < nb; i++) {
		__m256i q0 = _mm256_sub_epi8(nibbles32(w[i].qs), off);
		__m256i p0 = dot_ss8(q0, _mm256_loadu_si256((const __m256i *)x[i].qs));
		acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p0), acc0);
	}
#ifdef SL_PERF_SLOW
	// Test hook (Go build tag perfslow, perfslow.go): redo the blocks into a
	// discarded sum, so the performance gate's own test has a slowed kernel
	// to catch. Never defined in a normal build.
	{
		__m256 extra = _mm256_setzero_ps();
		for (int j = 0; j < nb; j++) {
			__m256i q0 = _mm256_sub_epi8(nibbles32(w[j].qs), off);
			__m256i p0 = dot_ss8(q0, _mm256_loadu_si256((const __m256i *)x[j].qs));
			extra = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[j].d)), _mm256_cvtepi32_ps(p0), extra);
		}
		volatile float sink = hsum8(extra);
		(void)sink;
	}
#endif
	return hsum8(_mm256_add_ps(acc0, acc1));
}

static T2 float vd_q4_1_avx2(int K, const void *vw, const void *vx) {
	const blk_q4_1 *w = vw;
	const blk_q8_1 *x = vx;
	__m256 acc = _mm256_setzero_ps();
	float summ = 0;
	for (int i = 0; i < K / 32; i++) {
		__m256i p = dot_us8(nibbles32(w[i].qs), _mm256_loadu_si256((const __m256i *)x[i].qs));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
		summ += h2f(w[i].m) * h2f(x[i].s);
	}
	return hsum8(acc) + summ;
}

static T2 float vd_q5_0_avx2(int K, const void *vw, const void *vx) {
	const blk_q5_0 *w = vw;
	const blk_q8_0 *x = vx;
	__m256 acc = _mm256_setzero_ps();
	const __m256i hi = _mm256_set1_epi8((char)0xF0);
	for (int i = 0; i < K / 32; i++) {
		// value - 16 as a signed byte: set the top nibble where the fifth bit is 0.
		__m256i q = _mm256_or_si256(nibbles32(w[i].qs), _mm256_andnot_si256(bits32(w[i].qh), hi));
		__m256i p = dot_ss8(q, _mm256_loadu_si256((const __m256i *)x[i].qs));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
	}
	return hsum8(acc);
}

static T2 float vd_q5_1_avx2(int K, const void *vw, const void *vx) {
	const blk_q5_1 *w = vw;
	const blk_q8_1 *x = vx;
	__m256 acc = _mm256_setzero_ps();
	float summ = 0;
	const __m256i b4 = _mm256_set1_epi8(0x10);
	for (int i = 0; i < K / 32; i++) {
		__m256i q = _mm256_or_si256(nibbles32(w[i].qs), _mm256_and_si256(bits32(w[i].qh), b4));
		__m256i p = dot_us8(q, _mm256_loadu_si256((const __m256i *)x[i].qs));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p), acc);
		summ += h2f(w[i].m) * h2f(x[i].s);
	}
	return hsum8(acc) + summ;
}

static T2 float vd_q8_0_avx2(int K, const void *vw, const void *vx) {
	const blk_q8_0 *w = vw;
	const blk_q8_0 *x = vx;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
	int nb = K / 32, i = 0;
	for (; i + 2 <= nb; i += 2) {
		__m256i p0 = dot_ss8(_mm256_loadu_si256((const __m256i *)w[i].qs), _mm256_loadu_si256((const __m256i *)x[i].qs));
		__m256i p1 = dot_ss8(_mm256_loadu_si256((const __m256i *)w[i + 1].qs),
			_mm256_loadu_si256((const __m256i *)x[i + 1].qs));
		acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p0), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i + 1].d) * h2f(x[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
	}
	for (; i < nb; i++) {
		__m256i p0 = dot_ss8(_mm256_loadu_si256((const __m256i *)w[i].qs), _mm256_loadu_si256((const __m256i *)x[i].qs));
		acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(x[i].d)), _mm256_cvtepi32_ps(p0), acc0);
	}
	return hsum8(_mm256_add_ps(acc0, acc1));
}

// ---- K-quants ----

// Two 16-bit scales, the first for the low 128-bit lane and the second for
// the high one (16 elements each).
static inline T2 __m256i scale_pair(int a, int b) {
	return _mm256_setr_m128i(_mm_set1_epi16((short)a), _mm_set1_epi16((short)b));
}

static T2 float vd_q2_K_avx2(int K, const void *vw, const void *vx) {
	const blk_q2_K *w = vw;
	const blk_q8_K *x = vx;
	const __m256i m3 = _mm256_set1_epi8(3);
	__m256 acc = _mm256_setzero_ps();
	float summ = 0;
	for (int i = 0; i < K / 256; i++) {
		const uint8_t *sc = w[i].scales;
		const int8_t *q8 = x[i].qs;
		int mins = 0;
		for (int g = 0; g < 16; g++) mins += (sc[g] >> 4) * x[i].bsums[g];
		__m256i sumi = _mm256_setzero_si256();
		for (int n = 0; n < 2; n++) {
			__m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * n));
			for (int j = 0; j < 4; j++, q8 += 32) {
				__m256i q = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3);
				__m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)q8));
				int g = 8 * n + 2 * j;
				sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[g] & 15, sc[g + 1] & 15)));
			}
		}
		float dy = x[i].d;
		acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
		summ += dy * h2f(w[i].dmin) * (float)mins;
	}
	return hsum8(acc) - summ;
}

static inline int q3_scale(int j, const uint8_t *s) {
	int lo = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
	int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
	return (lo | (hi << 4)) - 32;
}

static T2 float vd_q3_K_avx2(int K, const void *vw, const void *vx) {
	const blk_q3_K *w = vw;
	const blk_q8_K *x = vx;
	const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
	__m256 acc = _mm256_setzero_ps();
	for (int i = 0; i < K / 256; i++) {
		int sc[16];
		int corr = 0;
		for (int g = 0; g < 16; g++) {
			sc[g] = q3_scale(g, w[i].scales);
			corr += sc[g] * x[i].bsums[g];
		}
		const int8_t *q8 = x[i].qs;
		__m256i hm = _mm256_loadu_si256((const __m256i *)w[i].hmask);
		__m256i sumi = _mm256_setzero_si256();
		for (int n = 0; n < 2; n++) {
			__m256i bits = _mm256_loadu_si256((const __m256i *)(w[i].qs + 32 * n));
			for (int j = 0; j < 4; j++, q8 += 32) {
				// value + 4 = low two bits | high bit << 2, in 0..7.
				__m256i h = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * n + j), one);
				__m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * j), m3), _mm256_slli_epi16(h, 2));
				__m256i p = _mm256_maddubs_epi16(q, _mm256_loadu_si256((const __m256i *)q8));
				int g = 8 * n + 2 * j;
				sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[g], sc[g + 1])));
			}
		}
		// Remove the +4 offset: Σ_g sc_g · 4 · Σ y over the group.
		sumi = _mm256_sub_epi32(sumi, _mm256_setr_epi32(4 * corr, 0, 0, 0, 0, 0, 0, 0));
		acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
	}
	return hsum8(acc);
}

static inline void k4_scales(const uint8_t *q, uint8_t *sc, uint8_t *m) {
	for (int j = 0; j < 4; j++) {
		sc[j] = q[j] & 63;
		m[j] = q[j + 4] & 63;
	}
	for (int j = 4; j < 8; j++) {
		sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
		m[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

static T2 float vd_q4_K_avx2(int K, const void *vw, const void *vx) {
	const blk_q4_K *w = vw;
	const blk_q8_K *x = vx;
	const __m256i m4 = _mm256_set1_epi8(0xF);
	__m256 acc = _mm256_setzero_ps();
	float summ = 0;
	for (int i = 0; i < K / 256; i++) {
		uint8_t sc[8], mn[8];
		k4_scales(w[i].scales, sc, mn);
		int mins = 0;
		for (int g = 0; g < 8; g++) mins += mn[g] * (x[i].bsums[2 * g] + x[i].bsums[2 * g + 1]);
		const uint8_t *q4 = w[i].qs;
		const int8_t *q8 = x[i].qs;
		__m256i s0 = _mm256_setzero_si256(), s1 = s0;
		for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
			__m256i bits = _mm256_loadu_si256((const __m256i *)q4);
			__m256i lo = _mm256_and_si256(bits, m4);
			__m256i hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), m4);
			__m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
			__m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
			s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(pl, _mm256_set1_epi16(sc[2 * j])));
			s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(ph, _mm256_set1_epi16(sc[2 * j + 1])));
		}
		float dy = x[i].d;
		acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(w[i].d)), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
		summ += dy * h2f(w[i].dmin) * (float)mins;
	}
	return hsum8(acc) - summ;
}

static T2 float vd_q5_K_avx2(int K, const void *vw, const void *vx) {
	const blk_q5_K *w = vw;
	const blk_q8_K *x = vx;
	const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
	__m256 acc = _mm256_setzero_ps();
	float summ = 0;
	for (int i = 0; i < K / 256; i++) {
		uint8_t sc[8], mn[8];
		k4_scales(w[i].scales, sc, mn);
		int mins = 0;
		for (int g = 0; g < 8; g++) mins += mn[g] * (x[i].bsums[2 * g] + x[i].bsums[2 * g + 1]);
		const uint8_t *q4 = w[i].qs;
		const int8_t *q8 = x[i].qs;
		__m256i qh = _mm256_loadu_si256((const __m256i *)w[i].qh);
		__m256i s0 = _mm256_setzero_si256(), s1 = s0;
		for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
			__m256i bits = _mm256_loadu_si256((const __m256i *)q4);
			__m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4);
			__m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4);
			__m256i lo = _mm256_or_si256(_mm256_and_si256(bits, m4), h0);
			__m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
			__m256i pl = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)q8));
			__m256i ph = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(q8 + 32)));
			s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(pl, _mm256_set1_epi16(sc[2 * j])));
			s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(ph, _mm256_set1_epi16(sc[2 * j + 1])));
		}
		float dy = x[i].d;
		acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(w[i].d)), _mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), acc);
		summ += dy * h2f(w[i].dmin) * (float)mins;
	}
	return hsum8(acc) - summ;
}

static T2 float vd_q6_K_avx2(int K, const void *vw, const void *vx) {
	const blk_q6_K *w = vw;
	const blk_q8_K *x = vx;
	const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
	__m256 acc = _mm256_setzero_ps();
	for (int i = 0; i < K / 256; i++) {
		const uint8_t *ql = w[i].ql, *qh = w[i].qh;
		const int8_t *q8 = x[i].qs, *sc = w[i].scales;
		__m256i sumi = _mm256_setzero_si256();
		for (int n = 0; n < 2; n++, ql += 64, qh += 32, sc += 8) {
			__m256i hb = _mm256_loadu_si256((const __m256i *)qh);
			__m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
			__m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
			__m256i q[4];
			q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
			q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
			q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
			q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
			for (int k = 0; k < 4; k++, q8 += 32) {
				__m256i y = _mm256_loadu_si256((const __m256i *)q8);
				// (q - 32)·y = q·y - 32·y, both within maddubs' range.
				__m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q[k], y), _mm256_maddubs_epi16(k32, y));
				sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scale_pair(sc[2 * k], sc[2 * k + 1])));
			}
		}
		acc = _mm256_fmadd_ps(_mm256_set1_ps(x[i].d * h2f(w[i].d)), _mm256_cvtepi32_ps(sumi), acc);
	}
	return hsum8(acc);
}

// ---- float helpers for attention and elementwise ops ----

static T2 float dot_f32_avx2(const float *a, const float *b, int n) { return vd_f32_avx2(n, b, a); }
static T2 float dot_f16_avx2(const float *a, const uint16_t *b, int n) { return vd_f16_avx2(n, b, a); }

static T2 void axpy_f32_avx2(float *y, float a, const float *x, int n) {
	__m256 va = _mm256_set1_ps(a);
	int i = 0;
	for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
	for (; i < n; i++) y[i] += a * x[i];
}

static T2 void axpy_f16_avx2(float *y, float a, const uint16_t *x, int n) {
	__m256 va = _mm256_set1_ps(a);
	int i = 0;
	for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, ld_f16(x + i), _mm256_loadu_ps(y + i)));
	for (; i < n; i++) y[i] += a * sl_h2f(x[i]);
}

static T2 void scale_avx2(float *y, float a, int n) {
	__m256 va = _mm256_set1_ps(a);
	int i = 0;
	for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
	for (; i < n; i++) y[i] *= a;
}

static T2 void f32_to_f16_avx2(uint16_t *y, const float *x, int n) {
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
	for (; i < n; i++) y[i] = sl_f2h(x[i]);
}

// exp(x) to about 2 ulp over the float range; underflows to 0 below -87.3.
static inline T2 __m256 exp8(__m256 x) {
	const __m256 lo = _mm256_set1_ps(-87.33654f);
	__m256 keep = _mm256_cmp_ps(x, lo, _CMP_GE_OQ);
	x = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.0f));
	__m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
		_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
	return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

static T2 void exp_avx2(float *x, int n) {
	int i = 0;
	for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i)));
	for (; i < n; i++) x[i] = expf(x[i]);
}

static T2 void rmsnorm_avx2(float *y, const float *x, const float *w, int n, float eps) {
	__m256 a0 = _mm256_setzero_ps(), a1 = a0;
	int i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
		a0 = _mm256_fmadd_ps(v0, v0, a0);
		a1 = _mm256_fmadd_ps(v1, v1, a1);
	}
	double sum = hsum8(_mm256_add_ps(a0, a1));
	for (; i < n; i++) sum += (double)(x[i] * x[i]);
	float sc = 1.0f / sqrtf((float)(sum / n) + eps);
	__m256 vs = _mm256_set1_ps(sc);
	for (i = 0; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
	for (; i < n; i++) y[i] = (x[i] * sc) * w[i];
}

static T2 void add_avx2(float *y, const float *a, const float *b, int n) {
	int i = 0;
	for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
	for (; i < n; i++) y[i] = a[i] + b[i];
}

static T2 void silu_mul_avx2(float *y, const float *g, const float *u, int n) {
	const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
	int i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(g + i);
		__m256 s = _mm256_div_ps(v, _mm256_add_ps(one, exp8(_mm256_xor_ps(v, neg))));
		_mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
	}
	for (; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static T2 void softmax_avx2(float *x, int n) {
	__m256 vm = _mm256_set1_ps(-INFINITY);
	int i = 0;
	for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
	float m = hmax8(vm);
	for (; i < n; i++)
		if (x[i] > m) m = x[i];
	__m256 bm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
	for (i = 0; i + 8 <= n; i += 8) {
		__m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), bm));
		_mm256_storeu_ps(x + i, e);
		acc = _mm256_add_ps(acc, e);
	}
	double sum = hsum8(acc);
	for (; i < n; i++) {
		x[i] = expf(x[i] - m);
		sum += x[i];
	}
	scale_avx2(x, (float)(1.0 / sum), n);
}

void sl_kernels_avx2(sl_kernels *k) {
	k->name = "avx2";
	k->quantize[SL_Q8_0] = q8_0_avx2;
	k->quantize[SL_Q8_1] = q8_1_avx2;
	k->quantize[SL_Q8_K] = q8_K_avx2;

	k->vec_dot[SL_F32] = vd_f32_avx2;
	k->vec_dot[SL_F16] = vd_f16_avx2;
	k->vec_dot[SL_BF16] = vd_bf16_avx2;
	k->vec_dot[SL_Q4_0] = vd_q4_0_avx2;
	k->vec_dot[SL_Q4_1] = vd_q4_1_avx2;
	k->vec_dot[SL_Q5_0] = vd_q5_0_avx2;
	k->vec_dot[SL_Q5_1] = vd_q5_1_avx2;
	k->vec_dot[SL_Q8_0] = vd_q8_0_avx2;
	k->vec_dot[SL_Q2_K] = vd_q2_K_avx2;
	k->vec_dot[SL_Q3_K] = vd_q3_K_avx2;
	k->vec_dot[SL_Q4_K] = vd_q4_K_avx2;
	k->vec_dot[SL_Q5_K] = vd_q5_K_avx2;
	k->vec_dot[SL_Q6_K] = vd_q6_K_avx2;

	k->dot_f32 = dot_f32_avx2;
	k->dot_f16 = dot_f16_avx2;
	k->axpy_f32 = axpy_f32_avx2;
	k->axpy_f16 = axpy_f16_avx2;
	k->scale = scale_avx2;
	k->f32_to_f16 = f32_to_f16_avx2;
	k->exp_inplace = exp_avx2;
	k->rmsnorm = rmsnorm_avx2;
	k->add = add_avx2;
	k->silu_mul = silu_mul_avx2;
	k->softmax = softmax_avx2;
}
#endif
