package model

import (
	"fmt"
	"math"
	"testing"

	"github.com/sluice-llm/sluice/gguf"
	"github.com/sluice-llm/sluice/quant"
)

// refForward is a plain float64 forward pass over a GGUF file, written
// from the architectures' definitions and independent of forward.go and
// the kernels: it dequantizes every weight with package quant and returns
// the logits (len(tokens), vocab) of one sequence that starts at position
// 0. It is the oracle for architectures without llama.cpp golden data.
// It reads hyperparameters from ReadConfig (tested on its own) and keeps
// no cache: fine for the tiny synth models it runs on.
func refForward(t *testing.T, f *gguf.File, tokens []int32) [][]float64 {
	t.Helper()
	c, err := ReadConfig(f)
	if err != nil {
		t.Fatal(err)
	}
	w := func(name string) [][]float64 { return refWeight(t, f, name) }
	vec := func(name string) []float64 { return w(name)[0] }
	has := func(name string) bool { _, ok := f.Tensor(name); return ok }

	n, hd := len(tokens), c.HeadDim
	emb := w("token_embd.weight")
	x := make([][]float64, n) // (n, dim) residual stream
	for i, tok := range tokens {
		x[i] = append([]float64(nil), emb[tok]...)
		refScale(x[i], float64(c.EmbedScale)) // granite
	}
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		h := x // olmo2: no norm before attention
		if has(p + "attn_norm.weight") {
			h = refRMSNorm(x, vec(p+"attn_norm.weight"), c.NormEps)
		}
		var q, k, v [][]float64
		if has(p + "attn_qkv.weight") { // phi3: rows q, k, v
			wqkv := w(p + "attn_qkv.weight")
			qd, kvd := c.Heads*hd, c.KVHeads*hd
			q, k, v = refMatMul(h, wqkv[:qd]), refMatMul(h, wqkv[qd:qd+kvd]), refMatMul(h, wqkv[qd+kvd:])
		} else {
			q, k, v = refMatMul(h, w(p+"attn_q.weight")), refMatMul(h, w(p+"attn_k.weight")), refMatMul(h, w(p+"attn_v.weight"))
		}
		if has(p + "attn_q.bias") {
			refAddBias(q, vec(p+"attn_q.bias"))
			refAddBias(k, vec(p+"attn_k.bias"))
			refAddBias(v, vec(p+"attn_v.bias"))
		}
		if has(p + "attn_q_norm.weight") { // before rope: per head (qwen3) or per row (olmo2)
			qn, kn := vec(p+"attn_q_norm.weight"), vec(p+"attn_k_norm.weight")
			q, k = refHeadNorm(q, qn, len(qn), c.NormEps), refHeadNorm(k, kn, len(kn), c.NormEps)
		}
		refRope(q, hd, c)
		refRope(k, hd, c)
		att := refAttention(q, k, v, c)
		o := refMatMul(att, w(p+"attn_output.weight"))
		if has(p + "attn_output.bias") {
			refAddBias(o, vec(p+"attn_output.bias"))
		}
		if has(p + "post_attention_norm.weight") { // olmo2
			o = refRMSNorm(o, vec(p+"post_attention_norm.weight"), c.NormEps)
		}
		for _, r := range o {
			refScale(r, float64(c.ResidualScale)) // granite
		}
		refAddTo(x, o)
		h = x
		if has(p + "ffn_norm.weight") {
			h = refRMSNorm(x, vec(p+"ffn_norm.weight"), c.NormEps)
		}
		var g, u [][]float64
		if has(p + "ffn_gate.weight") {
			g, u = refMatMul(h, w(p+"ffn_gate.weight")), refMatMul(h, w(p+"ffn_up.weight"))
		} else { // phi3: ffn_up holds the gate rows, then the up rows
			wgu := w(p + "ffn_up.weight")
			g, u = refMatMul(h, wgu[:len(wgu)/2]), refMatMul(h, wgu[len(wgu)/2:])
		}
		for i := range g {
			for j, gv := range g[i] {
				g[i][j] = gv / (1 + math.Exp(-gv)) * u[i][j]
			}
		}
		down := refMatMul(g, w(p+"ffn_down.weight"))
		if has(p + "post_ffw_norm.weight") { // olmo2
			down = refRMSNorm(down, vec(p+"post_ffw_norm.weight"), c.NormEps)
		}
		for _, r := range down {
			refScale(r, float64(c.ResidualScale)) // granite
		}
		refAddTo(x, down)
	}
	out := "output.weight"
	if c.TiedOutput {
		out = "token_embd.weight"
	}
	logits := refMatMul(refRMSNorm(x, vec("output_norm.weight"), c.NormEps), w(out))
	for _, r := range logits {
		refScale(r, 1/float64(c.LogitScale)) // granite
	}
	return logits
}

