package gguf

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
)

// writeSplit writes src as two parts the way gguf-split lays them out:
// part 0 carries the metadata, both carry split.no/split.count.
func writeSplit(t *testing.T, src *File, dir string) []string {
	t.Helper()
	half := len(src.Tensors) / 2
	var paths []string
	for part, ts := range [][]TensorInfo{src.Tensors[:half], src.Tensors[half:]} {
		w := NewWriter()
		if part == 0 {
			for _, kv := range src.KVs {
				if err := w.Set(kv.Key, kv.Value); err != nil {
					t.Fatal(err)
				}
			}
		}
		w.Set("split.no", uint16(part))
		w.Set("split.count", uint16(2))
		for i := range ts {
			if err := w.AddTensor(ts[i].Name, ts[i].Type, ts[i].Dims, src.TensorData(&ts[i])); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, "m-0000"+string(rune('1'+part))+"-of-00002.gguf")
		if err := w.WriteFile(p); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

func TestOpenSplit(t *testing.T) {
	src, err := Open(testenv.Shared(t, "models", "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	paths := writeSplit(t, src, t.TempDir())

	f, err := OpenSplit(paths)
	if err != nil {
		t.Fatal(err)
	}
	if f.Arch() != "llama" || len(f.Tensors) != len(src.Tensors) {
		t.Fatalf("split: arch %q, %d tensors; want llama, %d", f.Arch(), len(f.Tensors), len(src.Tensors))
	}
	for i := range src.Tensors {
		want := &src.Tensors[i]
		got, ok := f.Tensor(want.Name)
		if !ok {
			t.Fatalf("tensor %s missing from the split file", want.Name)
		}
		if !bytes.Equal(f.TensorData(got), src.TensorData(want)) {
			t.Fatalf("tensor %s: data differs", want.Name)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if f.TensorData(&f.Tensors[0]) != nil {
		t.Error("TensorData after Close should be nil")
	}

	if _, err := OpenSplit([]string{paths[1], paths[0]}); err == nil || !strings.Contains(err.Error(), "split.no") {
		t.Errorf("parts out of order: err = %v, want a split.no error", err)
	}
	if _, err := OpenSplit(paths[:1]); err == nil || !strings.Contains(err.Error(), "split.count") {
		t.Errorf("a lone part of a split: err = %v, want a split.count error", err)
	}
	if one, err := OpenSplit([]string{testenv.Shared(t, "models", "stories260K.gguf")}); err != nil {
		t.Errorf("one unsplit file opens like Open: %v", err)
	} else {
		one.Close()
	}
	if _, err := OpenSplit([]string{paths[0], paths[1], paths[1]}); err == nil || !strings.Contains(err.Error(), "split.count") {
		t.Errorf("three paths for a 2-part split: err = %v, want a split.count error", err)
	}
	if _, err := OpenSplit(nil); err == nil {
		t.Error("OpenSplit(nil) should fail")
	}
}
