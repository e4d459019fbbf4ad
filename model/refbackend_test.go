package model

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/sluice-llm/sluice/kernels"
	"github.com/sluice-llm/sluice/quant"
)

// refBackend is a slow, obviously-correct pure-Go kernels.Backend built on
// the quant package's reference dequantizers and dot products (which
// quantize activations the way llama.cpp's CPU path does). Tests use it as
// a second opinion next to the real backends.
//
// With ggml set, attention over an F16 cache rounds like llama.cpp's CPU
// path without flash attention (the configuration of the golden data): the
// query is rounded to F16 before q·k, and the softmax probabilities are
// rounded to F16 before they weight V. Registered as "ref" (plain) and
// "ref-ggml".
type refBackend struct{ ggml bool }

func init() {
	kernels.Register("ref", func(kernels.Options) (kernels.Backend, error) { return refBackend{}, nil })
	kernels.Register("ref-ggml", func(kernels.Options) (kernels.Backend, error) { return refBackend{ggml: true}, nil })
}

func (refBackend) Name() string { return "ref" }

func (refBackend) SupportedWeights() []quant.Type {
	return []quant.Type{quant.F32, quant.F16, quant.BF16, quant.Q4_0, quant.Q4_1, quant.Q5_0, quant.Q5_1,
		quant.Q8_0, quant.Q2_K, quant.Q3_K, quant.Q4_K, quant.Q5_K, quant.Q6_K}
}

func (refBackend) NewTensor(t quant.Type, rows, cols int) (*kernels.Tensor, error) {
	rb, err := quant.RowBytes(t, cols)
	if err != nil {
		return nil, err
	}
	return &kernels.Tensor{Type: t, Rows: rows, Cols: cols, Host: make([]byte, rows*rb)}, nil
}

func (refBackend) Weight(t quant.Type, rows, cols int, data []byte) (*kernels.Tensor, error) {
	rb, err := quant.RowBytes(t, cols)
	if err != nil {
		return nil, err
	}
	if len(data) != rows*rb {
		return nil, fmt.Errorf("ref: weight data %d bytes, want %d", len(data), rows*rb)
	}
	return &kernels.Tensor{Type: t, Rows: rows, Cols: cols, Host: data}, nil
}

func (refBackend) Free(*kernels.Tensor) {}

func f32s(t *kernels.Tensor) []float32 {
	if len(t.Host) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&t.Host[0])), len(t.Host)/4)
}

func row(t *kernels.Tensor, i int) []float32 { return f32s(t)[i*t.Cols : (i+1)*t.Cols] }

func (refBackend) Write(dst *kernels.Tensor, src []float32) error {
	copy(f32s(dst), src)
	return nil
}

func (refBackend) Read(dst []float32, src *kernels.Tensor) error {
	copy(dst, f32s(src))
	return nil
}

func rawRow(t *kernels.Tensor, i int) []byte {
	rb := t.RowBytes()
	return t.Host[i*rb : (i+1)*rb]
}

func (refBackend) GetRows(dst, table *kernels.Tensor, ids []int32) error {
	if dst.Rows < len(ids) || dst.Cols != table.Cols {
		return fmt.Errorf("ref: GetRows shapes %v %v", dst, table)
	}
	for i, id := range ids {
		if err := quant.Dequantize(table.Type, rawRow(table, int(id)), row(dst, i)); err != nil {
			return err
		}
	}
	return nil
}

func (refBackend) MatMul(dst, x, w *kernels.Tensor, n int) error {
	if x.Cols != w.Cols || dst.Cols != w.Rows || x.Rows < n || dst.Rows < n {
		return fmt.Errorf("ref: MatMul shapes dst %v x %v w %v", dst, x, w)
	}
	vt := quant.VecDotType(w.Type)
	qb, err := quant.RowBytes(vt, x.Cols)
	if err != nil {
		return err
	}
	xq := make([]byte, qb)
	for i := 0; i < n; i++ {
		if err := quant.Quantize(vt, row(x, i), xq); err != nil {
			return err
		}
		out := row(dst, i)
		for j := 0; j < w.Rows; j++ {
			v, err := quant.VecDot(w.Type, w.Cols, rawRow(w, j), xq)
			if err != nil {
				return err
			}
			out[j] = v
		}
	}
	return nil
}

func (refBackend) RMSNorm(dst, x, w *kernels.Tensor, n int, eps float32) error {
	g := f32s(w)
	for i := 0; i < n; i++ {
		xs, d := row(x, i), row(dst, i)
		var sum float64
		for _, v := range xs {
			sum += float64(v) * float64(v)
		}
		scale := float32(1 / math.Sqrt(float64(float32(sum/float64(len(xs)))+eps)))
		for j, v := range xs {
			d[j] = v * scale * g[j]
		}
	}
	return nil
}

func (refBackend) Scale(x *kernels.Tensor, s float32, n int) error {
	for i := 0; i < n; i++ {
		for j := range row(x, i) {
			row(x, i)[j] *= s
		}
	}
	return nil
}

func (refBackend) AddBias(x, b *kernels.Tensor, n int) error {
	bs := f32s(b)
	for i := 0; i < n; i++ {
		for j := range row(x, i) {
			row(x, i)[j] += bs[j]
		}
	}
	return nil
}

