// Shared declarations of the CPU kernels: GGML block layouts, half-precision
// conversions, the per-path kernel table and the op entry points that the Go
// side calls (one cgo call per op).
#ifndef SLUICE_CPU_SL_H
#define SLUICE_CPU_SL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

// SL_NO_X86 builds only the portable path (as on non-x86 targets).
#if (defined(__x86_64__) || defined(__i386__) || defined(_M_X64)) && !defined(SL_NO_X86)
#define SL_X86 1
#else
#define SL_X86 0
#endif

// GGML type ids (the values stored in GGUF files).
enum {
	SL_F32 = 0,
	SL_F16 = 1,
	SL_Q4_0 = 2,
	SL_Q4_1 = 3,
	SL_Q5_0 = 6,
	SL_Q5_1 = 7,
	SL_Q8_0 = 8,
	SL_Q8_1 = 9,
	SL_Q2_K = 10,
	SL_Q3_K = 11,
	SL_Q4_K = 12,
	SL_Q5_K = 13,
	SL_Q6_K = 14,
	SL_Q8_K = 15,
	SL_BF16 = 30,
	SL_NTYPES = 32,
};

// Kernel paths.
enum { SL_PATH_PORTABLE = 0, SL_PATH_AVX2 = 1, SL_PATH_AVX512 = 2, SL_NPATHS = 3 };

// Error codes returned by the op entry points.
enum { SL_OK = 0, SL_ERR_TYPE = 1, SL_ERR_NOMEM = 2, SL_ERR_ARG = 3, SL_ERR_PATH = 4 };

#define SL_QK 32
#define SL_QKK 256

// Block layouts, byte for byte as GGML stores them (half values as raw bits).
typedef struct { uint16_t d; uint8_t qs[16]; } blk_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[16]; } blk_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; } blk_q5_1;
typedef struct { uint16_t d; int8_t qs[32]; } blk_q8_0;
typedef struct { uint16_t d, s; int8_t qs[32]; } blk_q8_1;
typedef struct { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; } blk_q2_K;
typedef struct { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; } blk_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; } blk_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; } blk_q5_K;
typedef struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; } blk_q6_K;
typedef struct { float d; int8_t qs[256]; int16_t bsums[16]; } blk_q8_K;

