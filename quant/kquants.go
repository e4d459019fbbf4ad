package quant

// Reference quantizers for the K-quant super-block formats. Each one first
// fits a scale (and for the offset formats a min) to every sub-block, then
// quantizes those per-sub-block scales against one F16 super-block scale, and
// finally re-quantizes the weights against the scales as they will actually
// be decoded. The fitting searches are GGML's; every float operation is done
// in float32 in GGML's order, with products rounded before they are added
// (see mul), so the bytes match llama.cpp's quantize_row_*_ref.

// maxf returns v if it is greater than m, else m (GGML's running maximum;
// unlike the max builtin it ignores a NaN v).
func maxf(m, v float32) float32 {
	if v > m {
		return v
	}
	return m
}

// groupMaxEps is the magnitude below which a group counts as all zeros.
const groupMaxEps = 1e-15

// fitScaleMin fits x[i] ≈ scale*L[i] - theMin with L[i] in 0..nmax and
// theMin >= 0, minimizing the weighted error (absolute if useMAD, else
// squared). It starts from the plain min/max grid and then tries nstep+1
// grids whose step is (nmax + rmin + rdelta*k)/(max - min), solving a
// weighted least-squares problem for scale and min on each. aux is scratch
// of len(x). (GGML: make_qkx2_quants.)
func fitScaleMin(nmax int, x, weights []float32, L, aux []uint8, rmin, rdelta float32, nstep int, useMAD bool) (scale, theMin float32) {
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := mul(sumW, x[0])
	for i := 1; i < len(x); i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		sumW += weights[i]
		sumX += mul(weights[i], x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		clear(L)
		return 0, -lo
	}

	errOf := func(scale, lo float32, L []uint8) float32 {
		var e float32
		for i, v := range x {
			diff := mul(scale, float32(L[i])) + lo - v
			if useMAD {
				diff = abs32(diff)
			} else {
				diff = mul(diff, diff)
			}
			e += mul(weights[i], diff)
		}
		return e
	}
	quantizeTo := func(iscale, lo float32, L []uint8) {
		for i, v := range x {
			L[i] = uint8(max(0, min(nmax, nearestInt(iscale*(v-lo)))))
		}
	}

	iscale := float32(nmax) / (hi - lo)
	scale = 1 / iscale
	quantizeTo(iscale, lo, L)
	bestErr := errOf(scale, lo, L)
	if nstep < 1 {
		return scale, -lo
	}

	for is := 0; is <= nstep; is++ {
		iscale = (rmin + mul(rdelta, float32(is)) + float32(nmax)) / (hi - lo)
		quantizeTo(iscale, lo, aux)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := float32(aux[i])
			wl := mul(weights[i], l)
			sumL += wl
			sumL2 += mul(wl, l)
			sumXL += mul(wl, v)
		}
		D := mul(sumW, sumL2) - mul(sumL, sumL)
		if !(D > 0) {
			continue
		}
		thisScale := (mul(sumW, sumXL) - mul(sumX, sumL)) / D
		thisMin := (mul(sumL2, sumX) - mul(sumL, sumXL)) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		if e := errOf(thisScale, thisMin, aux); e < bestErr {
			copy(L, aux)
			bestErr = e
			scale = thisScale
			lo = thisMin
		}
	}
	return scale, -lo
}

