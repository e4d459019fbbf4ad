package spec

import (
	"testing"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

// countingBackend counts the tensors allocated and not yet freed.
type countingBackend struct {
	kernels.Backend
	live int
}

func (b *countingBackend) NewTensor(t quant.Type, rows, cols int) (*kernels.Tensor, error) {
	x, err := b.Backend.NewTensor(t, rows, cols)
	if err == nil {
		b.live++
	}
	return x, err
}

func (b *countingBackend) Free(t *kernels.Tensor) {
	b.live--
	b.Backend.Free(t)
}

// TestDraftCloseFreesCache: Close releases every tensor of the draft's KV
// cache, leaving the model's own allocations as they were.
func TestDraftCloseFreesCache(t *testing.T) {
	be := &countingBackend{Backend: testBackend(t)}
	dm := loadModel(t, be, "synth-llama-q4_0.gguf")
	before := be.live
	d, err := NewDraft(dm.m, DraftOptions{Slots: 2, MaxTokens: 32})
	if err != nil {
		t.Fatal(err)
	}
	if be.live <= before {
		t.Fatalf("NewDraft allocated no tensors (%d live, %d before)", be.live, before)
	}
	d.Close()
	if be.live != before {
		t.Fatalf("after Close: %d tensors live, want %d", be.live, before)
	}
}