_Static_assert(sizeof(blk_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(blk_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(blk_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(blk_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(blk_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(blk_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(blk_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(blk_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(blk_q8_K) == 292, "q8_K size");

// ---- scalar conversions (exact, portable) ----

static inline float sl_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t sl_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static inline float sl_h2f(uint16_t h) {
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
	if (exp == 0x1f) return sl_bits_f32(sign | 0x7f800000u | (mant << 13));
	if (exp == 0) {
		if (mant == 0) return sl_bits_f32(sign);
		float v = (float)mant * (1.0f / 16777216.0f); // mant * 2^-24, exact
		return sl_bits_f32(sign | sl_f32_bits(v));
	}
	return sl_bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

// Round to nearest, ties to even; overflow to infinity; NaN to 0x7e00.
static inline uint16_t sl_f2h(float f) {
	uint32_t x = sl_f32_bits(f);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
	uint32_t ax = x & 0x7fffffffu;
	if (ax >= 0x7f800000u) return sign | (ax > 0x7f800000u ? 0x7e00 : 0x7c00);
	if (ax >= (uint32_t)(127 + 16) << 23) return sign | 0x7c00;
	if (ax < (uint32_t)113 << 23) {
		// Result is a half subnormal or zero: adding 0.5 lines the value's
		// 2^-24 units up with the float's low mantissa bits, rounded RNE.
		float v = sl_bits_f32(ax) + 0.5f;
		return sign | (uint16_t)(sl_f32_bits(v) - 0x3f000000u);
	}
	uint32_t odd = (ax >> 13) & 1;
	ax += 0xc8000fffu + odd; // rebias exponent (-112) and round
	return sign | (uint16_t)(ax >> 13);
}

static inline float sl_bf2f(uint16_t h) { return sl_bits_f32((uint32_t)h << 16); }

static inline uint16_t sl_f2bf(float f) {
	uint32_t u = sl_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

// ---- kernel table ----

// Dot product of one weight row (K elements of the weight type) with one
// activation row in the paired format.
typedef float (*sl_vec_dot_fn)(int K, const void *w, const void *x);
// Dot products of nr consecutive weight rows (stride ws bytes) with one
// activation row; s[r] receives row r's result.
typedef void (*sl_vec_dot_rows_fn)(int K, int nr, const void *w, size_t ws, const void *x, float *s);
// Converts K activation floats into the paired format.
typedef void (*sl_quantize_fn)(const float *x, void *y, int K);
// Dequantizes K elements of a weight row.
typedef void (*sl_dequant_fn)(const void *w, float *y, int K);

typedef struct sl_kernels {
	const char *name;
	// vdt[t]: activation format for weight type t (SL_F32 = raw floats).
	int vdt[SL_NTYPES];
	sl_vec_dot_fn vec_dot[SL_NTYPES];
	sl_vec_dot_rows_fn vec_dot_rows[SL_NTYPES]; // optional, NULL if absent
	sl_quantize_fn quantize[SL_NTYPES];          // indexed by activation format
	sl_dequant_fn dequant[SL_NTYPES];

	float (*dot_f32)(const float *a, const float *b, int n);
	float (*dot_f16)(const float *a, const uint16_t *b, int n);
	void (*axpy_f32)(float *y, float a, const float *x, int n);
	void (*axpy_f16)(float *y, float a, const uint16_t *x, int n);
	void (*scale)(float *y, float a, int n);
	// Several heads against one cache row: s[h] = q_h·k for the nh query
	// rows q + h·qs; y_h += a[h]·v for the nh rows y + h·ys.
	void (*dot_f16_n)(const float *q, size_t qs, int nh, const uint16_t *k, int n, float *s);
	void (*dot_f32_n)(const float *q, size_t qs, int nh, const float *k, int n, float *s);
	void (*axpy_f16_n)(float *y, size_t ys, int nh, const float *a, const uint16_t *v, int n);
	void (*axpy_f32_n)(float *y, size_t ys, int nh, const float *a, const float *v, int n);
	void (*f32_to_f16)(uint16_t *y, const float *x, int n);

	void (*rmsnorm)(float *y, const float *x, const float *w, int n, float eps);
	void (*add)(float *y, const float *a, const float *b, int n);
	void (*silu_mul)(float *y, const float *g, const float *u, int n);
	void (*softmax)(float *x, int n);
	// exp in place over n floats (used by attention)
	void (*exp_inplace)(float *x, int n);
} sl_kernels;

void sl_kernels_portable(sl_kernels *k);
void sl_kernels_avx2(sl_kernels *k);
void sl_kernels_avx512(sl_kernels *k);

// Portable scalar helpers other paths reuse.
void sl_quantize_q8_0_ref(const float *x, void *y, int K);
void sl_quantize_q8_1_ref(const float *x, void *y, int K);
void sl_quantize_q8_K_ref(const float *x, void *y, int K);

// ---- thread pool ----

typedef struct sl_pool sl_pool;
typedef void (*sl_task_fn)(void *arg, int task, int thread);
sl_pool *sl_pool_new(int nthreads);
void sl_pool_free(sl_pool *p);
// Runs fn(arg, t, thread) for t in [0, ntasks) on the pool's threads (the
// caller takes part as thread 0) and returns when all are done.
void sl_pool_run(sl_pool *p, sl_task_fn fn, void *arg, int ntasks);
int sl_pool_threads(const sl_pool *p);

// ---- backend ----

typedef struct sl_backend sl_backend;

int sl_path_available(int path);
sl_backend *sl_backend_new(int nthreads, int path);
void sl_backend_free(sl_backend *be);

int sl_matmul(sl_backend *be, int wtype, const void *w, int M, int K, const float *x, int n, float *dst, int ldd);
int sl_get_rows(sl_backend *be, int type, const void *table, int cols, const int32_t *ids, int n, float *dst);
int sl_rmsnorm(sl_backend *be, float *dst, const float *x, const float *w, int n, int cols, float eps);
int sl_add_bias(sl_backend *be, float *x, const float *b, int n, int cols);
int sl_add(sl_backend *be, float *dst, const float *a, const float *b, int n, int cols);
int sl_scale(sl_backend *be, float *x, float s, int n, int cols);
int sl_silu_mul(sl_backend *be, float *dst, const float *g, const float *u, int n, int cols);
int sl_rope(sl_backend *be, float *x, int rows, int cols, const int32_t *pos, int head_dim, int dims,
	float base, float scale, int neox, const float *freqs);
int sl_store_kv(sl_backend *be, void *kc, void *vc, int f16, const float *k, const float *v, int n, int cols,
	const int32_t *slots);
int sl_attention(sl_backend *be, float *out, const float *q, const void *kc, const void *vc, int f16, int n,
	const int32_t *pos, const int32_t *seq, const int32_t *block_tables, int max_blocks, int block_size,
	int heads, int kv_heads, int head_dim, float scale);
int sl_softmax(sl_backend *be, float *x, int n, int cols);
int sl_argmax(sl_backend *be, int32_t *dst, const float *x, int n, int cols);

// ---- repacked-weight GEMM (AVX-512 VNNI, k_gemm512.c) ----

#define SL_PANEL 16 // weight rows per packed panel
#define SL_TILE_N 8 // activation rows per micro-kernel call

// Activation rows in the layout the packed GEMM reads: q holds K int8 per
// row; d one scale per 32 (Q8_0) or 256 (Q8_K) elements; s the integer sum
// per 32 (Q8_0) or 16 (Q8_K) elements; sf the sum per 32 elements times its
// scale.
typedef struct {
	int8_t *q;
	float *d;
	int32_t *s;
	float *sf;
} sl_act;

size_t sl_pack512_block_bytes(int type);
// Bytes of the packed form of an M×K weight of the type, 0 if the type has
// no packed form.
size_t sl_pack512_bytes(int type, int M, int K);
void sl_pack512_panel(int type, const void *w, size_t ws, int M, int K, int p, uint8_t *out);
void sl_act_prepare(int xtype, const void *xq, size_t xs, int K, int row, sl_act *a);
void sl_gemm512_tile(int type, const uint8_t *packed, int M, int K, int p, const sl_act *a, int c0, int nc, float *dst,
	int ldd);

void sl_gemm512_f16(const uint16_t *w, size_t ws, int K, int r0, int nr, const float *x, int c0, int nc, float *dst,
	int ldd);

// Packs a weight for the backend's path (the caller sizes out with
// sl_packed_bytes); SL_ERR_TYPE when the path has no packed form for it.
size_t sl_packed_bytes(sl_backend *be, int wtype, int M, int K);
int sl_pack(sl_backend *be, int wtype, const void *w, int M, int K, void *out);
// sl_matmul with the weight's packed form (NULL: the row-major kernels).
int sl_matmul_packed(sl_backend *be, int wtype, const void *w, const void *packed, int M, int K, const float *x, int n,
	float *dst, int ldd);

// Single kernels of one path, for the package's tests.
int sl_test_quantize(int path, int type, const float *x, void *y, int K);
int sl_test_vec_dot(int path, int wtype, int K, const void *w, const void *x, float *out);
int sl_test_act_type(int path, int wtype);

#endif
