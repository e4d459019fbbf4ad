// simt_host.cpp: runs every kernel of ../cu on the host, one OS thread per
// CUDA thread, with __syncthreads and warp shuffles as barriers, and checks
// each against a plain reference. It proves the kernels' indexing, tiling,
// reductions and online softmax without a GPU (not their speed, nor
// anything about memory ordering beyond what the barriers give).
// Blocks run one at a time, so __shared__ can be a function-static.
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <thread>
#include <vector>
#include <algorithm>

#define SLUICE_HOST 1
#define __device__
#define __global__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(x)
using std::max;
using std::min;

struct dim3h {
	unsigned x = 0, y = 0, z = 0;
};
thread_local dim3h threadIdx, blockIdx;
dim3h blockDim, gridDim;
struct alignas(16) float4 {
	float x, y, z, w;
};

static std::barrier<> *blockBar;
static std::barrier<> *warpBar[32];
static float shflF[32][32];
static int shflI[32][32];

static void __syncthreads() { blockBar->arrive_and_wait(); }
template <class T> static T shfl(T (*slot)[32], T v, int o) {
	int w = threadIdx.x / 32, l = threadIdx.x % 32;
	slot[w][l] = v;
	warpBar[w]->arrive_and_wait();
	T r = slot[w][l ^ o];
	warpBar[w]->arrive_and_wait();
	return r;
}
static float __shfl_xor_sync(unsigned, float v, int o) { return shfl(shflF, v, o); }
static int __shfl_xor_sync(unsigned, int v, int o) { return shfl(shflI, v, o); }
static float __int_as_float(int i) {
	float f;
	memcpy(&f, &i, 4);
	return f;
}
static float __uint_as_float(unsigned i) {
	float f;
	memcpy(&f, &i, 4);
	return f;
}
static float rsqrtf(float x) { return 1.0f / sqrtf(x); }
#define __expf(x) expf(x) // glibc declares __expf but does not export it
static float h2f(unsigned short h) { _Float16 v; memcpy(&v, &h, 2); return (float)v; }
static unsigned short f2h(float f) { _Float16 v = (_Float16)f; unsigned short h; memcpy(&h, &v, 2); return h; }
static float bf2f(unsigned short b) { return __uint_as_float((unsigned)b << 16); }
static unsigned short ld16(const unsigned char *p) { return (unsigned short)(p[0] | p[1] << 8); }

#include "../cu/common.cuh"
#include "../cu/quant.cuh"
#include "../cu/get_rows.cu"
#include "../cu/matvec.cu"
#include "../cu/matmul.cu"
#include "../cu/rmsnorm.cu"
#include "../cu/elementwise.cu"
#include "../cu/rope.cu"
#include "../cu/softmax.cu"
#include "../cu/argmax.cu"
#include "../cu/kv_store.cu"
#include "../cu/attention.cu"

// launch runs body once per thread of every block of the grid.
static void launch(unsigned gx, unsigned gy, unsigned gz, unsigned threads, const std::function<void()> &body) {
	gridDim = {gx, gy, gz};
	blockDim = {threads, 1, 1};
	for (unsigned z = 0; z < gz; z++)
		for (unsigned y = 0; y < gy; y++)
			for (unsigned x = 0; x < gx; x++) {
				std::barrier<> bb(threads);
				std::vector<std::barrier<> *> wb;
				for (unsigned w = 0; w < threads / 32; w++) wb.push_back(new std::barrier<>(32));
				blockBar = &bb;
				for (unsigned w = 0; w < threads / 32; w++) warpBar[w] = wb[w];
				std::vector<std::thread> ts;
				for (unsigned t = 0; t < threads; t++)
					ts.emplace_back([&, t] {
						threadIdx = {t, 0, 0};
						blockIdx = {x, y, z};
						body();
						warpBar[t / 32]->arrive_and_drop();
						blockBar->arrive_and_drop();
					});
				for (auto &th : ts) th.join();
				for (auto *b : wb) delete b;
			}
}

static int failures;
static void check(const char *what, const float *got, const std::vector<double> &want, double tol) {
	double scale = 1e-6;
	for (double w : want) scale = std::max(scale, std::fabs(w));
	for (size_t i = 0; i < want.size(); i++) {
		if (!(std::fabs(got[i] - want[i]) <= tol * scale)) {
			printf("FAIL %s: element %zu = %g, want %g\n", what, i, got[i], want[i]);
			failures++;
			return;
		}
	}
	printf("ok   %s\n", what);
}

