// Op drivers: each entry point validates nothing (the Go side does), splits
// the op into tasks and runs them on the backend's worker pool with the
// kernel table of the chosen path.
#include <math.h>
#include <stdlib.h>

#include "sl.h"

#define SL_MAX_HEAD_DIM 1024
#define SL_MAX_ROPE_DIMS 2048
#define SL_ATTN_TILE 64

struct sl_backend {
	sl_pool *pool;
	int nthreads;
	int path;
	sl_kernels k;
	void *scratch; // quantized activations
	size_t scratch_cap;
};

#if SL_X86 && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

// has_f16c reads CPUID leaf 1 directly: clang before 15 does not know
// "f16c" as a __builtin_cpu_supports feature.
static int has_f16c(void) {
	unsigned a, b, c, d;
	return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}
#endif

int sl_path_available(int path) {
	switch (path) {
	case SL_PATH_PORTABLE:
		return 1;
#if SL_X86 && (defined(__GNUC__) || defined(__clang__))
	case SL_PATH_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
	case SL_PATH_AVX512:
		__builtin_cpu_init();
		return sl_path_available(SL_PATH_AVX2) && __builtin_cpu_supports("avx512f") &&
		       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
		       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
#endif
	default:
		return 0;
	}
}

sl_backend *sl_backend_new(int nthreads, int path) {
	if (!sl_path_available(path)) return NULL;
	sl_backend *be = calloc(1, sizeof *be);
	if (!be) return NULL;
	be->path = path;
	sl_kernels_portable(&be->k);
#if SL_X86
	if (path >= SL_PATH_AVX2) sl_kernels_avx2(&be->k);
	if (path >= SL_PATH_AVX512) sl_kernels_avx512(&be->k);
#endif
	be->pool = sl_pool_new(nthreads);
	if (!be->pool) {
		free(be);
		return NULL;
	}
	be->nthreads = sl_pool_threads(be->pool);
	return be;
}

void sl_backend_free(sl_backend *be) {
	if (!be) return;
	sl_pool_free(be->pool);
	free(be->scratch);
	free(be);
}

static void *scratch(sl_backend *be, size_t n) {
	if (n > be->scratch_cap) {
		free(be->scratch);
		size_t cap = n + n / 4 + 4096;
		be->scratch = NULL;
		if (posix_memalign(&be->scratch, 64, cap) != 0) {
			be->scratch = NULL;
			be->scratch_cap = 0;
			return NULL;
		}
		be->scratch_cap = cap;
	}
	return be->scratch;
}

static size_t row_bytes(int type, int K) {
	switch (type) {
	case SL_F32: return (size_t)K * 4;
	case SL_F16:
	case SL_BF16: return (size_t)K * 2;
	case SL_Q4_0: return (size_t)K / 32 * sizeof(blk_q4_0);
	case SL_Q4_1: return (size_t)K / 32 * sizeof(blk_q4_1);
	case SL_Q5_0: return (size_t)K / 32 * sizeof(blk_q5_0);
	case SL_Q5_1: return (size_t)K / 32 * sizeof(blk_q5_1);
	case SL_Q8_0: return (size_t)K / 32 * sizeof(blk_q8_0);
	case SL_Q8_1: return (size_t)K / 32 * sizeof(blk_q8_1);
	case SL_Q2_K: return (size_t)K / 256 * sizeof(blk_q2_K);
	case SL_Q3_K: return (size_t)K / 256 * sizeof(blk_q3_K);
	case SL_Q4_K: return (size_t)K / 256 * sizeof(blk_q4_K);
	case SL_Q5_K: return (size_t)K / 256 * sizeof(blk_q5_K);
	case SL_Q6_K: return (size_t)K / 256 * sizeof(blk_q6_K);
	case SL_Q8_K: return (size_t)K / 256 * sizeof(blk_q8_K);
	}
	return 0;
}

// ---- MatMul ----

struct mm_job {
	const sl_kernels *k;
	int wtype, xtype;
	const uint8_t *w;
	size_t ws; // weight row bytes
	int M, K;
	const float *x;
	uint8_t *xq; // quantized activations (or x itself)
	size_t xs;   // activation row bytes
	int n;
	float *dst;
	int ldd;
	int rows_per_task;
};

static void mm_quantize_task(void *varg, int t, int thread) {
	(void)thread;
	struct mm_job *j = varg;
	j->k->quantize[j->xtype](j->x + (size_t)t * j->K, j->xq + (size_t)t * j->xs, j->K);
}

