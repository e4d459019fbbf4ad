// Package kernels defines the Backend interface: the closed set of operations
// a transformer forward pass needs, over tensors a backend owns. The model
// package drives a Backend; kernels/cpu and kernels/cuda implement it.
//
// Conventions for every op:
//   - Tensors are 2-D and row-major: Rows rows of Cols elements of Type; a
//     row is contiguous. A batch of n tokens is a tensor of n rows.
//   - Activations are F32. Weights may be any quant type the backend lists
//     in SupportedWeights. KV caches are F32 or F16.
//   - Small integer metadata (token ids, positions, slots, block tables) is
//     passed as host []int32 slices; a device backend copies it as needed.
//   - Ops are issued in program order; results are visible to later ops.
//     Read copies a tensor back to the host and waits for pending work.
//   - Ops return an error for shape or type mismatches; they never panic on
//     bad arguments.
package kernels

import (
	"fmt"
	"sort"
	"sync"
	"unsafe"

	"github.com/sluice-llm/sluice/quant"
)

// Tensor is a 2-D tensor owned by the Backend that created it.
// Rows*Cols elements of Type; for block-quantized types Cols is a multiple of
// the type's block size and each row is quant.RowBytes(Type, Cols) bytes.
type Tensor struct {
	Type       quant.Type
	Rows, Cols int
	// Host is the storage of a host-resident tensor (CPU backend; for
	// weights, a slice of the memory-mapped model file). nil on device.
	Host []byte
	// Dev is backend-private device storage (nil on the CPU backend).
	Dev any
}

// RowBytes is the size in bytes of one row.
func (t *Tensor) RowBytes() int {
	n, _ := quant.RowBytes(t.Type, t.Cols)
	return n
}

// F32 views a host F32 tensor as a float32 slice of Rows*Cols elements.
// It returns nil for other types or device tensors.
func (t *Tensor) F32() []float32 {
	if t.Type != quant.F32 || t.Host == nil || len(t.Host) < 4*t.Rows*t.Cols {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&t.Host[0])), t.Rows*t.Cols)
}

// String describes the tensor's shape and type, for error messages.
func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	return fmt.Sprintf("%s(%d×%d)", t.Type, t.Rows, t.Cols)
}

// RopeParams configures rotary position embedding for one op call.
type RopeParams struct {
	HeadDim int     // elements per head
	Dims    int     // leading elements of each head that are rotated (≤ HeadDim, even)
	Base    float32 // frequency base θ (rope.freq_base)
	Scale   float32 // linear position scale: positions are multiplied by Scale (1 = none)
	NeoX    bool    // rotate pairs (i, i+Dims/2) instead of adjacent pairs (2i, 2i+1)
	// Freqs optionally scales each frequency (Dims/2 entries, rope_freqs /
	// llama3 rope scaling); nil means all ones.
	Freqs []float32
}

// AttnBatch describes a flat batch that mixes sequences and positions, over
// a paged KV cache. Token i belongs to sequence Seq[i] at position Pos[i];
// its K/V row is written at Slots[i]; it attends causally to positions
// 0..Pos[i] of its own sequence, whose slot for position p is
// BlockTables[Seq[i]*MaxBlocks + p/BlockSize]*BlockSize + p%BlockSize.
type AttnBatch struct {
	Pos         []int32 // (n) position of each token within its sequence
	Seq         []int32 // (n) sequence index of each token, into BlockTables
	Slots       []int32 // (n) KV cache row that receives the token's K and V
	BlockTables []int32 // (numSeqs, MaxBlocks) block ids; unused entries -1
	MaxBlocks   int     // columns of BlockTables
	BlockSize   int     // tokens per KV block
}

// AttnParams are the head geometry of one attention call.
type AttnParams struct {
	Heads, KVHeads, HeadDim int     // Heads % KVHeads == 0 (grouped-query)
	Scale                   float32 // multiplies q·k (usually 1/sqrt(HeadDim))
}