func (refBackend) Add(dst, a, b *kernels.Tensor, n int) error {
	for i := 0; i < n; i++ {
		d, as, bs := row(dst, i), row(a, i), row(b, i)
		for j := range d {
			d[j] = as[j] + bs[j]
		}
	}
	return nil
}

func (refBackend) SiLUMul(dst, gate, up *kernels.Tensor, n int) error {
	for i := 0; i < n; i++ {
		d, g, u := row(dst, i), row(gate, i), row(up, i)
		for j := range d {
			d[j] = g[j] / (1 + float32(math.Exp(float64(-g[j])))) * u[j]
		}
	}
	return nil
}

func (refBackend) Rope(x *kernels.Tensor, pos []int32, p kernels.RopeParams) error {
	thetaScale := math.Pow(float64(p.Base), -2/float64(p.Dims))
	for i, ps := range pos {
		xs := row(x, i)
		for h := 0; h+p.HeadDim <= len(xs); h += p.HeadDim {
			hd := xs[h : h+p.HeadDim]
			theta := float64(ps) * float64(p.Scale)
			for i0 := 0; i0 < p.Dims; i0 += 2 {
				th := theta
				if p.Freqs != nil {
					th /= float64(p.Freqs[i0/2])
				}
				c, s := float32(math.Cos(th)), float32(math.Sin(th))
				a, b := i0, i0+1
				if p.NeoX {
					a, b = i0/2, i0/2+p.Dims/2
				}
				x0, x1 := hd[a], hd[b]
				hd[a] = x0*c - x1*s
				hd[b] = x0*s + x1*c
				theta *= thetaScale
			}
		}
	}
	return nil
}

func (refBackend) StoreKV(kc, vc, k, v *kernels.Tensor, slots []int32) error {
	for i, s := range slots {
		for _, pair := range [][2]*kernels.Tensor{{kc, k}, {vc, v}} {
			c, src := pair[0], row(pair[1], i)
			if c.Type == quant.F32 {
				copy(row(c, int(s)), src)
				continue
			}
			dst := rawRow(c, int(s))
			for j, f := range src {
				binary.LittleEndian.PutUint16(dst[2*j:], quant.F32ToF16(f))
			}
		}
	}
	return nil
}

func cacheRow(c *kernels.Tensor, s int, out []float32) {
	if c.Type == quant.F32 {
		copy(out, row(c, s))
		return
	}
	_ = quant.Dequantize(c.Type, rawRow(c, s), out)
}

func r16(f float32) float32 { return quant.F16ToF32(quant.F32ToF16(f)) }

func (be refBackend) Attention(out, q, kc, vc *kernels.Tensor, b *kernels.AttnBatch, p kernels.AttnParams) error {
	round := be.ggml && kc.Type == quant.F16
	D := p.HeadDim
	group := p.Heads / p.KVHeads
	kr := make([]float32, kc.Cols)
	vr := make([]float32, vc.Cols)
	for i, pos := range b.Pos {
		n := int(pos) + 1
		scores := make([]float64, n*p.Heads)
		acc := make([]float64, p.Heads*D)
		qs, os := row(q, i), row(out, i)
		slot := func(t int) int {
			blk := b.BlockTables[int(b.Seq[i])*b.MaxBlocks+t/b.BlockSize]
			return int(blk)*b.BlockSize + t%b.BlockSize
		}
		for t := 0; t < n; t++ {
			cacheRow(kc, slot(t), kr)
			for h := 0; h < p.Heads; h++ {
				g := h / group
				var s float64
				for d := 0; d < D; d++ {
					qv := qs[h*D+d]
					if round {
						qv = r16(qv)
					}
					s += float64(qv) * float64(kr[g*D+d])
				}
				scores[h*n+t] = s * float64(p.Scale)
			}
		}
		for h := 0; h < p.Heads; h++ {
			sc := scores[h*n : (h+1)*n]
			m := math.Inf(-1)
			for _, s := range sc {
				m = math.Max(m, s)
			}
			var sum float64
			for t := range sc {
				sc[t] = math.Exp(sc[t] - m)
				sum += sc[t]
			}
			for t := range sc {
				sc[t] /= sum
				if round {
					sc[t] = float64(r16(float32(sc[t])))
				}
			}
		}
		for t := 0; t < n; t++ {
			cacheRow(vc, slot(t), vr)
			for h := 0; h < p.Heads; h++ {
				g := h / group
				w := scores[h*n+t]
				for d := 0; d < D; d++ {
					acc[h*D+d] += w * float64(vr[g*D+d])
				}
			}
		}
		for j := range os {
			os[j] = float32(acc[j])
		}
	}
	return nil
}

func (refBackend) Softmax(x *kernels.Tensor, n int) error {
	for i := 0; i < n; i++ {
		xs := row(x, i)
		m := xs[0]
		for _, v := range xs {
			m = max(m, v)
		}
		var sum float64
		for j, v := range xs {
			xs[j] = float32(math.Exp(float64(v - m)))
			sum += float64(xs[j])
		}
		for j := range xs {
			xs[j] = float32(float64(xs[j]) / sum)
		}
	}
	return nil
}

func (refBackend) Argmax(dst []int32, x *kernels.Tensor) error {
	for i := range dst {
		dst[i] = Argmax(row(x, i))
	}
	return nil
}

func (refBackend) Close() error { return nil }
