// quant.cuh: weight formats, byte for byte as GGUF stores them (and as the
// quant package's reference reads them). Each format is a struct with
//   deq32(row, c, out): out[0..31] = elements 32c..32c+31 of a weight row,
// so every kernel walks a row in chunks of 32 whatever its block size.

struct F32W {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const float4 *p = (const float4 *)(row + (size_t)c * 128);
#pragma unroll
		for (int k = 0; k < 8; k++) {
			float4 v = p[k];
			out[4 * k] = v.x, out[4 * k + 1] = v.y, out[4 * k + 2] = v.z, out[4 * k + 3] = v.w;
		}
	}
};

struct F16W {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u16 *p = (const u16 *)(row + (size_t)c * 64);
#pragma unroll
		for (int k = 0; k < 32; k++) out[k] = h2f(p[k]);
	}
};

struct BF16W {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u16 *p = (const u16 *)(row + (size_t)c * 64);
#pragma unroll
		for (int k = 0; k < 32; k++) out[k] = bf2f(p[k]);
	}
};

// Q8_0: 34-byte blocks of 32: f16 d, i8 qs[32]; x = d*q.
struct Q8_0W {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)c * 34;
		float d = h2f(ld16(b));
		const i8 *q = (const i8 *)(b + 2);
#pragma unroll
		for (int k = 0; k < 32; k++) out[k] = d * (float)q[k];
	}
};

// Q4_0: 18-byte blocks of 32: f16 d, u8 qs[16]; x[k] = d*((qs[k]&15)-8),
// x[k+16] = d*((qs[k]>>4)-8).
struct Q4_0W {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)c * 18;
		float d = h2f(ld16(b));
#pragma unroll
		for (int k = 0; k < 16; k++) {
			int q = b[2 + k];
			out[k] = d * (float)((q & 15) - 8);
			out[k + 16] = d * (float)((q >> 4) - 8);
		}
	}
};

// Q5_0: 22-byte blocks of 32: f16 d, u8 qh[4] (bit k: high bit of x[k]),
// u8 qs[16] (low nibbles as Q4_0); x = d*(q-16).
struct Q5_0W {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)c * 22;
		float d = h2f(ld16(b));
		u32 qh = (u32)b[2] | (u32)b[3] << 8 | (u32)b[4] << 16 | (u32)b[5] << 24;
#pragma unroll
		for (int k = 0; k < 16; k++) {
			int q = b[6 + k];
			int lo = (q & 15) | (((qh >> k) & 1) << 4);
			int hi = (q >> 4) | (((qh >> (k + 16)) & 1) << 4);
			out[k] = d * (float)(lo - 16);
			out[k + 16] = d * (float)(hi - 16);
		}
	}
};

// K-quant 6-bit scale and min of sub-block j from the 12 packed bytes.
__device__ __forceinline__ void scale_min_k4(int j, const u8 *q, int *sc, int *m) {
	if (j < 4) {
		*sc = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
		*m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
	}
}

// Q4_K: 144-byte super-blocks of 256: f16 d, f16 dmin, u8 scales[12],
// u8 qs[128]; sub-block s (32 values) is the low (s even) or high nibbles
// of qs[32*(s/2) ..], x = d*sc_s*q - dmin*m_s.
struct Q4_KW {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)(c / 8) * 144;
		int s = c % 8, sc, m;
		scale_min_k4(s, b + 4, &sc, &m);
		float d = h2f(ld16(b)) * sc, mn = h2f(ld16(b + 2)) * m;
		const u8 *q = b + 16 + 32 * (s / 2);
		int sh = (s & 1) * 4;
#pragma unroll
		for (int k = 0; k < 32; k++) out[k] = d * (float)((q[k] >> sh) & 15) - mn;
	}
};

// Q5_K: 176-byte super-blocks of 256: f16 d, f16 dmin, u8 scales[12],
// u8 qh[32] (bit s of qh[k]: high bit of sub-block s's value k), u8 qs[128]
// as Q4_K; x = d*sc_s*q - dmin*m_s.
struct Q5_KW {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)(c / 8) * 176;
		int s = c % 8, sc, m;
		scale_min_k4(s, b + 4, &sc, &m);
		float d = h2f(ld16(b)) * sc, mn = h2f(ld16(b + 2)) * m;
		const u8 *qh = b + 16, *q = b + 48 + 32 * (s / 2);
		int sh = (s & 1) * 4;
#pragma unroll
		for (int k = 0; k < 32; k++) out[k] = d * (float)(((q[k] >> sh) & 15) | (((qh[k] >> s) & 1) << 4)) - mn;
	}
};

// Q6_K: 210-byte super-blocks of 256: u8 ql[128], u8 qh[64], i8 scales[16],
// f16 d. Half h = s/4 of the block uses ql[64h..], qh[32h..], scales[8h..];
// quarter t = s%4 takes low (t<2) or high nibbles of ql[k + 32*(t&1)] and
// bits 2t..2t+1 of qh[k]; x = d*scale[k/16 + 2t]*(q-32).
struct Q6_KW {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)(c / 8) * 210;
		int s = c % 8, h = s / 4, t = s % 4;
		const u8 *ql = b + 64 * h + 32 * (t & 1), *qh = b + 128 + 32 * h;
		const i8 *sc = (const i8 *)(b + 192 + 8 * h);
		float d = h2f(ld16(b + 208));
		int sh = (t >> 1) * 4;
		float d0 = d * (float)sc[2 * t], d1 = d * (float)sc[2 * t + 1];
