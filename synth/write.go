package synth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/quant"
)

// Options describe a dummy model.
type Options struct {
	// Shape is the architecture to mirror, usually from Shapes.
	Shape Shape
	// Type is the file type name ("Q4_K_M"; see ParseFileType). Empty means
	// Q4_K_M.
	Type string
	// Seed selects the weights; the same options give the same bytes.
	Seed uint64

	// Tokenizer, when set, is a GGUF whose tokenizer.ggml.* and
	// tokenizer.chat_template* keys are copied; TokenizerPath names one to
	// open instead. With neither, the built-in byte-level tokenizer is used.
	Tokenizer     *gguf.File
	TokenizerPath string

	// Layers, when positive, replaces the shape's layer count (tests cut a
	// big shape to one or two layers).
	Layers int
	// Vocab, when positive, replaces the shape's vocabulary size. Otherwise
	// the shape's size is used, or a copied tokenizer's when that is larger.
	// A copied tokenizer with fewer tokens is padded with [PAD<id>] tokens.
	Vocab int

	// Progress, when set, receives progress lines (redrawn in place on a
	// terminal) and a summary.
	Progress io.Writer
	// Threads is the number of quantizing goroutines; 0 means
	// runtime.NumCPU().
	Threads int
	// Fast assembles the rows of quantized weight matrices from a pool of
	// 4096 blocks quantized once per type (picked by the same seeded
	// generator), instead of quantizing every block. The values have the
	// same distribution and the file the same layout, but blocks repeat;
	// K-quant models are written tens of times faster (the reference
	// K-quant scale search in package quant costs about 100ns per weight).
	// The bytes differ from a non-Fast file with the same seed.
	Fast bool
}

// resolve returns the effective shape (with the Layers and Vocab overrides
// applied) and file type of o, and the tokenizer metadata to write. It opens
// o.TokenizerPath when set.
func (o *Options) resolve() (Shape, FileType, []gguf.KV, error) {
	ft, err := ParseFileType(o.Type)
	if o.Type == "" {
		ft, err = ParseFileType("Q4_K_M")
	}
	if err != nil {
		return Shape{}, FileType{}, nil, err
	}
	s := o.Shape
	if o.Layers > 0 {
		s.Layers = o.Layers
	}
	if o.Vocab > 0 {
		s.Vocab = o.Vocab
	}
	src := o.Tokenizer
	if src != nil && o.TokenizerPath != "" {
		return Shape{}, FileType{}, nil, errors.New("synth: set Tokenizer or TokenizerPath, not both")
	}
	if o.TokenizerPath != "" {
		f, err := gguf.Open(o.TokenizerPath)
		if err != nil {
			return Shape{}, FileType{}, nil, fmt.Errorf("synth: tokenizer: %w", err)
		}
		defer f.Close()
		src = f
	}
	var tok []gguf.KV
	if src != nil {
		n, err := tokenCount(src)
		if err != nil {
			return Shape{}, FileType{}, nil, err
		}
		if n > s.Vocab && o.Vocab <= 0 {
			s.Vocab = n
		}
		if tok, err = copyTokenizer(src, s.Vocab); err != nil {
			return Shape{}, FileType{}, nil, err
		}
	} else if tok, err = builtinTokenizer(s.Vocab); err != nil {
		return Shape{}, FileType{}, nil, err
	}
	if err := s.Validate(); err != nil {
		return Shape{}, FileType{}, nil, err
	}
	return s, ft, tok, nil
}

// Write writes the dummy model described by opts to path, atomically: the
// file appears under its name only once it is complete.
func Write(path string, opts Options) error {
	return WriteContext(context.Background(), path, opts)
}

