package cuda

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestPlanConstantsMatchKernels reads each #define the launch plans rely on
// from the embedded sources.
func TestPlanConstantsMatchKernels(t *testing.T) {
	for _, c := range []struct {
		file, name string
		val        int
	}{
		{"matvec.cu", "MV_WARPS", mvWarps}, {"matvec.cu", "MV_MAXN", mvMaxN},
		{"matmul.cu", "MM_BM", mmBM}, {"matmul.cu", "MM_BN", mmBN}, {"matmul.cu", "MM_THREADS", mmThreads},
		{"attention.cu", "AD_WARPS", adWarps}, {"attention.cu", "AP_WARPS", apWarps},
		{"attention.cu", "AP_TQ", apTQ}, {"attention.cu", "MAX_D", maxHeadD},
	} {
		src, err := cuFS.ReadFile("cu/" + c.file)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^#define ` + c.name + ` (\d+)$`).FindSubmatch(src)
		if m == nil {
			t.Errorf("%s: no #define %s", c.file, c.name)
			continue
		}
		if v, _ := strconv.Atoi(string(m[1])); v != c.val {
			t.Errorf("%s: %s is %d, the Go plan uses %d", c.file, c.name, v, c.val)
		}
	}
}

func TestMatmulPlan(t *testing.T) {
	for _, c := range []struct {
		n, rows int
		kernel  string
		g       grid
	}{
		{1, 4096, "matvec_", grid{1024, 1, 1, 128}},
		{8, 4097, "matvec_", grid{1025, 1, 1, 128}},
		{9, 4096, "matmul_", grid{64, 1, 1, 256}},
		{512, 14336, "matmul_", grid{224, 8, 1, 256}},
	} {
		k, g := matmulPlan(c.n, c.rows)
		if k != c.kernel || g != c.g {
			t.Errorf("matmulPlan(%d, %d) = %s %+v, want %s %+v", c.n, c.rows, k, g, c.kernel, c.g)
		}
	}
}

func TestDecodeSplits(t *testing.T) {
	for _, c := range []struct {
		n, heads, sms, ctx int
		len, splits        int
	}{
		{1, 32, 132, 4096, 456, 9},    // one sequence: 264 blocks wanted, 9 splits
		{1, 32, 132, 100, 64, 2},      // short context: splits of at least 64
		{64, 32, 132, 4096, 4096, 1},  // a big batch fills the GPU alone
		{1, 1, 132, 100000, 3125, 32}, // capped at maxSplits
		{1, 8, 0, 1, 64, 1},
	} {
		l, s := decodeSplits(c.n, c.heads, c.sms, c.ctx)
		if l != c.len || s != c.splits {
			t.Errorf("decodeSplits(%d, %d, %d, %d) = %d, %d; want %d, %d", c.n, c.heads, c.sms, c.ctx, l, s, c.len, c.splits)
		}
		if l*s < c.ctx {
			t.Errorf("decodeSplits(%d, %d, %d, %d): %d splits of %d do not cover the context", c.n, c.heads, c.sms, c.ctx, s, l)
		}
	}
}

func TestPrefillTiles(t *testing.T) {
	seq := []int32{0, 0, 0, 1, 2, 2}
	for i := 0; i < 20; i++ {
		seq = append(seq, 3)
	}
	tiles, single := prefillTiles(nil, seq, len(seq))
	want := []int32{0, 3, 3, 1, 4, 2, 6, 16, 22, 4}
	if fmt.Sprint(tiles) != fmt.Sprint(want) || single {
		t.Errorf("prefillTiles = %v, %v; want %v, false", tiles, single, want)
	}
	tiles, single = prefillTiles(tiles, []int32{0, 1, 2}, 3)
	if fmt.Sprint(tiles) != "[0 1 1 1 2 1]" || !single {
		t.Errorf("decode batch: prefillTiles = %v, %v; want [0 1 1 1 2 1], true", tiles, single)
	}
	if allocs := testing.AllocsPerRun(10, func() { tiles, _ = prefillTiles(tiles, seq, len(seq)) }); allocs != 0 {
		t.Errorf("prefillTiles allocates %v times with a reused slice", allocs)
	}
}

func TestCacheKeyChangesWithEveryInput(t *testing.T) {
	base := cacheKey("rope.cu", "src", "sm_90", 12, 9, 12040)
	if base != cacheKey("rope.cu", "src", "sm_90", 12, 9, 12040) {
		t.Fatal("cache key is not deterministic")
	}
	for _, k := range []string{
		cacheKey("rope.cu", "src2", "sm_90", 12, 9, 12040),
		cacheKey("rope.cu", "src", "sm_89", 12, 9, 12040),
		cacheKey("rope.cu", "src", "sm_90", 13, 0, 12040),
		cacheKey("rope.cu", "src", "sm_90", 12, 9, 12080),
		cacheKey("argmax.cu", "src", "sm_90", 12, 9, 12040),
	} {
		if k == base {
			t.Errorf("key %s does not change with its inputs", k)
		}
	}
	if filepath.Base(base) != base {
		t.Errorf("key %q is not a plain file name", base)
	}
}

func TestCacheDirAndRoundTrip(t *testing.T) {
	home := t.TempDir()
	t.Setenv(EnvHome, home)
	dir := cacheDir()
	if dir != filepath.Join(home, "cuda-cache") {
		t.Fatalf("cacheDir = %q with %s=%s", dir, EnvHome, home)
	}
	key := cacheKey("rope.cu", "src", "sm_90", 12, 9, 12040)
	if readCache(dir, key) != nil {
		t.Fatal("empty cache returned an image")
	}
	if err := writeCache(dir, key, []byte("cubin")); err != nil {
		t.Fatal(err)
	}
	if got := readCache(dir, key); string(got) != "cubin" {
		t.Fatalf("readCache = %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("cache holds %d files (temporary files left?), want 1", len(entries))
	}
}