#pragma unroll
		for (int k = 0; k < 32; k++) {
			int q = ((ql[k] >> sh) & 15) | (((qh[k] >> (2 * t)) & 3) << 4);
			out[k] = (k < 16 ? d0 : d1) * (float)(q - 32);
		}
	}
};

// Q4_1: 20-byte blocks of 32: f16 d, f16 m, u8 qs[16]; x = d*q + m with
// nibbles as Q4_0.
struct Q4_1W {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)c * 20;
		float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
#pragma unroll
		for (int k = 0; k < 16; k++) {
			int q = b[4 + k];
			out[k] = d * (float)(q & 15) + m;
			out[k + 16] = d * (float)(q >> 4) + m;
		}
	}
};

// Q5_1: 24-byte blocks of 32: f16 d, f16 m, u8 qh[4], u8 qs[16]; x = d*q + m
// with 5-bit q as Q5_0.
struct Q5_1W {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)c * 24;
		float d = h2f(ld16(b)), m = h2f(ld16(b + 2));
		u32 qh = (u32)b[4] | (u32)b[5] << 8 | (u32)b[6] << 16 | (u32)b[7] << 24;
#pragma unroll
		for (int k = 0; k < 16; k++) {
			int q = b[8 + k];
			out[k] = d * (float)((q & 15) | (((qh >> k) & 1) << 4)) + m;
			out[k + 16] = d * (float)((q >> 4) | (((qh >> (k + 16)) & 1) << 4)) + m;
		}
	}
};

// Q2_K: 84-byte super-blocks of 256: u8 scales[16] (low nibble scale, high
// nibble min), u8 qs[64], f16 d, f16 dmin. Sub-block s takes bits 2(s%4)..
// of qs[32*(s/4) + k]; its halves use scales[2s] and scales[2s+1];
// x = d*sc*q - dmin*m.
struct Q2_KW {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)(c / 8) * 84;
		int s = c % 8, sh = 2 * (s % 4);
		const u8 *q = b + 16 + 32 * (s / 4);
		float d = h2f(ld16(b + 80)), mn = h2f(ld16(b + 82));
		int s0 = b[2 * s], s1 = b[2 * s + 1];
		float d0 = d * (float)(s0 & 15), m0 = mn * (float)(s0 >> 4);
		float d1 = d * (float)(s1 & 15), m1 = mn * (float)(s1 >> 4);
#pragma unroll
		for (int k = 0; k < 32; k++) {
			float v = (float)((q[k] >> sh) & 3);
			out[k] = k < 16 ? d0 * v - m0 : d1 * v - m1;
		}
	}
};

// Q3_K scale i (0..15): 4 low bits from scales[i] or scales[i-8] >> 4, 2
// high bits from scales[8 + i%4] >> 2(i/4); minus 32.
__device__ __forceinline__ int scale_q3k(int i, const u8 *sc) {
	int lo = i < 8 ? sc[i] & 15 : sc[i - 8] >> 4;
	int hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
	return (lo | hi << 4) - 32;
}

// Q3_K: 110-byte super-blocks of 256: u8 hmask[32], u8 qs[64], u8
// scales[12], f16 d. Sub-block s: 2-bit q from bits 2(s%4) of
// qs[32*(s/4) + k], minus 4 unless bit s of hmask[k] is set; halves use
// scales 2s and 2s+1; x = d*scale*q.
struct Q3_KW {
	static __device__ __forceinline__ void deq32(const u8 *row, int c, float *out) {
		const u8 *b = row + (size_t)(c / 8) * 110;
		int s = c % 8, sh = 2 * (s % 4);
		const u8 *q = b + 32 + 32 * (s / 4), *sc = b + 96;
		float d = h2f(ld16(b + 108));
		float d0 = d * (float)scale_q3k(2 * s, sc), d1 = d * (float)scale_q3k(2 * s + 1, sc);
#pragma unroll
		for (int k = 0; k < 32; k++) {
			int v = ((q[k] >> sh) & 3) - ((b[k] >> s) & 1 ? 0 : 4);
			out[k] = (k < 16 ? d0 : d1) * (float)v;
		}
	}
};

// Instantiate a kernel macro for every weight format the backend supports.
#define FOR_EACH_WEIGHT(X) \
	X(f32, F32W) X(f16, F16W) X(bf16, BF16W) X(q8_0, Q8_0W) X(q4_0, Q4_0W) X(q5_0, Q5_0W) \
	X(q4_k, Q4_KW) X(q5_k, Q5_KW) X(q6_k, Q6_KW) X(q4_1, Q4_1W) X(q5_1, Q5_1W) X(q2_k, Q2_KW) X(q3_k, Q3_KW)
