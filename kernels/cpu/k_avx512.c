// AVX-512 kernels (F, BW, VL, DQ and VNNI; BF16 when the CPU has it). Types
// without a kernel here keep the AVX2 ones the table was filled with.
#include "sl.h"

#if SL_X86
#include <immintrin.h>
#include <math.h>

#define T5 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define T5BF __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avx2,fma,f16c")))

static inline T5 float h2f5(uint16_t h) { return _cvtsh_ss(h); }

// Low nibbles of 16 bytes then their high nibbles: 32 bytes.
static inline T5 __m256i nib32(const uint8_t *p) {
	__m128i t = _mm_loadu_si128((const __m128i *)p);
	__m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
	return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

// ---- float weights ----

static T5 float vd_f32_512(int K, const void *vw, const void *vx) {
	const float *w = vw, *x = vx;
	__m512 a0 = _mm512_setzero_ps(), a1 = a0;
	int i = 0;
	for (; i + 32 <= K; i += 32) {
		a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
		a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
	}
	if (i < K) {
		for (; i < K; i += 16) {
			__mmask16 m = K - i >= 16 ? 0xFFFF : (__mmask16)((1u << (K - i)) - 1);
			a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a0);
		}
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static inline T5 __m512 ld_f16_512(const uint16_t *p) {
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static T5 float vd_f16_512(int K, const void *vw, const void *vx) {
	const uint16_t *w = vw;
	const float *x = vx;
	__m512 a0 = _mm512_setzero_ps(), a1 = a0;
	int i = 0;
	for (; i + 32 <= K; i += 32) {
		a0 = _mm512_fmadd_ps(ld_f16_512(w + i), _mm512_loadu_ps(x + i), a0);
		a1 = _mm512_fmadd_ps(ld_f16_512(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
	}
	for (; i < K; i += 16) {
		__mmask16 m = K - i >= 16 ? 0xFFFF : (__mmask16)((1u << (K - i)) - 1);
		__m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i));
		a0 = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + i), a0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

// BF16 activations, rounded as quant.Quantize does (ties to even, NaN quiet).
static T5 void q_bf16_512(const float *x, void *vy, int K) {
	uint16_t *y = vy;
	int i = 0;
	const __m512i r = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1);
	const __m512i absm = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
	for (; i + 16 <= K; i += 16) {
		__m512i u = _mm512_loadu_si512(x + i);
		__m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
		__m512i rn = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(r, lsb)), 16);
		__mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absm), inf);
		__m512i qn = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
		rn = _mm512_mask_mov_epi32(rn, nan, qn);
		_mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(rn));
	}
	for (; i < K; i++) y[i] = sl_f2bf(x[i]);
}

static T5BF float vd_bf16_512bf(int K, const void *vw, const void *vx) {
	const uint16_t *w = vw, *x = vx;
	__m512 a0 = _mm512_setzero_ps(), a1 = a0;
	int i = 0;
	for (; i + 64 <= K; i += 64) {
		a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(w + i), (__m512bh)_mm512_loadu_si512(x + i));
		a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(w + i + 32), (__m512bh)_mm512_loadu_si512(x + i + 32));
	}
	float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
	for (; i < K; i++) s += sl_bf2f(w[i]) * sl_bf2f(x[i]);
	return s;
}

// ---- 32-element blocks ----