func refScale(x []float64, s float64) {
	for i := range x {
		x[i] *= s
	}
}

// refWeight dequantizes a tensor into rows of ne0 values.
func refWeight(t *testing.T, f *gguf.File, name string) [][]float64 {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("reference: tensor %s is missing", name)
	}
	cols := int(ti.Dims[0])
	rows := 1
	for _, d := range ti.Dims[1:] {
		rows *= int(d)
	}
	flat := make([]float32, rows*cols)
	if err := quant.Dequantize(ti.Type, f.TensorData(ti), flat); err != nil {
		t.Fatalf("reference: dequantize %s: %v", name, err)
	}
	out := make([][]float64, rows)
	for r := range out {
		out[r] = make([]float64, cols)
		for j := range out[r] {
			out[r][j] = float64(flat[r*cols+j])
		}
	}
	return out
}

// refMatMul returns x·wᵀ: (n, in)·(out, in)ᵀ = (n, out).
func refMatMul(x, w [][]float64) [][]float64 {
	y := make([][]float64, len(x))
	for i, xr := range x {
		y[i] = make([]float64, len(w))
		for j, wr := range w {
			var s float64
			for k, xv := range xr {
				s += xv * wr[k]
			}
			y[i][j] = s
		}
	}
	return y
}

func refRMSNorm(x [][]float64, g []float64, eps float32) [][]float64 {
	y := make([][]float64, len(x))
	for i, xr := range x {
		var ss float64
		for _, v := range xr {
			ss += v * v
		}
		s := 1 / math.Sqrt(ss/float64(len(xr))+float64(eps))
		y[i] = make([]float64, len(xr))
		for j, v := range xr {
			y[i][j] = v * s * g[j]
		}
	}
	return y
}

// refHeadNorm applies refRMSNorm to each head of each row.
func refHeadNorm(x [][]float64, g []float64, hd int, eps float32) [][]float64 {
	y := make([][]float64, len(x))
	for i, xr := range x {
		for h := 0; h < len(xr); h += hd {
			y[i] = append(y[i], refRMSNorm([][]float64{xr[h : h+hd]}, g, eps)[0]...)
		}
	}
	return y
}

func refAddBias(x [][]float64, b []float64) {
	for _, xr := range x {
		for j := range xr {
			xr[j] += b[j]
		}
	}
}

func refAddTo(x, y [][]float64) {
	for i := range x {
		for j := range x[i] {
			x[i][j] += y[i][j]
		}
	}
}

// refRope rotates each head of row i by position i (no scaling): pairs
// (j, j+dims/2) for NeoX-style architectures, (2j, 2j+1) otherwise.
func refRope(x [][]float64, hd int, c Config) {
	half := c.RopeDims / 2
	for pos, xr := range x {
		for h := 0; h < len(xr); h += hd {
			for j := 0; j < half; j++ {
				th := float64(pos) * math.Pow(float64(c.RopeBase), -float64(2*j)/float64(c.RopeDims))
				a, b := h+2*j, h+2*j+1
				if c.RopeNeoX {
					a, b = h+j, h+j+half
				}
				x0, x1 := xr[a], xr[b]
				xr[a] = x0*math.Cos(th) - x1*math.Sin(th)
				xr[b] = x0*math.Sin(th) + x1*math.Cos(th)
			}
		}
	}
}

// refAttention is causal grouped-query attention over one sequence.
func refAttention(q, k, v [][]float64, c Config) [][]float64 {
	hd, group := c.HeadDim, c.Heads/c.KVHeads
	out := make([][]float64, len(q))
	for i := range q {
		out[i] = make([]float64, c.Heads*hd)
		for h := 0; h < c.Heads; h++ {
			qh, g := q[i][h*hd:(h+1)*hd], (h/group)*hd
			s := make([]float64, i+1)
			m := math.Inf(-1)
			for p := 0; p <= i; p++ {
				for d, qv := range qh {
					s[p] += qv * k[p][g+d]
				}
				s[p] *= float64(c.AttnScale)
				m = math.Max(m, s[p])
			}
			var z float64
			for p := range s {
				s[p] = math.Exp(s[p] - m)
				z += s[p]
			}
			for p := range s {
				for d := 0; d < hd; d++ {
					out[i][h*hd+d] += s[p] / z * v[p][g+d]
				}
			}
		}
	}
	return out
}