// Backend runs the op set on one device. A Backend is used by one goroutine
// at a time (the engine's step loop); implementations need not be safe for
// concurrent use.
type Backend interface {
	// Name identifies the backend ("cpu", "cuda") for logs and errors.
	Name() string
	// SupportedWeights lists the weight types MatMul and GetRows accept.
	SupportedWeights() []quant.Type

	// NewTensor allocates a zeroed tensor (activations, KV cache).
	NewTensor(t quant.Type, rows, cols int) (*Tensor, error)
	// Weight wraps (CPU: no copy) or uploads (GPU) weight data laid out as
	// in a GGUF file: rows of cols elements of type t. data must stay valid
	// and unchanged for the life of the tensor.
	Weight(t quant.Type, rows, cols int, data []byte) (*Tensor, error)
	// Free releases a tensor's storage. Freeing a weight or nil is allowed.
	Free(t *Tensor)
	// Write copies host F32 values into the leading rows of an F32 tensor.
	Write(dst *Tensor, src []float32) error
	// Read waits for pending work and copies an F32 tensor's leading
	// len(dst) elements to the host.
	Read(dst []float32, src *Tensor) error

	// GetRows: dst(i,:) = dequantize(table(ids[i],:)). dst is F32
	// (len(ids), table.Cols).
	GetRows(dst, table *Tensor, ids []int32) error
	// MatMul: dst(i,j) = Σ_k x(i,k)·w(j,k), i.e. dst = x·wᵀ with dst
	// (x.Rows, w.Rows), x (n, w.Cols) F32, w any supported weight type.
	// Only the first n rows of x and dst are used.
	MatMul(dst, x, w *Tensor, n int) error
	// RMSNorm: dst(i,:) = x(i,:) / sqrt(mean(x(i,:)²) + eps) ⊙ w, for the
	// first n rows; w is F32 (1, Cols). dst may alias x.
	RMSNorm(dst, x, w *Tensor, n int, eps float32) error
	// AddBias: x(i,:) += b for the first n rows; b is F32 (1, Cols).
	AddBias(x, b *Tensor, n int) error
	// Add: dst = a + b elementwise over the first n rows; dst may alias a or b.
	Add(dst, a, b *Tensor, n int) error
	// Scale: x(i,:) *= s for the first n rows of the F32 tensor x, in place.
	Scale(x *Tensor, s float32, n int) error
	// SiLUMul: dst = silu(gate) ⊙ up over the first n rows; dst may alias gate.
	SiLUMul(dst, gate, up *Tensor, n int) error
	// Rope rotates, in place, every head of the first len(pos) rows of x
	// (rows hold consecutive heads of p.HeadDim elements) by position pos[i].
	Rope(x *Tensor, pos []int32, p RopeParams) error
	// StoreKV writes k(i,:), v(i,:) (F32, KVHeads*HeadDim columns) to row
	// slots[i] of the caches kc, vc (F32 or F16, same columns).
	StoreKV(kc, vc, k, v *Tensor, slots []int32) error
	// Attention: out(i, h·D:(h+1)·D) = softmax_p(scale·q_h(i)·k_g(p)) · v_g(p)
	// over the positions p ≤ b.Pos[i] of token i's sequence, with g =
	// h / (Heads/KVHeads). q and out are F32 (n, Heads*HeadDim); kc and vc
	// are the caches StoreKV wrote (which must already hold token i itself).
	Attention(out, q, kc, vc *Tensor, b *AttnBatch, p AttnParams) error
	// Softmax normalizes each of the first n rows of x in place.
	Softmax(x *Tensor, n int) error
	// Argmax writes the index of the largest element of each of the first
	// len(dst) rows of x (ties: lowest index).
	Argmax(dst []int32, x *Tensor) error

	// Close releases every resource of the backend.
	Close() error
}

// WeightPacker is implemented by backends that keep a second, repacked
// copy of some weights (made on first use and held until Free).
// Memory planning counts these copies next to the weights themselves.
type WeightPacker interface {
	// PackedBytes is the size of the copy kept for a weight of rows×cols
	// elements of type t; 0 when the weight is used as it is.
	PackedBytes(t quant.Type, rows, cols int) int64
}

// Factory creates a backend. threads ≤ 0 means the backend's default. On
// error it returns a nil Backend interface, never a typed nil.
type Factory func(opts Options) (Backend, error)

// Options configure a backend at creation.
type Options struct {
	Threads int    // CPU worker threads; ≤ 0 means all cores
	Device  int    // GPU ordinal
	Path    string // CPU kernel path override: "", "portable", "avx2", "avx512"
}

var (
	regMu    sync.Mutex
	registry = map[string]Factory{}
)

// Register makes a backend available by name. Backends call it from init.
func Register(name string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	registry[name] = f
}

// Open creates the named backend. On error the Backend is nil, whatever
// the factory returned with the error.
func Open(name string, opts Options) (Backend, error) {
	regMu.Lock()
	f, ok := registry[name]
	regMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("kernels: no backend %q (available: %v)", name, Names())
	}
	be, err := f(opts)
	if err != nil {
		return nil, err
	}
	return be, nil
}

// Names lists the registered backends, sorted.
func Names() []string {
	regMu.Lock()
	defer regMu.Unlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DeviceMemory is implemented by backends whose tensors live in memory of
// their own (a GPU's): memory planning sizes the weights and KV caches out
// of it instead of the host's.
type DeviceMemory interface {
	// FreeDeviceMemory is the device's free and total memory in bytes,
	// measured when the backend was created, before it allocated anything.
	FreeDeviceMemory() (free, total int64)
	// DeviceName names the device for plans and messages.
	DeviceName() string
}