static std::mt19937 rng(1);
static std::vector<float> randv(size_t n) {
	std::normal_distribution<float> d;
	std::vector<float> v(n);
	for (auto &x : v) x = d(rng);
	return v;
}

// q8Weights makes rows×cols Q8_0 blocks with scales in [0.01, 0.02].
static std::vector<u8> q8Weights(int rows, int cols) {
	std::vector<u8> w((size_t)rows * cols / 32 * 34);
	std::uniform_int_distribution<int> q(-127, 127);
	for (size_t b = 0; b < w.size() / 34; b++) {
		u16 d = f2h(0.01f + 0.01f * (b % 7) / 7);
		memcpy(&w[b * 34], &d, 2);
		for (int k = 0; k < 32; k++) w[b * 34 + 2 + k] = (u8)(i8)q(rng);
	}
	return w;
}

static void testMatmul() {
	const int rows = 70, cols = 96;
	auto w = q8Weights(rows, cols);
	i64 rb = cols / 32 * 34;
	std::vector<float> deq((size_t)rows * cols);
	for (int j = 0; j < rows; j++)
		for (int c = 0; c < cols / 32; c++) Q8_0W::deq32(&w[j * rb], c, &deq[(size_t)j * cols + 32 * c]);
	for (int n : {1, 5, 8, 9, 70}) {
		auto x = randv((size_t)n * cols);
		std::vector<float> out((size_t)n * rows, NAN);
		std::vector<double> want((size_t)n * rows);
		for (int i = 0; i < n; i++)
			for (int j = 0; j < rows; j++) {
				double s = 0;
				for (int k = 0; k < cols; k++) s += (double)x[i * cols + k] * deq[(size_t)j * cols + k];
				want[(size_t)i * rows + j] = s;
			}
		char what[64];
		if (n <= MV_MAXN) {
			launch((rows + MV_WARPS - 1) / MV_WARPS, 1, 1, MV_WARPS * 32,
				[&] { matvec_q8_0(out.data(), x.data(), w.data(), rows, cols, n, rb); });
			snprintf(what, sizeof what, "matvec_q8_0 n=%d", n);
		} else {
			launch((rows + MM_BN - 1) / MM_BN, (n + MM_BM - 1) / MM_BM, 1, MM_THREADS,
				[&] { matmul_q8_0(out.data(), x.data(), w.data(), rows, cols, n, rb); });
			snprintf(what, sizeof what, "matmul_q8_0 n=%d", n);
		}
		check(what, out.data(), want, 1e-5);
	}
	int ids[3] = {69, 0, 69};
	std::vector<float> out(3 * cols);
	std::vector<double> want;
	for (int id : ids) want.insert(want.end(), deq.begin() + (size_t)id * cols, deq.begin() + (size_t)(id + 1) * cols);
	launch(3, 1, 1, 128, [&] { get_rows_q8_0(out.data(), w.data(), ids, cols, rb); });
	check("get_rows_q8_0", out.data(), want, 0);
}

static void testRowOps() {
	const int n = 3, cols = 300;
	auto a = randv(n * cols), b = randv(n * cols), w = randv(cols);
	std::vector<float> out(n * cols);
	std::vector<double> want(n * cols);
	i64 total = n * cols;
	unsigned blocks = (total + 255) / 256;
	launch(blocks, 1, 1, 256, [&] { add(out.data(), a.data(), b.data(), total); });
	for (int i = 0; i < n * cols; i++) want[i] = (double)a[i] + b[i];
	check("add", out.data(), want, 1e-7);
	launch(blocks, 1, 1, 256, [&] { silu_mul(out.data(), a.data(), b.data(), total); });
	for (int i = 0; i < n * cols; i++) want[i] = a[i] / (1 + std::exp(-(double)a[i])) * b[i];
	check("silu_mul", out.data(), want, 1e-6);
	launch(n, 1, 1, 256, [&] { rmsnorm(out.data(), a.data(), w.data(), cols, 1e-5f); });
	for (int i = 0; i < n; i++) {
		double ss = 0;
		for (int k = 0; k < cols; k++) ss += (double)a[i * cols + k] * a[i * cols + k];
		for (int k = 0; k < cols; k++) want[i * cols + k] = a[i * cols + k] / std::sqrt(ss / cols + 1e-5) * w[k];
	}
	check("rmsnorm", out.data(), want, 1e-5);
	auto x = a;
	launch(n, 1, 1, 256, [&] { softmax(x.data(), cols); });
	for (int i = 0; i < n; i++) {
		double m = -INFINITY, s = 0;
		for (int k = 0; k < cols; k++) m = std::max(m, (double)a[i * cols + k]);
		for (int k = 0; k < cols; k++) s += std::exp(a[i * cols + k] - m);
		for (int k = 0; k < cols; k++) want[i * cols + k] = std::exp(a[i * cols + k] - m) / s;
	}
	check("softmax", x.data(), want, 1e-5);
	x = a;
	launch(blocks, 1, 1, 256, [&] { add_bias(x.data(), w.data(), cols, total); });
	for (int i = 0; i < n * cols; i++) want[i] = (double)a[i] + w[i % cols];
	check("add_bias", x.data(), want, 1e-7);
	x = a;
	launch(blocks, 1, 1, 256, [&] { scale(x.data(), -0.375f, total); });
	for (int i = 0; i < n * cols; i++) want[i] = -0.375 * a[i];
	check("scale", x.data(), want, 1e-7);
	x = a;
	x[0 * cols + 7] = x[0 * cols + 250] = 100; // a tie: the lower index wins
	x[2 * cols + 299] = 100;
	int idx[n] = {-1, -1, -1};
	launch(n, 1, 1, 256, [&] { argmax(idx, x.data(), cols); });
	int best1 = (int)(std::max_element(x.begin() + cols, x.begin() + 2 * cols) - x.begin() - cols);
	if (idx[0] != 7 || idx[1] != best1 || idx[2] != 299) {
		printf("FAIL argmax: %d %d %d, want 7 %d 299\n", idx[0], idx[1], idx[2], best1);
		failures++;
	} else {
		printf("ok   argmax\n");
	}
}