// fitSymmetric fits x[i] ≈ scale*(L[i]-nmax) with L[i]-nmax in -nmax..nmax-1,
// weighting each element by x[i]^2. The largest magnitude starts at -nmax;
// then 18 nearby grids are tried and the one maximizing the weighted
// least-squares fit is kept. (GGML: make_qx_quants with rmse_type 1 and no
// importance weights.)
func fitSymmetric(nmax int, x []float32, L []int8) float32 {
	maxv, amax := absMax(x)
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	quantizeTo := func(iscale float32, L []int8) (sumLX, sumL2 float32) {
		for i, v := range x {
			l := max(-nmax, min(nmax-1, nearestInt(iscale*v)))
			if L != nil {
				L[i] = int8(l + nmax)
			}
			w := mul(v, v)
			sumLX += mul(mul(w, v), float32(l))
			sumL2 += mul(mul(w, float32(l)), float32(l))
		}
		return sumLX, sumL2
	}

	iscale := float32(-nmax) / maxv
	sumLX, sumL2 := quantizeTo(iscale, L)
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := mul(scale, sumLX)
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(float32(nmax) + mul(0.1, float32(is))) / maxv
		lx, l2 := quantizeTo(iscale, nil)
		if l2 > 0 && mul(lx, lx) > mul(best, l2) {
			quantizeTo(iscale, L)
			scale = lx / l2
			best = mul(scale, lx)
		}
	}
	return scale
}

// fitSymmetricQ3 fits x[i] ≈ scale*L[i] with L[i] in -nmax..nmax-1 (stored
// +nmax), weighting by x[i]^2: it starts from the grid that puts the largest
// magnitude at -nmax, then moves single elements to better levels for up to
// five passes. (GGML: make_q3_quants with do_rmse.)
func fitSymmetricQ3(nmax int, x []float32, L []int8) float32 {
	maxv, amax := absMax(x)
	if amax < groupMaxEps {
		clear(L)
		return 0
	}
	iscale := float32(-nmax) / maxv
	var sumLX, sumL2 float32
	for i, v := range x {
		l := max(-nmax, min(nmax-1, nearestInt(iscale*v)))
		L[i] = int8(l)
		w := mul(v, v)
		sumLX += mul(mul(w, v), float32(l))
		sumL2 += mul(mul(w, float32(l)), float32(l))
	}
	for pass := 0; pass < 5; pass++ {
		changed := 0
		for i, v := range x {
			w := mul(v, v)
			li := float32(L[i])
			slx := sumLX - mul(mul(w, v), li)
			if !(slx > 0) {
				continue
			}
			sl2 := sumL2 - mul(mul(w, li), li)
			newL := max(-nmax, min(nmax-1, nearestInt(mul(v, sl2)/slx)))
			if newL == int(L[i]) {
				continue
			}
			slx += mul(mul(w, v), float32(newL))
			sl2 += mul(mul(w, float32(newL)), float32(newL))
			if sl2 > 0 && mul(mul(slx, slx), sumL2) > mul(mul(sumLX, sumLX), sl2) {
				L[i] = int8(newL)
				sumLX, sumL2 = slx, sl2
				changed++
			}
		}
		if changed == 0 {
			break
		}
	}
	for i := range L {
		L[i] += int8(nmax)
	}
	if sumL2 > 0 {
		return sumLX / sumL2
	}
	return 0
}

// packTwoBit stores 256 two-bit values in the Q2_K/Q3_K qs layout.
func packTwoBit(L *[QK_K]uint8, qs *[QK_K / 4]uint8) {
	for half := 0; half < 2; half++ {
		for l := 0; l < 32; l++ {
			e := 128*half + l
			qs[32*half+l] = L[e] | L[e+32]<<2 | L[e+64]<<4 | L[e+96]<<6
		}
	}
}