// One block per 256-bit register with dpbusd in place of the AVX2 kernels'
// maddubs + madd pair; measured no slower than two blocks per 512-bit
// register, whose per-block scale assembly costs more than it saves.
static inline T5 float hsum8_5(__m256 v) {
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

static inline T5 __m256i dot_ss8_vnni(__m256i x, __m256i y) {
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

static T5 float vd_q8_0_vnni(int K, const void *vw, const void *vx) {
	const blk_q8_0 *w = vw;
	const blk_q8_0 *x = vx;
	__m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
	int nb = K / 32, i = 0;
	for (; i + 2 <= nb; i += 2) {
		__m256i p0 = dot_ss8_vnni(_mm256_loadu_si256((const __m256i *)w[i].qs), _mm256_loadu_si256((const __m256i *)x[i].qs));
		__m256i p1 = dot_ss8_vnni(_mm256_loadu_si256((const __m256i *)w[i + 1].qs),
			_mm256_loadu_si256((const __m256i *)x[i + 1].qs));
		acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f5(w[i].d) * h2f5(x[i].d)), _mm256_cvtepi32_ps(p0), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f5(w[i + 1].d) * h2f5(x[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
	}
	for (; i < nb; i++) {
		__m256i p0 = dot_ss8_vnni(_mm256_loadu_si256((const __m256i *)w[i].qs), _mm256_loadu_si256((const __m256i *)x[i].qs));
		acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f5(w[i].d) * h2f5(x[i].d)), _mm256_cvtepi32_ps(p0), acc0);
	}
	return hsum8_5(_mm256_add_ps(acc0, acc1));
}

static T5 float vd_q4_0_vnni(int K, const void *vw, const void *vx) {
	const blk_q4_0 *w = vw;
	const blk_q8_0 *x = vx;
	const __m256i off = _mm256_set1_epi8(8);
	__m256 acc0 = _mm256_setzero_ps(), acc1 = acc0;
	int nb = K / 32, i = 0;
	for (; i + 2 <= nb; i += 2) {
		__m256i q0 = _mm256_sub_epi8(nib32(w[i].qs), off);
		__m256i q1 = _mm256_sub_epi8(nib32(w[i + 1].qs), off);
		__m256i p0 = dot_ss8_vnni(q0, _mm256_loadu_si256((const __m256i *)x[i].qs));
		__m256i p1 = dot_ss8_vnni(q1, _mm256_loadu_si256((const __m256i *)x[i + 1].qs));
		acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f5(w[i].d) * h2f5(x[i].d)), _mm256_cvtepi32_ps(p0), acc0);
		acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f5(w[i + 1].d) * h2f5(x[i + 1].d)), _mm256_cvtepi32_ps(p1), acc1);
	}
	for (; i < nb; i++) {
		__m256i q0 = _mm256_sub_epi8(nib32(w[i].qs), off);
		__m256i p0 = dot_ss8_vnni(q0, _mm256_loadu_si256((const __m256i *)x[i].qs));
		acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f5(w[i].d) * h2f5(x[i].d)), _mm256_cvtepi32_ps(p0), acc0);
	}
	return hsum8_5(_mm256_add_ps(acc0, acc1));
}

// ---- K-quants ----

static inline void k4_scales5(const uint8_t *q, uint8_t *sc, uint8_t *m) {
	for (int j = 0; j < 4; j++) {
		sc[j] = q[j] & 63;
		m[j] = q[j + 4] & 63;
	}
	for (int j = 4; j < 8; j++) {
		sc[j] = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
		m[j] = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

static T5 float vd_q4_K_512(int K, const void *vw, const void *vx) {
	const blk_q4_K *w = vw;
	const blk_q8_K *x = vx;
	const __m256i m4 = _mm256_set1_epi8(0xF);
	__m512 acc = _mm512_setzero_ps();
	float summ = 0;
	for (int i = 0; i < K / 256; i++) {
		uint8_t sc[8], mn[8];
		k4_scales5(w[i].scales, sc, mn);
		int mins = 0;
		for (int g = 0; g < 8; g++) mins += mn[g] * (x[i].bsums[2 * g] + x[i].bsums[2 * g + 1]);
		// Lanes 0..7 of chunk j carry sub-block 2j, lanes 8..15 sub-block 2j+1.
		__m512i scv = _mm512_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc));
		const uint8_t *q4 = w[i].qs;
		const int8_t *q8 = x[i].qs;
		__m512i sumi = _mm512_setzero_si512();
		for (int j = 0; j < 4; j++, q4 += 32, q8 += 64) {
			__m256i bits = _mm256_loadu_si256((const __m256i *)q4);
			__m512i q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(bits, m4)),
				_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), 1);
			__m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, _mm512_loadu_si512(q8));
			__m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(2 * j), _mm256_set1_epi32(2 * j + 1), 1);
			sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(p, _mm512_permutexvar_epi32(idx, scv)));
		}
		float dy = x[i].d;
		acc = _mm512_fmadd_ps(_mm512_set1_ps(dy * h2f5(w[i].d)), _mm512_cvtepi32_ps(sumi), acc);
		summ += dy * h2f5(w[i].dmin) * (float)mins;
	}
	return _mm512_reduce_add_ps(acc) - summ;
}