static void testRope() {
	const int heads = 3, hd = 64;
	int pos[4] = {0, 1, 77, 4000};
	std::vector<float> freqs(16);
	for (int i = 0; i < 16; i++) freqs[i] = 1 + i / 4.0f;
	struct { int dims, neox; const float *ff; float scale; } cs[] = {{64, 0, nullptr, 1}, {64, 1, nullptr, 1}, {32, 0, freqs.data(), 0.5f}};
	for (auto &c : cs) {
		auto x = randv(4 * heads * hd), orig = x;
		float ts = powf(10000.0f, -2.0f / c.dims);
		launch(4, heads, 1, std::max(32, (c.dims / 2 + 31) / 32 * 32),
			[&] { rope(x.data(), pos, c.ff, heads * hd, hd, c.dims, ts, c.scale, c.neox); });
		std::vector<double> want(orig.begin(), orig.end());
		for (int r = 0; r < 4; r++)
			for (int h = 0; h < heads; h++)
				for (int i = 0; i < c.dims / 2; i++) {
					double th = c.scale * (pos[r] * std::pow(10000.0, -2.0 * i / c.dims) / (c.ff ? c.ff[i] : 1));
					int a = c.neox ? i : 2 * i, b = c.neox ? i + c.dims / 2 : 2 * i + 1;
					double x0 = orig[r * heads * hd + h * hd + a], x1 = orig[r * heads * hd + h * hd + b];
					want[r * heads * hd + h * hd + a] = x0 * std::cos(th) - x1 * std::sin(th);
					want[r * heads * hd + h * hd + b] = x0 * std::sin(th) + x1 * std::cos(th);
				}
		char what[64];
		snprintf(what, sizeof what, "rope dims=%d neox=%d freqs=%d", c.dims, c.neox, c.ff != nullptr);
		check(what, x.data(), want, 2e-3); // float θ at position 4000
	}
}