func quantQ2_K(src []float32, dst []byte) {
	const q4scale = 15
	var (
		L       [QK_K]uint8
		aux     [16]uint8
		weights [16]float32
		scales  [QK_K / 16]float32
		mins    [QK_K / 16]float32
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[QK_K*i : QK_K*(i+1)]
		var maxScale, maxMin float32
		for j := range scales {
			xs := x[16*j : 16*j+16]
			for l, v := range xs {
				weights[l] = abs32(v)
			}
			scales[j], mins[j] = fitScaleMin(3, xs, weights[:], L[16*j:16*j+16], aux[:], -0.5, 0.1, 15, true)
			maxScale = maxf(maxScale, scales[j])
			maxMin = maxf(maxMin, mins[j])
		}

		var b BlockQ2_K
		if maxScale > 0 {
			iscale := q4scale / maxScale
			for j := range scales {
				b.Scales[j] = uint8(nearestInt(iscale * scales[j]))
			}
			b.D = F32ToF16(maxScale / q4scale)
		}
		if maxMin > 0 {
			iscale := q4scale / maxMin
			for j := range mins {
				b.Scales[j] |= uint8(nearestInt(iscale*mins[j])) << 4
			}
			b.Dmin = F32ToF16(maxMin / q4scale)
		}

		d, dmin := F16ToF32(b.D), F16ToF32(b.Dmin)
		for j := range scales {
			dl := d * float32(b.Scales[j]&0xf)
			if dl == 0 {
				continue // keep the levels from the fit
			}
			ml := dmin * float32(b.Scales[j]>>4)
			for l, v := range x[16*j : 16*j+16] {
				L[16*j+l] = uint8(max(0, min(3, nearestInt((v+ml)/dl))))
			}
		}
		packTwoBit(&L, &b.Qs)
		b.Encode(dst[84*i:])
	}
}

func quantQ3_K(src []float32, dst []byte) {
	var (
		L      [QK_K]int8
		scales [QK_K / 16]float32
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[QK_K*i : QK_K*(i+1)]
		var maxScale, amax float32
		for j := range scales {
			scales[j] = fitSymmetricQ3(4, x[16*j:16*j+16], L[16*j:16*j+16])
			if a := abs32(scales[j]); a > amax {
				amax, maxScale = a, scales[j]
			}
		}

		var b BlockQ3_K
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := range scales {
				l := int8(nearestInt(iscale * scales[j]))
				l = max(-32, min(31, l)) + 32
				setScaleQ3K(j, &b.Scales, uint8(l))
			}
			b.D = F32ToF16(1 / iscale)
		}

		d := F16ToF32(b.D)
		for j := range scales {
			dl := d * float32(scaleQ3K(j, &b.Scales))
			if dl == 0 {
				continue
			}
			for l, v := range x[16*j : 16*j+16] {
				L[16*j+l] = int8(max(-4, min(3, nearestInt(v/dl))) + 4)
			}
		}

		// Split the 3-bit levels into the high-bit mask and two-bit fields.
		var low [QK_K]uint8
		for e, l := range L {
			if l > 3 {
				b.Hmask[e%32] |= 1 << (e / 32)
				l -= 4
			}
			low[e] = uint8(l)
		}
		packTwoBit(&low, &b.Qs)
		b.Encode(dst[110*i:])
	}
}

// quantK4Style is the shared body of Q4_K and Q5_K: 8 sub-blocks of 32 with
// a 6-bit scale and min each. It returns the block's F16 scales, its packed
// scale bytes and the 256 levels (0..nmax).
func quantK4Style(x []float32, nmax int, rmin, rdelta float32, nstep int) (d, dmin uint16, packed [12]uint8, L [QK_K]uint8) {
	var (
		aux     [32]uint8
		weights [32]float32
		scales  [QK_K / 32]float32
		mins    [QK_K / 32]float32
	)
	var maxScale, maxMin float32
	for j := range scales {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += mul(v, v)
		}
		avX := sqrt32(sumX2 / 32)
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = fitScaleMin(nmax, xs, weights[:], L[32*j:32*j+32], aux[:], rmin, rdelta, nstep, false)
		maxScale = maxf(maxScale, scales[j])
		maxMin = maxf(maxMin, mins[j])
	}

	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	for j := range scales {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		setScaleMinK4(j, &packed, ls, lm)
	}
	d = F32ToF16(maxScale / 63)
	dmin = F32ToF16(maxMin / 63)

	df, dminf := F16ToF32(d), F16ToF32(dmin)
	for j := range scales {
		sc, m := scaleMinK4(j, &packed)
		dl := df * float32(sc)
		if dl == 0 {
			continue
		}
		ml := dminf * float32(m)
		for l, v := range x[32*j : 32*j+32] {
			L[32*j+l] = uint8(max(0, min(nmax, nearestInt((v+ml)/dl))))
		}
	}
	return d, dmin, packed, L
}