static T5 float vd_q6_K_512(int K, const void *vw, const void *vx) {
	const blk_q6_K *w = vw;
	const blk_q8_K *x = vx;
	const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
	__m512 acc = _mm512_setzero_ps();
	for (int i = 0; i < K / 256; i++) {
		const uint8_t *ql = w[i].ql, *qh = w[i].qh;
		const int8_t *q8 = x[i].qs, *sc = w[i].scales;
		// The -32 offset: Σ_g sc_g · 32 · Σ y over group g.
		int corr = 0;
		for (int g = 0; g < 16; g++) corr += sc[g] * x[i].bsums[g];
		__m512i scv = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)sc));
		__m512i sumi = _mm512_setzero_si512();
		for (int n = 0; n < 2; n++, ql += 64, qh += 32) {
			__m256i hb = _mm256_loadu_si256((const __m256i *)qh);
			__m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
			__m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
			__m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m2), 4));
			__m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m2), 4));
			__m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m2), 4));
			__m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
				_mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m2), 4));
			__m512i qa = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
			__m512i qb = _mm512_inserti64x4(_mm512_castsi256_si512(q2), q3, 1);
			__m512i pa = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qa, _mm512_loadu_si512(q8));
			__m512i pb = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qb, _mm512_loadu_si512(q8 + 64));
			q8 += 128;
			// Four lanes per 16-element group: group 8n + c·4 + lane/4.
			const __m512i base = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
			__m512i ia = _mm512_add_epi32(base, _mm512_set1_epi32(8 * n));
			__m512i ib = _mm512_add_epi32(base, _mm512_set1_epi32(8 * n + 4));
			sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(pa, _mm512_permutexvar_epi32(ia, scv)));
			sumi = _mm512_add_epi32(sumi, _mm512_mullo_epi32(pb, _mm512_permutexvar_epi32(ib, scv)));
		}
		sumi = _mm512_sub_epi32(sumi, _mm512_maskz_set1_epi32(1, 32 * corr));
		acc = _mm512_fmadd_ps(_mm512_set1_ps(x[i].d * h2f5(w[i].d)), _mm512_cvtepi32_ps(sumi), acc);
	}
	return _mm512_reduce_add_ps(acc);
}

// ---- float helpers ----

static T5 float dot_f32_512(const float *a, const float *b, int n) { return vd_f32_512(n, b, a); }
static T5 float dot_f16_512(const float *a, const uint16_t *b, int n) { return vd_f16_512(n, b, a); }

static inline T5 __mmask16 tail_mask(int left) {
	return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

static T5 void axpy_f32_512(float *y, float a, const float *x, int n) {
	__m512 va = _mm512_set1_ps(a);
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		_mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
	}
}

static T5 void axpy_f16_512(float *y, float a, const uint16_t *x, int n) {
	__m512 va = _mm512_set1_ps(a);
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i));
		_mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, xv, _mm512_maskz_loadu_ps(m, y + i)));
	}
}

// Up to 8 heads per call (the attention driver groups at most 8).
static T5 void dot_f16_n_512(const float *q, size_t qs, int nh, const uint16_t *k, int n, float *s) {
	__m512 acc[8];
	for (int h = 0; h < nh; h++) acc[h] = _mm512_setzero_ps();
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m512 kv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, k + i));
		for (int h = 0; h < nh; h++) acc[h] = _mm512_fmadd_ps(kv, _mm512_maskz_loadu_ps(m, q + h * qs + i), acc[h]);
	}
	for (int h = 0; h < nh; h++) s[h] = _mm512_reduce_add_ps(acc[h]);
}

static T5 void dot_f32_n_512(const float *q, size_t qs, int nh, const float *k, int n, float *s) {
	__m512 acc[8];
	for (int h = 0; h < nh; h++) acc[h] = _mm512_setzero_ps();
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m512 kv = _mm512_maskz_loadu_ps(m, k + i);
		for (int h = 0; h < nh; h++) acc[h] = _mm512_fmadd_ps(kv, _mm512_maskz_loadu_ps(m, q + h * qs + i), acc[h]);
	}
	for (int h = 0; h < nh; h++) s[h] = _mm512_reduce_add_ps(acc[h]);
}

static T5 void axpy_f16_n_512(float *y, size_t ys, int nh, const float *a, const uint16_t *v, int n) {
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m512 vv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v + i));
		for (int h = 0; h < nh; h++) {
			float *yp = y + h * ys + i;
			_mm512_mask_storeu_ps(yp, m, _mm512_fmadd_ps(_mm512_set1_ps(a[h]), vv, _mm512_maskz_loadu_ps(m, yp)));
		}
	}
}

