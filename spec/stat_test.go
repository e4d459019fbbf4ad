package spec

import (
	"math"
	"testing"
)

// chi2Quantile returns the p-quantile of the chi-square distribution with
// df degrees of freedom, by bisection on its CDF.
func chi2Quantile(p float64, df int) float64 {
	lo, hi := 0.0, float64(df)+100*math.Sqrt(float64(2*df))+100
	for range 200 {
		mid := (lo + hi) / 2
		if gammaP(float64(df)/2, mid/2) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// gammaP is the regularised lower incomplete gamma function P(a, x)
// (series for x < a+1, Lentz's continued fraction for Q otherwise).
func gammaP(a, x float64) float64 {
	if x <= 0 {
		return 0
	}
	lg, _ := math.Lgamma(a)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-15 {
				break
			}
		}
		return sum * math.Exp(-x+a*math.Log(x)-lg)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-15 {
			break
		}
	}
	return 1 - math.Exp(-x+a*math.Log(x)-lg)*h
}

func TestChi2Quantile(t *testing.T) {
	// Reference values of the 0.999 quantile from standard tables.
	for _, c := range []struct {
		df   int
		want float64
	}{{1, 10.828}, {5, 20.515}, {6, 22.458}, {7, 24.322}, {10, 29.588}, {30, 59.703}, {50, 86.661}} {
		if got := chi2Quantile(0.999, c.df); math.Abs(got-c.want) > 0.002 {
			t.Errorf("chi2 0.999 quantile, df %d: got %.4f, want %.3f", c.df, got, c.want)
		}
	}
}

// chi2 compares observed counts with expected probabilities over n trials.
// It fails the test if a cell of probability 0 was observed, and returns
// the statistic and its degrees of freedom (non-empty cells − 1).
func chi2(t *testing.T, name string, obs []int, expect []float64, n int) (stat float64, df int) {
	t.Helper()
	for i, e := range expect {
		if e <= 0 {
			if obs[i] != 0 {
				t.Errorf("%s: cell %d has probability 0 but was observed %d times", name, i, obs[i])
			}
			continue
		}
		m := e * float64(n)
		stat += (float64(obs[i]) - m) * (float64(obs[i]) - m) / m
		df++
	}
	return stat, df - 1
}