func quantQ4_K(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK_K; i++ {
		var b BlockQ4_K
		var L [QK_K]uint8
		b.D, b.Dmin, b.Scales, L = quantK4Style(src[QK_K*i:QK_K*(i+1)], 15, -1, 0.1, 20)
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				b.Qs[32*c+l] = L[64*c+l] | L[64*c+32+l]<<4
			}
		}
		b.Encode(dst[144*i:])
	}
}

func quantQ5_K(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK_K; i++ {
		var b BlockQ5_K
		var L [QK_K]uint8
		b.D, b.Dmin, b.Scales, L = quantK4Style(src[QK_K*i:QK_K*(i+1)], 31, -0.5, 0.1, 15)
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				lo, hi := L[64*c+l], L[64*c+32+l]
				b.Qs[32*c+l] = lo&0xf | (hi&0xf)<<4
				b.Qh[l] |= (lo>>4)<<(2*c) | (hi>>4)<<(2*c+1)
			}
		}
		b.Encode(dst[176*i:])
	}
}

func quantQ6_K(src []float32, dst []byte) {
	var (
		L      [QK_K]int8
		scales [QK_K / 16]float32
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[QK_K*i : QK_K*(i+1)]
		var maxScale, maxAbsScale float32
		for j := range scales {
			scales[j] = fitSymmetric(32, x[16*j:16*j+16], L[16*j:16*j+16])
			if a := abs32(scales[j]); a > maxAbsScale {
				maxAbsScale, maxScale = a, scales[j]
			}
		}

		var b BlockQ6_K
		if maxAbsScale < groupMaxEps {
			b.Encode(dst[210*i:]) // all zero
			continue
		}
		iscale := -128 / maxScale
		b.D = F32ToF16(1 / iscale)
		for j := range scales {
			b.Scales[j] = int8(min(127, nearestInt(iscale*scales[j])))
		}

		d := F16ToF32(b.D)
		for j := range scales {
			dl := d * float32(b.Scales[j])
			if dl == 0 {
				continue
			}
			for l, v := range x[16*j : 16*j+16] {
				L[16*j+l] = int8(max(-32, min(31, nearestInt(v/dl))) + 32)
			}
		}

		for half := 0; half < 2; half++ {
			e := L[128*half : 128*half+128]
			ql := b.Ql[64*half : 64*half+64]
			qh := b.Qh[32*half : 32*half+32]
			for l := 0; l < 32; l++ {
				q := [4]uint8{uint8(e[l]), uint8(e[l+32]), uint8(e[l+64]), uint8(e[l+96])}
				ql[l] = q[0]&0xf | (q[2]&0xf)<<4
				ql[l+32] = q[1]&0xf | (q[3]&0xf)<<4
				qh[l] = q[0]>>4 | (q[1]>>4)<<2 | (q[2]>>4)<<4 | (q[3]>>4)<<6
			}
		}
		b.Encode(dst[210*i:])
	}
}

// Q8_K: symmetric 8-bit with a float32 scale; the largest magnitude maps to
// -127 (so the scale carries its sign) and the group sums of 16 are stored
// for the K-quant dot products' min terms.
func quantQ8_K(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[QK_K*i : QK_K*(i+1)]
		var b BlockQ8_K
		maxv, amax := absMax(x)
		if amax != 0 {
			iscale := -127 / maxv
			for j, v := range x {
				b.Qs[j] = int8(min(127, nearestInt(iscale*v)))
			}
			for j := range b.Bsums {
				var sum int16
				for _, q := range b.Qs[16*j : 16*j+16] {
					sum += int16(q)
				}
				b.Bsums[j] = sum
			}
			b.D = 1 / iscale
		}
		b.Encode(dst[292*i:])
	}
}
