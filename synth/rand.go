package synth

import (
	"math"
	"sync"

	"github.com/sluice-llm/sluice/quant"
)

// The weights are drawn from a fixed-seed generator so that a dummy model is
// reproducible byte for byte. Every row of every tensor has its own stream,
// seeded from (seed, tensor name, row), so the bytes do not depend on how
// the rows are split among goroutines.

// splitmix64 is the SplitMix64 finalizer: a bijective mixer used to derive
// stream seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// hashName is FNV-1a of s.
func hashName(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}

// rowSeed returns the stream seed of one row of a tensor.
func rowSeed(seed uint64, name string, row int) uint64 {
	return splitmix64(splitmix64(seed^hashName(name)) + uint64(row))
}

// xorshift is xorshift64*: fast, and plenty for weights.
type xorshift struct{ s uint64 }

func newXorshift(seed uint64) xorshift {
	if seed == 0 {
		seed = 0x2545f4914f6cdd1d
	}
	return xorshift{seed}
}

func (r *xorshift) next() uint64 {
	r.s ^= r.s >> 12
	r.s ^= r.s << 25
	r.s ^= r.s >> 27
	return r.s * 0x2545f4914f6cdd1d
}

// normalTable holds the standard normal quantiles at (i+0.5)/65536: a
// 16-bit uniform looked up here is a normal deviate (tails cut at about
// 4.3σ), so one 64-bit draw gives four.
var (
	normalOnce  sync.Once
	normalTable *[1 << 16]float32
)

func normals() *[1 << 16]float32 {
	normalOnce.Do(func() {
		t := new([1 << 16]float32)
		for i := range t {
			p := (float64(i) + 0.5) / (1 << 16)
			t[i] = float32(math.Sqrt2 * math.Erfinv(2*p-1))
		}
		normalTable = t
	})
	return normalTable
}

// fillNormal fills dst with mean + std·N(0,1) deviates from r.
func fillNormal(r *xorshift, dst []float32, mean, std float32) {
	t := normals()
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		x := r.next()
		d := dst[i : i+4 : i+4]
		d[0] = mean + std*t[uint16(x)]
		d[1] = mean + std*t[uint16(x>>16)]
		d[2] = mean + std*t[uint16(x>>32)]
		d[3] = mean + std*t[uint16(x>>48)]
	}
	if i < len(dst) {
		x := r.next()
		for ; i < len(dst); i++ {
			dst[i] = mean + std*t[uint16(x)]
			x >>= 16
		}
	}
}

// Value scales. Weights and biases are N(0, 0.02²) like a freshly
// initialised transformer; norm scales are 1 + N(0, 0.05²), so that RMS norm
// keeps activations at unit scale and the logits vary from token to token.
const (
	weightStd = 0.02
	normStd   = 0.05
)

// fillRow writes row `row` of tensor tp into dst (len Dims[0]).
func fillRow(seed uint64, tp *TensorPlan, row int, dst []float32, scaling *RopeScaling, ropeBase float32) {
	switch tp.Kind {
	case KindRopeFreqs:
		copy(dst, llama3RopeFactors(scaling, ropeBase, 2*len(dst)))
		return
	}
	r := newXorshift(rowSeed(seed, tp.Name, row))
	switch tp.Kind {
	case KindNorm:
		fillNormal(&r, dst, 1, normStd)
	default:
		fillNormal(&r, dst, 0, weightStd)
	}
}

// llama3RopeFactors computes the rope_freqs.weight tensor that llama.cpp's
// convert_hf_to_gguf.py writes for "rope_type": "llama3" (headDim/2
// factors), in the same float32/float64 mix.
func llama3RopeFactors(r *RopeScaling, base float32, headDim int) []float32 {
	out := make([]float32, headDim/2)
	lowWavelen := float64(r.OriginalContext) / r.LowFreqFactor
	highWavelen := float64(r.OriginalContext) / r.HighFreqFactor
	for i := range out {
		// torch: 1.0 / (base ** (arange(0, dim, 2, float32) / dim)) in float32.
		e := float32(2*i) / float32(headDim)
		freq := float32(1) / float32(math.Pow(float64(base), float64(e)))
		wavelen := 2 * math.Pi / float64(freq)
		switch {
		case wavelen < highWavelen:
			out[i] = 1
		case wavelen > lowWavelen:
			out[i] = float32(r.Factor)
		default:
			smooth := (float64(r.OriginalContext)/wavelen - r.LowFreqFactor) / (r.HighFreqFactor - r.LowFreqFactor)
			out[i] = float32(1 / ((1-smooth)/r.Factor + smooth))
		}
	}
	return out
}

// generator produces the data of a tensor's rows.
type generator struct {
	shape Shape
	seed  uint64
	fast  bool

	mu    sync.Mutex
	pools map[quant.Type]*blockPool
}

// blockPool is a set of quantized N(0, weightStd²) blocks for Fast mode.
type blockPool struct {
	once sync.Once
	data []byte
	err  error
}

const poolBits = 12 // 4096 blocks

// rows writes rows [row0, row0+n) of tp, encoded, into out. scratch is the
// caller's reusable float buffer.
func (g *generator) rows(tp *TensorPlan, row0, n int, out []byte, scratch *[]float32) error {
	ne0 := int(tp.Dims[0])
	if g.fast && tp.Kind == KindWeight && tp.Type.BlockElems() > 1 {
		p, err := g.pool(tp.Type)
		if err != nil {
			return err
		}
		bb := tp.Type.BlockBytes()
		per := ne0 / tp.Type.BlockElems()
		for r := 0; r < n; r++ {
			rng := newXorshift(rowSeed(g.seed, tp.Name, row0+r))
			dst := out[r*per*bb : (r+1)*per*bb]
			for b := 0; b < per; b++ {
				i := int(rng.next() >> (64 - poolBits))
				copy(dst[b*bb:(b+1)*bb], p[i*bb:(i+1)*bb])
			}
		}
		return nil
	}
	total := n * ne0
	if cap(*scratch) < total {
		*scratch = make([]float32, total)
	}
	x := (*scratch)[:total]
	for r := 0; r < n; r++ {
		fillRow(g.seed, tp, row0+r, x[r*ne0:(r+1)*ne0], g.shape.RopeScaling, g.shape.RopeBase)
	}
	return quant.Quantize(tp.Type, x, out)
}

// pool returns the Fast-mode block pool of type t, building it on first use.
func (g *generator) pool(t quant.Type) ([]byte, error) {
	g.mu.Lock()
	if g.pools == nil {
		g.pools = map[quant.Type]*blockPool{}
	}
	p := g.pools[t]
	if p == nil {
		p = &blockPool{}
		g.pools[t] = p
	}
	g.mu.Unlock()
	p.once.Do(func() {
		x := make([]float32, (1<<poolBits)*t.BlockElems())
		rng := newXorshift(splitmix64(g.seed ^ hashName("block pool "+t.String())))
		fillNormal(&rng, x, 0, weightStd)
		size, err := quant.RowBytes(t, len(x))
		if err != nil {
			p.err = err
			return
		}
		p.data = make([]byte, size)
		p.err = quant.Quantize(t, x, p.data)
	})
	return p.data, p.err
}