// WriteContext is Write with a context; cancelling it stops the work and
// removes the partial file.
func WriteContext(ctx context.Context, path string, opts Options) (err error) {
	s, ft, tok, err := opts.resolve()
	if err != nil {
		return err
	}
	plan, err := Plan(s, ft)
	if err != nil {
		return err
	}
	header, err := buildHeader(s, ft, opts.Seed, tok, plan)
	if err != nil {
		return err
	}

	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("synth: cannot write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	prog := newProgress(opts.Progress, fmt.Sprintf("%s %s", s.Name, ft.Name), plan, int64(len(header)))
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if _, err = bw.Write(header); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	gen := &generator{shape: s, seed: opts.Seed, fast: opts.Fast}
	if err = writeData(ctx, bw, gen, plan, threads, prog); err != nil {
		prog.finish(path, err)
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	prog.finish(path, nil)
	return nil
}

const alignment = gguf.DefaultAlignment

func alignUp(n uint64) uint64 { return (n + alignment - 1) / alignment * alignment }

// buildHeader encodes everything before the tensor data: the metadata
// through gguf.Writer (so values are encoded exactly as the writer does),
// then the tensor index, which gguf.Writer can only write together with the
// tensors' bytes, and the padding up to the data section.
func buildHeader(s Shape, ft FileType, seed uint64, tok []gguf.KV, plan []TensorPlan) ([]byte, error) {
	w := gguf.NewWriter()
	a := s.Arch
	hd := s.HeadDimension()
	kvs := []struct {
		k string
		v any
	}{
		{"general.architecture", a},
		{"general.type", "model"},
		{"general.name", fmt.Sprintf("dummy %s %s", s.Name, ft.Name)},
		{"general.description", "random weights (sluice synth); not a trained model"},
		{"sluice.synth.shape", s.Name},
		{"sluice.synth.seed", seed},
		{a + ".vocab_size", uint32(s.Vocab)},
		{a + ".context_length", uint32(s.ContextLength)},
		{a + ".embedding_length", uint32(s.Dim)},
		{a + ".block_count", uint32(s.Layers)},
		{a + ".feed_forward_length", uint32(s.FFN)},
		{a + ".attention.head_count", uint32(s.Heads)},
		{a + ".attention.head_count_kv", uint32(s.KVHeads)},
		{a + ".rope.freq_base", s.RopeBase},
		{a + ".attention.layer_norm_rms_epsilon", s.NormEps},
		{a + ".attention.key_length", uint32(hd)},
		{a + ".attention.value_length", uint32(hd)},
		{a + ".rope.dimension_count", uint32(hd)},
		{"general.file_type", ft.ID},
		{"general.quantization_version", uint32(2)},
	}
	if m := s.Multipliers; m != nil {
		kvs = append(kvs, []struct {
			k string
			v any
		}{
			{a + ".embedding_scale", m.Embedding}, {a + ".residual_scale", m.Residual},
			{a + ".logit_scale", m.Logit}, {a + ".attention.scale", m.Attention},
		}...)
	}
	for _, kv := range kvs {
		if err := w.Set(kv.k, kv.v); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	for _, kv := range tok {
		if err := w.Set(kv.Key, kv.Value); err != nil {
			return nil, fmt.Errorf("synth: %w", err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	b := buf.Bytes()
	// Header: magic, version (uint32), tensor count (uint64), KV count.
	if len(b) < 24 || string(b[:4]) != gguf.Magic || binary.LittleEndian.Uint64(b[8:16]) != 0 {
		return nil, errors.New("synth: unexpected GGUF header layout from gguf.Writer")
	}
	binary.LittleEndian.PutUint64(b[8:16], uint64(len(plan)))
	off := uint64(0)
	for i := range plan {
		tp := &plan[i]
		if len(tp.Name) > gguf.MaxTensorName {
			return nil, fmt.Errorf("synth: tensor name %q is too long", tp.Name)
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(len(tp.Name)))
		b = append(b, tp.Name...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(tp.Dims)))
		for _, d := range tp.Dims {
			b = binary.LittleEndian.AppendUint64(b, d)
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(tp.Type))
		b = binary.LittleEndian.AppendUint64(b, off)
		off = alignUp(off + uint64(tp.Bytes()))
	}
	for uint64(len(b))%alignment != 0 {
		b = append(b, 0)
	}
	return b, nil
}

// job is a block of consecutive rows of one tensor.
type job struct {
	tp         *TensorPlan
	row0, rows int
	last       bool // last block of its tensor
	out        []byte
	err        error
	done       chan struct{}
}

// chunkElems is the target number of elements per job.
const chunkElems = 1 << 18

// writeData generates and quantizes the tensors on threads goroutines and
// writes them in order to w, each padded to the alignment.
func writeData(ctx context.Context, w io.Writer, gen *generator, plan []TensorPlan, threads int, prog *progress) error {
	inflight := 2 * threads
	order := make(chan *job, inflight)
	work := make(chan *job)
	pool := make(chan []byte, inflight+threads)
	quit := make(chan struct{})
	var wg sync.WaitGroup

	wg.Add(1)
	go func() { // producer
		defer wg.Done()
		defer close(work)
		defer close(order)
		for i := range plan {
			tp := &plan[i]
			rows := tp.Rows()
			per := max(1, chunkElems/int(tp.Dims[0]))
			for r := 0; r < rows; r += per {
				j := &job{tp: tp, row0: r, rows: min(per, rows-r), last: r+per >= rows, done: make(chan struct{})}
				select {
				case order <- j:
				case <-quit:
					return
				}
				select {
				case work <- j:
				case <-quit:
					return
				}
			}
		}
	}()
	for t := 0; t < threads; t++ {
		wg.Add(1)
		go func() { // workers
			defer wg.Done()
			var scratch []float32
			for j := range work {
				n := j.rows * int(j.tp.Dims[0])
				size, err := quant.RowBytes(j.tp.Type, n)
				if err == nil {
					var buf []byte
					select {
					case buf = <-pool:
					default:
					}
					if cap(buf) < size {
						buf = make([]byte, size)
					}
					j.out = buf[:size]
					err = gen.rows(j.tp, j.row0, j.rows, j.out, &scratch)
				}
				if err != nil {
					j.err = fmt.Errorf("synth: tensor %s: %w", j.tp.Name, err)
				}
				close(j.done)
			}
		}()
	}

	var err error
	var pad [alignment]byte
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
		}
		if err = ctx.Err(); err == nil {
			err = j.err
		}
		if err == nil {
			_, err = w.Write(j.out)
		}
		if err == nil && j.last {
			if k := alignUp(uint64(j.tp.Bytes())) - uint64(j.tp.Bytes()); k > 0 {
				_, err = w.Write(pad[:k])
			}
		}
		if err != nil {
			break
		}
		prog.add(int64(len(j.out)), j.last)
		select {
		case pool <- j.out:
		default:
		}
	}
	if err != nil {
		close(quit)
		for range order { // let the producer finish
		}
	}
	wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !isSynthErr(err) {
		err = fmt.Errorf("synth: %w", err)
	}
	return err
}

func isSynthErr(err error) bool { return strings.HasPrefix(err.Error(), "synth:") }