// Activation rows processed together against one chunk of weight rows, so
// that the chunk stays in cache while the activations stream by.
#define MM_TILE_N 16
#define MM_ROWS_AT_ONCE 4

static void mm_task(void *varg, int t, int thread) {
	(void)thread;
	struct mm_job *j = varg;
	int r0 = t * j->rows_per_task;
	int r1 = r0 + j->rows_per_task;
	if (r1 > j->M) r1 = j->M;
	sl_vec_dot_fn vd = j->k->vec_dot[j->wtype];
	sl_vec_dot_rows_fn vdr = j->k->vec_dot_rows[j->wtype];
	float s[MM_ROWS_AT_ONCE];
	for (int i0 = 0; i0 < j->n; i0 += MM_TILE_N) {
		int i1 = i0 + MM_TILE_N < j->n ? i0 + MM_TILE_N : j->n;
		int r = r0;
		if (vdr) {
			for (; r + MM_ROWS_AT_ONCE <= r1; r += MM_ROWS_AT_ONCE) {
				const uint8_t *w = j->w + (size_t)r * j->ws;
				for (int i = i0; i < i1; i++) {
					vdr(j->K, MM_ROWS_AT_ONCE, w, j->ws, j->xq + (size_t)i * j->xs, s);
					float *d = j->dst + (size_t)i * j->ldd + r;
					for (int q = 0; q < MM_ROWS_AT_ONCE; q++) d[q] = s[q];
				}
			}
		}
		for (; r < r1; r++) {
			const uint8_t *w = j->w + (size_t)r * j->ws;
			for (int i = i0; i < i1; i++)
				j->dst[(size_t)i * j->ldd + r] = vd(j->K, w, j->xq + (size_t)i * j->xs);
		}
	}
}

// ---- packed weights ----

size_t sl_packed_bytes(sl_backend *be, int wtype, int M, int K) {
	if (be->path < SL_PATH_AVX512) return 0;
	return sl_pack512_bytes(wtype, M, K);
}

struct pack_job {
	int wtype, M, K;
	const void *w;
	size_t ws;
	uint8_t *out;
};

static void pack_task(void *varg, int t, int thread) {
	(void)thread;
	struct pack_job *j = varg;
	sl_pack512_panel(j->wtype, j->w, j->ws, j->M, j->K, t, j->out);
}

int sl_pack(sl_backend *be, int wtype, const void *w, int M, int K, void *out) {
	if (!sl_packed_bytes(be, wtype, M, K)) return SL_ERR_TYPE;
	struct pack_job j = {wtype, M, K, w, row_bytes(wtype, K), out};
	sl_pool_run(be->pool, pack_task, &j, (M + SL_PANEL - 1) / SL_PANEL);
	return SL_OK;
}

struct gemm_job {
	const sl_kernels *k;
	const float *x;
	int wtype, xtype;
	const uint8_t *packed;
	int M, K, n;
	const uint8_t *xq;
	size_t xs;
	sl_act act;
	float *dst;
	int ldd;
	int panels_per_task;
};

// Quantizes activation row t (byte for byte as quant.Quantize) and lays it
// out for the packed kernels.
static void act_task(void *varg, int t, int thread) {
	(void)thread;
	struct gemm_job *j = varg;
	j->k->quantize[j->xtype](j->x + (size_t)t * j->K, (uint8_t *)j->xq + (size_t)t * j->xs, j->K);
	sl_act_prepare(j->xtype, j->xq, j->xs, j->K, t, &j->act);
}

