package cuda

// Launch shapes: pure functions of the op's sizes, mirrored from the
// #defines of the .cu files (tested against them) and unit-tested without
// a GPU.

// Kernel constants; each must match its #define in cu/.
const (
	mvWarps   = 4   // MV_WARPS, matvec.cu
	mvMaxN    = 8   // MV_MAXN, matvec.cu
	mmBM      = 64  // MM_BM, matmul.cu
	mmBN      = 64  // MM_BN, matmul.cu
	mmThreads = 256 // MM_THREADS, matmul.cu
	adWarps   = 4   // AD_WARPS, attention.cu
	apWarps   = 4   // AP_WARPS, attention.cu
	apTQ      = 16  // AP_TQ, attention.cu
	maxHeadD  = 256 // MAX_D, attention.cu
	ewThreads = 256 // elementwise block size
)

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// matmulPlan picks the decode matvec for up to mvMaxN activation rows and
// the tiled matmul above: it returns the kernel name prefix and the grid.
func matmulPlan(n, rows int) (string, grid) {
	if n <= mvMaxN {
		return "matvec_", grid{X: ceilDiv(rows, mvWarps), Y: 1, Z: 1, Threads: 32 * mvWarps}
	}
	return "matmul_", grid{X: ceilDiv(rows, mmBN), Y: ceilDiv(n, mmBM), Z: 1, Threads: mmThreads}
}

// elementwisePlan covers total elements with blocks of ewThreads.
func elementwisePlan(total int) grid {
	return grid{X: ceilDiv(total, ewThreads), Y: 1, Z: 1, Threads: ewThreads}
}

// ropePlan: one block per (row, head), one thread per rotated pair (whole
// warps, at most 256).
func ropePlan(rows, heads, dims int) grid {
	t := min(max(32, ceilDiv(dims/2, 32)*32), 256)
	return grid{X: rows, Y: heads, Z: 1, Threads: t}
}

// Split-K sizing for decode attention.
const (
	minSplitLen = 64 // positions per split at least
	maxSplits   = 32
)

// decodeSplits chooses the split length so that n·heads·splits blocks
// cover the GPU about twice over without splits shorter than minSplitLen;
// it returns the split length and count for contexts up to maxCtx tokens.
func decodeSplits(n, heads, sms, maxCtx int) (splitLen, splits int) {
	want := ceilDiv(2*max(sms, 1), max(n*heads, 1))
	want = min(max(want, 1), maxSplits)
	splitLen = max(ceilDiv(maxCtx, want), minSplitLen)
	return splitLen, ceilDiv(maxCtx, splitLen)
}

// prefillTiles groups the batch into runs of at most apTQ consecutive tokens
// of one sequence, appending (first token, count) pairs to tiles. It
// returns the tiles and whether every run has a single token (a pure
// decode batch, better served by split-K).
func prefillTiles(tiles []int32, seq []int32, n int) ([]int32, bool) {
	tiles = tiles[:0]
	single := true
	for i := 0; i < n; {
		j := i + 1
		for j < n && j-i < apTQ && seq[j] == seq[i] {
			j++
		}
		if j-i > 1 {
			single = false
		}
		tiles = append(tiles, int32(i), int32(j-i))
		i = j
	}
	return tiles, single
}