static T5 void axpy_f32_n_512(float *y, size_t ys, int nh, const float *a, const float *v, int n) {
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m512 vv = _mm512_maskz_loadu_ps(m, v + i);
		for (int h = 0; h < nh; h++) {
			float *yp = y + h * ys + i;
			_mm512_mask_storeu_ps(yp, m, _mm512_fmadd_ps(_mm512_set1_ps(a[h]), vv, _mm512_maskz_loadu_ps(m, yp)));
		}
	}
}

static T5 void scale_512(float *y, float a, int n) {
	__m512 va = _mm512_set1_ps(a);
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		_mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, y + i)));
	}
}

static T5 void f32_to_f16_512(uint16_t *y, const float *x, int n) {
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT);
		_mm256_mask_storeu_epi16(y + i, m, h);
	}
}

// exp(x) to about 2 ulp; scalef takes care of the exponent range, so large
// negative inputs give 0 and large positive ones infinity.
static inline T5 __m512 exp16(__m512 x) {
	x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
	x = _mm512_min_ps(x, _mm512_set1_ps(89.0f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
		_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}

static T5 void exp_512(float *x, int n) {
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		_mm512_mask_storeu_ps(x + i, m, exp16(_mm512_maskz_loadu_ps(m, x + i)));
	}
}

static T5 void rmsnorm_512(float *y, const float *x, const float *w, int n, float eps) {
	__m512 a = _mm512_setzero_ps();
	for (int i = 0; i < n; i += 16) {
		__m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
		a = _mm512_fmadd_ps(v, v, a);
	}
	float sum = _mm512_reduce_add_ps(a);
	float sc = 1.0f / sqrtf(sum / (float)n + eps);
	__m512 vs = _mm512_set1_ps(sc);
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), vs), _mm512_maskz_loadu_ps(m, w + i));
		_mm512_mask_storeu_ps(y + i, m, v);
	}
}

static T5 void add_512(float *y, const float *a, const float *b, int n) {
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		_mm512_mask_storeu_ps(y + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
	}
}

static T5 void silu_mul_512(float *y, const float *g, const float *u, int n) {
	const __m512 one = _mm512_set1_ps(1.0f);
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m512 v = _mm512_maskz_loadu_ps(m, g + i);
		__m512 s = _mm512_div_ps(v, _mm512_add_ps(one, exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
		_mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
	}
}

static T5 void softmax_512(float *x, int n) {
	__m512 vm = _mm512_set1_ps(-INFINITY);
	for (int i = 0; i < n; i += 16) vm = _mm512_mask_max_ps(vm, tail_mask(n - i), vm, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
	__m512 bm = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
	__m512 acc = _mm512_setzero_ps();
	for (int i = 0; i < n; i += 16) {
		__mmask16 m = tail_mask(n - i);
		__m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), bm));
		e = _mm512_maskz_mov_ps(m, e);
		_mm512_mask_storeu_ps(x + i, m, e);
		acc = _mm512_add_ps(acc, e);
	}
	scale_512(x, 1.0f / _mm512_reduce_add_ps(acc), n);
}

void sl_kernels_avx512(sl_kernels *k) {
	k->name = "avx512";
	k->vec_dot[SL_F32] = vd_f32_512;
	k->vec_dot[SL_F16] = vd_f16_512;
	k->vec_dot[SL_Q8_0] = vd_q8_0_vnni;
	k->vec_dot[SL_Q4_0] = vd_q4_0_vnni;
	k->vec_dot[SL_Q4_K] = vd_q4_K_512;
	k->vec_dot[SL_Q6_K] = vd_q6_K_512;
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512bf16")) {
		k->vdt[SL_BF16] = SL_BF16;
		k->quantize[SL_BF16] = q_bf16_512;
		k->vec_dot[SL_BF16] = vd_bf16_512bf;
	}

	k->dot_f32 = dot_f32_512;
	k->dot_f16 = dot_f16_512;
	k->axpy_f32 = axpy_f32_512;
	k->axpy_f16 = axpy_f16_512;
	k->scale = scale_512;
	k->dot_f16_n = dot_f16_n_512;
	k->dot_f32_n = dot_f32_n_512;
	k->axpy_f16_n = axpy_f16_n_512;
	k->axpy_f32_n = axpy_f32_n_512;
	k->f32_to_f16 = f32_to_f16_512;
	k->exp_inplace = exp_512;
	k->rmsnorm = rmsnorm_512;
	k->add = add_512;
	k->silu_mul = silu_mul_512;
	k->softmax = softmax_512;
}
#endif