static void testAttention(bool f16) {
	const int heads = 4, kvh = 2, D = 64, bs = 4, maxBlocks = 16;
	std::vector<int> lens = {1, 20, 37};
	std::vector<int> bt(lens.size() * maxBlocks);
	for (size_t i = 0; i < bt.size(); i++) bt[i] = (int)((i * 7) % bt.size()); // shuffled, distinct
	std::vector<int> pos, seq, slots;
	for (size_t s = 0; s < lens.size(); s++)
		for (int p = 0; p < lens[s]; p++)
			pos.push_back(p), seq.push_back((int)s), slots.push_back(bt[s * maxBlocks + p / bs] * bs + p % bs);
	int n = (int)pos.size(), cols = kvh * D, rowsC = (int)bt.size() * bs;
	auto k = randv((size_t)n * cols), v = randv((size_t)n * cols), q = randv((size_t)n * heads * D);
	std::vector<float> kc32((size_t)rowsC * cols), vc32((size_t)rowsC * cols);
	std::vector<u16> kc16((size_t)rowsC * cols), vc16((size_t)rowsC * cols);
	if (f16)
		launch(n, 1, 1, 256, [&] { kv_store_f16(kc16.data(), vc16.data(), k.data(), v.data(), slots.data(), cols); });
	else
		launch(n, 1, 1, 256, [&] { kv_store_f32(kc32.data(), vc32.data(), k.data(), v.data(), slots.data(), cols); });
	auto kvv = [&](bool isK, int tok, int e) {
		float x = (isK ? k : v)[(size_t)tok * cols + e];
		return f16 ? h2f(f2h(x)) : x;
	};
	float scale = 1 / sqrtf(D);
	std::vector<double> want((size_t)n * heads * D);
	for (int i = 0; i < n; i++)
		for (int h = 0; h < heads; h++) {
			int g = h / (heads / kvh), first = i - pos[i];
			std::vector<double> sc(pos[i] + 1);
			double m = -INFINITY, sum = 0;
			for (int p = 0; p <= pos[i]; p++) {
				double s = 0;
				for (int d = 0; d < D; d++) s += (double)q[(size_t)i * heads * D + h * D + d] * scale * kvv(true, first + p, g * D + d);
				sc[p] = s, m = std::max(m, s);
			}
			for (auto &s : sc) s = std::exp(s - m), sum += s;
			for (int d = 0; d < D; d++) {
				double o = 0;
				for (int p = 0; p <= pos[i]; p++) o += sc[p] * kvv(false, first + p, g * D + d);
				want[(size_t)i * heads * D + h * D + d] = o / sum;
			}
		}
	const void *kc = f16 ? (const void *)kc16.data() : kc32.data(), *vc = f16 ? (const void *)vc16.data() : vc32.data();
	// Prefill tiles over the whole batch.
	std::vector<int> tiles;
	for (int i = 0; i < n;) {
		int j = i + 1;
		while (j < n && j - i < AP_TQ && seq[j] == seq[i]) j++;
		tiles.push_back(i), tiles.push_back(j - i), i = j;
	}
	std::vector<float> out((size_t)n * heads * D, NAN);
	launch((unsigned)tiles.size() / 2, heads, 1, AP_WARPS * 32, [&] {
		if (f16)
			attn_prefill_f16(out.data(), q.data(), (const u16 *)kc, (const u16 *)vc, tiles.data(), pos.data(), seq.data(), bt.data(), maxBlocks, bs, heads, kvh, D, scale);
		else
			attn_prefill_f32(out.data(), q.data(), (const float *)kc, (const float *)vc, tiles.data(), pos.data(), seq.data(), bt.data(), maxBlocks, bs, heads, kvh, D, scale);
	});
	check(f16 ? "attn_prefill_f16" : "attn_prefill_f32", out.data(), want, 1e-5);
	// Split-K decode of the last token of each sequence (and one early
	// token, whose later splits are empty), splits of 8 positions.
	std::vector<int> sel = {0, 20, 57, 30};
	int m = (int)sel.size();
	std::vector<int> dpos, dseq;
	std::vector<float> dq;
	std::vector<double> dwant;
	for (int i : sel) {
		dpos.push_back(pos[i]), dseq.push_back(seq[i]);
		dq.insert(dq.end(), q.begin() + (size_t)i * heads * D, q.begin() + (size_t)(i + 1) * heads * D);
		dwant.insert(dwant.end(), want.begin() + (size_t)i * heads * D, want.begin() + (size_t)(i + 1) * heads * D);
	}
	const int splitLen = 8, splits = (37 + splitLen - 1) / splitLen;
	std::vector<float> po((size_t)m * heads * splits * D), pml((size_t)m * heads * splits * 2);
	std::vector<float> dout((size_t)m * heads * D, NAN);
	launch(m, heads, splits, AD_WARPS * 32, [&] {
		if (f16)
			attn_decode_f16(po.data(), pml.data(), dq.data(), (const u16 *)kc, (const u16 *)vc, dpos.data(), dseq.data(), bt.data(), maxBlocks, bs, heads, kvh, D, scale, splitLen);
		else
			attn_decode_f32(po.data(), pml.data(), dq.data(), (const float *)kc, (const float *)vc, dpos.data(), dseq.data(), bt.data(), maxBlocks, bs, heads, kvh, D, scale, splitLen);
	});
	launch(m, heads, 1, 128, [&] { attn_combine(dout.data(), po.data(), pml.data(), heads, D, splits); });
	check(f16 ? "attn_decode_f16 + combine" : "attn_decode_f32 + combine", dout.data(), dwant, 1e-5);
}

int main() {
	testMatmul();
	testRowOps();
	testRope();
	testAttention(false);
	testAttention(true);
	if (failures) printf("%d failures\n", failures);
	return failures ? 1 : 0;
}
