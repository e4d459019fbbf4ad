// deq_host.cpp: runs quant.cuh's deq32 on the host, so the weight formats'
// bit layouts are checked against the quant package without a GPU.
// Usage: deq_host <format> <rows> <cols> < rows of raw blocks > floats.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
#include <vector>

#define __device__
#define __forceinline__ inline
typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;
struct float4 { float x, y, z, w; };

static float h2f(u16 h) {
	u32 s = (u32)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
	if (e == 0) {
		if (m == 0) {
			bits = s;
		} else {
			e = 113;
			while (!(m & 1024)) m <<= 1, e--;
			bits = s | (e << 23) | ((m & 1023) << 13);
		}
	} else if (e == 31) {
		bits = s | 0x7f800000u | (m << 13);
	} else {
		bits = s | ((e + 112) << 23) | (m << 13);
	}
	float f;
	memcpy(&f, &bits, 4);
	return f;
}
static float bf2f(u16 b) {
	u32 bits = (u32)b << 16;
	float f;
	memcpy(&f, &bits, 4);
	return f;
}
static u16 ld16(const u8 *p) { return (u16)(p[0] | p[1] << 8); }

#include "../cu/quant.cuh"

template <class W> static void run(const std::vector<u8> &in, long rows, long cols, long rb) {
	std::vector<float> out(cols);
	for (long r = 0; r < rows; r++) {
		for (long c = 0; c < cols / 32; c++) W::deq32(in.data() + r * rb, (int)c, out.data() + 32 * c);
		fwrite(out.data(), 4, cols, stdout);
	}
}

int main(int argc, char **argv) {
	if (argc != 5) return 2;
	long rows = atol(argv[2]), cols = atol(argv[3]), rb = atol(argv[4]);
	std::vector<u8> in(rows * rb + 16);
	if (fread(in.data(), 1, rows * rb, stdin) != (size_t)(rows * rb)) return 3;
#define RUN(name, W) \
	if (!strcmp(argv[1], #name)) return run<W>(in, rows, cols, rb), 0;
	FOR_EACH_WEIGHT(RUN)
	return 4;
}