// One task is a run of panels; for each tile of SL_TILE_N activation rows it
// passes over the run's panels, which stay in cache across the tiles.
static void gemm_task(void *varg, int t, int thread) {
	(void)thread;
	struct gemm_job *j = varg;
	int np = (j->M + SL_PANEL - 1) / SL_PANEL;
	int p0 = t * j->panels_per_task, p1 = p0 + j->panels_per_task;
	if (p1 > np) p1 = np;
	for (int c0 = 0; c0 < j->n; c0 += SL_TILE_N) {
		int nc = j->n - c0 < SL_TILE_N ? j->n - c0 : SL_TILE_N;
		for (int p = p0; p < p1; p++) sl_gemm512_tile(j->wtype, j->packed, j->M, j->K, p, &j->act, c0, nc, j->dst, j->ldd);
	}
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

static int matmul_packed512(sl_backend *be, int wtype, const void *packed, int M, int K, const float *x, int n,
	float *dst, int ldd) {
	struct gemm_job j;
	j.wtype = wtype;
	j.xtype = be->k.vdt[wtype];
	j.packed = packed;
	j.M = M;
	j.K = K;
	j.n = n;
	j.dst = dst;
	j.ldd = ldd;
	j.xs = row_bytes(j.xtype, K);
	// Scratch: quantized rows, then the prepared layout.
	size_t qb = align64(j.xs * (size_t)n);
	size_t nq = align64((size_t)n * K);
	size_t nd = align64((size_t)n * (K / 32) * 4);
	size_t ns = align64((size_t)n * (K / 16) * 4);
	size_t nf = align64((size_t)n * (K / 32) * 4);
	uint8_t *s = scratch(be, qb + nq + nd + ns + nf);
	if (!s) return SL_ERR_NOMEM;
	j.xq = s;
	j.act.q = (int8_t *)(s + qb);
	j.act.d = (float *)(s + qb + nq);
	j.act.s = (int32_t *)(s + qb + nq + nd);
	j.act.sf = (float *)(s + qb + nq + nd + ns);
	j.k = &be->k;
	j.x = x;
	if (n == 1)
		act_task(&j, 0, 0);
	else
		sl_pool_run(be->pool, act_task, &j, n);
	int np = (M + SL_PANEL - 1) / SL_PANEL;
	int target = be->nthreads == 1 ? 1 : be->nthreads * 8;
	int ppt = (np + target - 1) / target;
	if (ppt > 4) ppt = 4;
	if (ppt < 1) ppt = 1;
	j.panels_per_task = ppt;
	sl_pool_run(be->pool, gemm_task, &j, (np + ppt - 1) / ppt);
	return SL_OK;
}

struct f16_job {
	const uint16_t *w;
	int M, K, n;
	const float *x;
	float *dst;
	int ldd;
	int rows_per_task;
};

#define F16_TILE_N 6
#define F16_TILE_M 4

static void f16_task(void *varg, int t, int thread) {
	(void)thread;
	struct f16_job *j = varg;
	int r0 = t * j->rows_per_task, r1 = r0 + j->rows_per_task;
	if (r1 > j->M) r1 = j->M;
	for (int c0 = 0; c0 < j->n; c0 += F16_TILE_N) {
		int nc = j->n - c0 < F16_TILE_N ? j->n - c0 : F16_TILE_N;
		for (int r = r0; r < r1; r += F16_TILE_M) {
			int nr = r1 - r < F16_TILE_M ? r1 - r : F16_TILE_M;
			sl_gemm512_f16(j->w, (size_t)j->K, j->K, r, nr, j->x, c0, nc, j->dst, j->ldd);
		}
	}
}

static int matmul_f16_512(sl_backend *be, const void *w, int M, int K, const float *x, int n, float *dst, int ldd) {
	struct f16_job j = {w, M, K, n, x, dst, ldd, 0};
	int target = be->nthreads == 1 ? 1 : be->nthreads * 8;
	int rpt = (M + target - 1) / target;
	rpt = (rpt + F16_TILE_M - 1) / F16_TILE_M * F16_TILE_M;
	if (rpt > 32) rpt = 32;
	j.rows_per_task = rpt;
	sl_pool_run(be->pool, f16_task, &j, (M + rpt - 1) / rpt);
	return SL_OK;
}

int sl_matmul(sl_backend *be, int wtype, const void *w, int M, int K, const float *x, int n, float *dst, int ldd) {
	return sl_matmul_packed(be, wtype, w, NULL, M, K, x, n, dst, ldd);
}

int sl_matmul_packed(sl_backend *be, int wtype, const void *w, const void *packed, int M, int K, const float *x, int n,
	float *dst, int ldd) {
	if (wtype < 0 || wtype >= SL_NTYPES || !be->k.vec_dot[wtype]) return SL_ERR_TYPE;
	if (n <= 0 || M <= 0) return SL_OK;
	if (packed) {
		if (!sl_packed_bytes(be, wtype, M, K)) return SL_ERR_ARG;
		return matmul_packed512(be, wtype, packed, M, K, x, n, dst, ldd);
	}
	if (wtype == SL_F16 && be->path >= SL_PATH_AVX512) return matmul_f16_512(be, w, M, K, x, n, dst, ldd);
	struct mm_job j;
	j.k = &be->k;
	j.wtype = wtype;
	j.xtype = be->k.vdt[wtype];
	j.w = w;
	j.ws = row_bytes(wtype, K);
	j.M = M;
	j.K = K;
	j.x = x;
	j.n = n;
	j.dst = dst;
	j.ldd = ldd;
	if (j.xtype == SL_F32) {
		j.xq = (uint8_t *)x;
		j.xs = (size_t)K * 4;
	} else {
		j.xs = row_bytes(j.xtype, K);
		j.xq = scratch(be, j.xs * (size_t)n);
		if (!j.xq) return SL_ERR_NOMEM;
		if (n == 1)
			mm_quantize_task(&j, 0, 0);
		else
			sl_pool_run(be->pool, mm_quantize_task, &j, n);
	}
	// Aim for several tasks per thread so uneven progress evens out, in
	// multiples of MM_ROWS_AT_ONCE rows.
	int target = be->nthreads == 1 ? 1 : be->nthreads * 8;
	int rpt = (M + target - 1) / target;
	rpt = (rpt + MM_ROWS_AT_ONCE - 1) / MM_ROWS_AT_ONCE * MM_ROWS_AT_ONCE;
	if (be->nthreads > 1 && rpt > 64) rpt = 64;
	j.rows_per_task = rpt;
	int ntasks = (M + rpt - 1) / rpt;
	sl_pool_run(be->pool, mm_task, &j, ntasks);
	return SL_OK;
}

// ---- GetRows ----

struct rows_job {
	const sl_kernels *k;
	int type, cols;
	const uint8_t *table;
	size_t rs;
	const int32_t *ids;
	float *dst;
};

static void get_rows_task(void *varg, int t, int thread) {
	(void)thread;
	struct rows_job *j = varg;
	j->k->dequant[j->type](j->table + (size_t)j->ids[t] * j->rs, j->dst + (size_t)t * j->cols, j->cols);
}

int sl_get_rows(sl_backend *be, int type, const void *table, int cols, const int32_t *ids, int n, float *dst) {
	if (type < 0 || type >= SL_NTYPES || !be->k.dequant[type]) return SL_ERR_TYPE;
	struct rows_job j = {&be->k, type, cols, table, row_bytes(type, cols), ids, dst};
	if ((size_t)n * cols < 65536)
		for (int t = 0; t < n; t++) get_rows_task(&j, t, 0);
	else
		sl_pool_run(be->pool, get_rows_task, &j, n);
	return SL_OK;
}

// ---- row-wise elementwise ops ----

enum { EW_RMSNORM, EW_ADD_BIAS, EW_ADD, EW_SILU_MUL, EW_SOFTMAX, EW_SCALE };

struct ew_job {
	const sl_kernels *k;
	int op;
	float *dst;
	const float *a, *b;
	int n, cols;
	int rows_per_task;
	float eps;
};

static void ew_task(void *varg, int t, int thread) {
	(void)thread;
	struct ew_job *j = varg;
	int r0 = t * j->rows_per_task, r1 = r0 + j->rows_per_task;
	if (r1 > j->n) r1 = j->n;
	size_t c = (size_t)j->cols;
	for (int r = r0; r < r1; r++) {
		switch (j->op) {
		case EW_RMSNORM:
			j->k->rmsnorm(j->dst + r * c, j->a + r * c, j->b, j->cols, j->eps);
			break;
		case EW_ADD_BIAS:
			j->k->add(j->dst + r * c, j->dst + r * c, j->b, j->cols);
			break;
		case EW_ADD:
			j->k->add(j->dst + r * c, j->a + r * c, j->b + r * c, j->cols);
			break;
		case EW_SILU_MUL:
			j->k->silu_mul(j->dst + r * c, j->a + r * c, j->b + r * c, j->cols);
			break;
		case EW_SOFTMAX:
			j->k->softmax(j->dst + r * c, j->cols);
			break;
		case EW_SCALE: {
			float *x = j->dst + r * c;
			for (size_t i = 0; i < c; i++) x[i] *= j->eps; // eps holds the factor
			break;
		}
		}
	}
}

static void run_ew(sl_backend *be, struct ew_job *j) {
	size_t total = (size_t)j->n * j->cols;
	if (be->nthreads == 1 || j->n == 1 || total < 32768) {
		j->rows_per_task = j->n;
		ew_task(j, 0, 0);
		return;
	}
	int target = be->nthreads * 4;
	j->rows_per_task = (j->n + target - 1) / target;
	sl_pool_run(be->pool, ew_task, j, (j->n + j->rows_per_task - 1) / j->rows_per_task);
}

int sl_rmsnorm(sl_backend *be, float *dst, const float *x, const float *w, int n, int cols, float eps) {
	struct ew_job j = {&be->k, EW_RMSNORM, dst, x, w, n, cols, 0, eps};
	run_ew(be, &j);
	return SL_OK;
}

int sl_add_bias(sl_backend *be, float *x, const float *b, int n, int cols) {
	struct ew_job j = {&be->k, EW_ADD_BIAS, x, NULL, b, n, cols, 0, 0};
	run_ew(be, &j);
	return SL_OK;
}

int sl_add(sl_backend *be, float *dst, const float *a, const float *b, int n, int cols) {
	struct ew_job j = {&be->k, EW_ADD, dst, a, b, n, cols, 0, 0};
	run_ew(be, &j);
	return SL_OK;
}

int sl_scale(sl_backend *be, float *x, float s, int n, int cols) {
	struct ew_job j = {&be->k, EW_SCALE, x, NULL, NULL, n, cols, 0, s};
	run_ew(be, &j);
	return SL_OK;
}

int sl_silu_mul(sl_backend *be, float *dst, const float *g, const float *u, int n, int cols) {
	struct ew_job j = {&be->k, EW_SILU_MUL, dst, g, u, n, cols, 0, 0};
	run_ew(be, &j);
	return SL_OK;
}

int sl_softmax(sl_backend *be, float *x, int n, int cols) {
	struct ew_job j = {&be->k, EW_SOFTMAX, x, NULL, NULL, n, cols, 0, 0};
	run_ew(be, &j);
	return SL_OK;
}

int sl_argmax(sl_backend *be, int32_t *dst, const float *x, int n, int cols) {
	(void)be;
	for (int r = 0; r < n; r++) {
		const float *p = x + (size_t)r * cols;
		int best = 0;
		float bv = p[0];
		for (int c = 1; c < cols; c++)
			if (p[c] > bv || (bv != bv && p[c] == p[c])) {
				bv = p[c];
				best = c;
			}
		dst[r] = best;
	}
	return SL_OK;
}

// ---- Rope ----

struct rope_job {
	float *x;
	int rows, cols;
	const int32_t *pos;
	int head_dim, dims, neox;
	float theta_scale, freq_scale;
	const float *freqs;
	int rows_per_task;
};

static void rope_task(void *varg, int t, int thread) {
	(void)thread;
	struct rope_job *j = varg;
	float cs[SL_MAX_ROPE_DIMS]; // cos, sin pairs
	int r0 = t * j->rows_per_task, r1 = r0 + j->rows_per_task;
	if (r1 > j->rows) r1 = j->rows;
	int half = j->dims / 2;
	for (int r = r0; r < r1; r++) {
		// Same recurrence as GGML: theta_i = p * theta_scale^i by repeated
		// multiplication, divided by the frequency factor, times the scale.
		float theta = (float)j->pos[r];
		for (int i = 0; i < half; i++) {
			float ff = j->freqs ? j->freqs[i] : 1.0f;
			float th = j->freq_scale * (theta / ff);
			cs[2 * i] = cosf(th);
			cs[2 * i + 1] = sinf(th);
			theta *= j->theta_scale;
		}
		float *row = j->x + (size_t)r * j->cols;
		for (int h = 0; h + j->head_dim <= j->cols; h += j->head_dim) {
			float *v = row + h;
			if (j->neox) {
				for (int i = 0; i < half; i++) {
					float c = cs[2 * i], s = cs[2 * i + 1];
					float x0 = v[i], x1 = v[i + half];
					v[i] = x0 * c - x1 * s;
					v[i + half] = x0 * s + x1 * c;
				}
			} else {
				for (int i = 0; i < half; i++) {
					float c = cs[2 * i], s = cs[2 * i + 1];
					float x0 = v[2 * i], x1 = v[2 * i + 1];
					v[2 * i] = x0 * c - x1 * s;
					v[2 * i + 1] = x0 * s + x1 * c;
				}
			}
		}
	}
}

int sl_rope(sl_backend *be, float *x, int rows, int cols, const int32_t *pos, int head_dim, int dims, float base,
	float scale, int neox, const float *freqs) {
	if (dims > SL_MAX_ROPE_DIMS || dims > head_dim || dims % 2) return SL_ERR_ARG;
	struct rope_job j = {x, rows, cols, pos, head_dim, dims, neox, powf(base, -2.0f / (float)dims), scale, freqs, 0};
	if (be->nthreads == 1 || rows < 4) {
		j.rows_per_task = rows;
		rope_task(&j, 0, 0);
	} else {
		int target = be->nthreads * 4;
		j.rows_per_task = (rows + target - 1) / target;
		sl_pool_run(be->pool, rope_task, &j, (rows + j.rows_per_task - 1) / j.rows_per_task);
	}
	return SL_OK;
}

// ---- StoreKV ----

int sl_store_kv(sl_backend *be, void *kc, void *vc, int f16, const float *k, const float *v, int n, int cols,
	const int32_t *slots) {
	for (int i = 0; i < n; i++) {
		size_t s = (size_t)slots[i];
		if (f16) {
			be->k.f32_to_f16((uint16_t *)kc + s * cols, k + (size_t)i * cols, cols);
			be->k.f32_to_f16((uint16_t *)vc + s * cols, v + (size_t)i * cols, cols);
		} else {
			memcpy((float *)kc + s * cols, k + (size_t)i * cols, (size_t)cols * 4);
			memcpy((float *)vc + s * cols, v + (size_t)i * cols, (size_t)cols * 4);
		}
	}
	return SL_OK;
}

// ---- Attention ----

struct attn_job {
	const sl_kernels *k;
	float *out;
	const float *q;
	const uint8_t *kc, *vc;
	int f16;
	const int32_t *pos, *seq, *bt;
	int max_blocks, block_size;
	int heads, kv_heads, head_dim;
	float scale;
	size_t kv_row; // bytes per cache row
	size_t elt;    // bytes per cache element
};

// Heads per attention task: the query heads that share one KV head, at
// most SL_ATTN_HEADS of them, read each cached K and V row once.
#define SL_ATTN_HEADS 8

// One task is one (token, group of heads sharing a KV head): a single pass
// over the token's positions in tiles, with the running max and sum of the
// online softmax per head.
static void attn_task(void *varg, int t, int thread) {
	(void)thread;
	struct attn_job *j = varg;
	int hpg = j->heads / j->kv_heads;              // query heads per KV head
	int nsub = (hpg + SL_ATTN_HEADS - 1) / SL_ATTN_HEADS; // task groups per KV head
	int i = t / (j->kv_heads * nsub);
	int rem = t % (j->kv_heads * nsub);
	int g = rem / nsub, sub = rem % nsub;
	int h0 = g * hpg + sub * SL_ATTN_HEADS;
	int nh = hpg - sub * SL_ATTN_HEADS;
	if (nh > SL_ATTN_HEADS) nh = SL_ATTN_HEADS;
	int D = j->head_dim;
	const float *q = j->q + ((size_t)i * j->heads + h0) * D;
	float *o = j->out + ((size_t)i * j->heads + h0) * D;
	const int32_t *bt = j->bt + (size_t)j->seq[i] * j->max_blocks;
	int npos = j->pos[i] + 1;
	size_t hoff = (size_t)g * D * j->elt;
	float acc[SL_ATTN_HEADS * SL_MAX_HEAD_DIM];
	float sc[SL_ATTN_HEADS][SL_ATTN_TILE];
	float s[SL_ATTN_HEADS], a[SL_ATTN_HEADS];
	size_t offs[SL_ATTN_TILE];
	float m[SL_ATTN_HEADS], l[SL_ATTN_HEADS];
	for (int d = 0; d < nh * D; d++) acc[d] = 0;
	for (int h = 0; h < nh; h++) {
		m[h] = -INFINITY;
		l[h] = 0;
	}
	for (int p0 = 0; p0 < npos; p0 += SL_ATTN_TILE) {
		int nt = npos - p0 < SL_ATTN_TILE ? npos - p0 : SL_ATTN_TILE;
		for (int u = 0; u < nt; u++) {
			int p = p0 + u;
			size_t slot = (size_t)bt[p / j->block_size] * j->block_size + p % j->block_size;
			offs[u] = slot * j->kv_row + hoff;
			const uint8_t *kr = j->kc + offs[u];
			if (j->f16)
				j->k->dot_f16_n(q, (size_t)D, nh, (const uint16_t *)kr, D, s);
			else
				j->k->dot_f32_n(q, (size_t)D, nh, (const float *)kr, D, s);
			for (int h = 0; h < nh; h++) sc[h][u] = s[h] * j->scale;
		}
		for (int h = 0; h < nh; h++) {
			float tm = -INFINITY;
			for (int u = 0; u < nt; u++)
				if (sc[h][u] > tm) tm = sc[h][u];
			float nm = tm > m[h] ? tm : m[h];
			if (nm != m[h]) {
				float c = expf(m[h] - nm); // 0 on the first tile
				if (l[h] != 0) j->k->scale(acc + h * D, c, D);
				l[h] *= c;
				m[h] = nm;
			}
			for (int u = 0; u < nt; u++) sc[h][u] -= m[h];
			j->k->exp_inplace(sc[h], nt);
			for (int u = 0; u < nt; u++) l[h] += sc[h][u];
		}
		for (int u = 0; u < nt; u++) {
			for (int h = 0; h < nh; h++) a[h] = sc[h][u];
			const uint8_t *vr = j->vc + offs[u];
			if (j->f16)
				j->k->axpy_f16_n(acc, (size_t)D, nh, a, (const uint16_t *)vr, D);
			else
				j->k->axpy_f32_n(acc, (size_t)D, nh, a, (const float *)vr, D);
		}
	}
	for (int h = 0; h < nh; h++) {
		float inv = l[h] > 0 ? 1.0f / l[h] : 0.0f;
		for (int d = 0; d < D; d++) o[h * D + d] = acc[h * D + d] * inv;
	}
}

int sl_attention(sl_backend *be, float *out, const float *q, const void *kc, const void *vc, int f16, int n,
	const int32_t *pos, const int32_t *seq, const int32_t *block_tables, int max_blocks, int block_size,
	int heads, int kv_heads, int head_dim, float scale) {
	if (head_dim > SL_MAX_HEAD_DIM) return SL_ERR_ARG;
	struct attn_job j;
	j.k = &be->k;
	j.out = out;
	j.q = q;
	j.kc = kc;
	j.vc = vc;
	j.f16 = f16;
	j.pos = pos;
	j.seq = seq;
	j.bt = block_tables;
	j.max_blocks = max_blocks;
	j.block_size = block_size;
	j.heads = heads;
	j.kv_heads = kv_heads;
	j.head_dim = head_dim;
	j.scale = scale;
	j.elt = f16 ? 2 : 4;
	j.kv_row = (size_t)kv_heads * head_dim * j.elt;
	int hpg = heads / kv_heads;
	int nsub = (hpg + SL_ATTN_HEADS - 1) / SL_ATTN_HEADS;
	sl_pool_run(be->pool, attn_task, &j, n * kv_heads * nsub);
	return SL_OK;
}

// ---- single-kernel entry points for the package's tests ----

static int table_for(int path, sl_kernels *k) {
	if (!sl_path_available(path)) return SL_ERR_PATH;
	sl_kernels_portable(k);
#if SL_X86
	if (path >= SL_PATH_AVX2) sl_kernels_avx2(k);
	if (path >= SL_PATH_AVX512) sl_kernels_avx512(k);
#endif
	return SL_OK;
}

int sl_test_quantize(int path, int type, const float *x, void *y, int K) {
	sl_kernels k;
	int rc = table_for(path, &k);
	if (rc) return rc;
	if (type < 0 || type >= SL_NTYPES || !k.quantize[type]) return SL_ERR_TYPE;
	k.quantize[type](x, y, K);
	return SL_OK;
}

int sl_test_vec_dot(int path, int wtype, int K, const void *w, const void *x, float *out) {
	sl_kernels k;
	int rc = table_for(path, &k);
	if (rc) return rc;
	if (wtype < 0 || wtype >= SL_NTYPES || !k.vec_dot[wtype]) return SL_ERR_TYPE;
	*out = k.vec_dot[wtype](K, w, x);
	return SL_OK;
}

int sl_test_act_type(int path, int wtype) {
	sl_kernels k;
	if (table_for(path, &k)) return -1;
	return k.vdt[wtype];
}
