package grammar

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// maxBound keeps integer bounds exact in float64 and int64.
const maxBound = 1e15

var boundKeywords = []string{"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}

// numberKw reads keyword kw of o as a finite number within ±maxBound.
func numberKw(o *object, kw, path string) (float64, bool, error) {
	v, ok := o.get(kw)
	if !ok {
		return 0, false, nil
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return 0, false, &SchemaError{Path: path, Keyword: kw, Msg: fmt.Sprintf("%s must be a number", kw)}
	}
	x, err := n.Float64()
	if err != nil || math.IsInf(x, 0) || math.Abs(x) > maxBound {
		return 0, false, &SchemaError{Path: path, Keyword: kw, Msg: fmt.Sprintf("%s must be a number within ±%g", kw, maxBound)}
	}
	return x, true, nil
}

// intBounds reads the bounds of an integer (nil: none), draft 4's boolean
// exclusiveMinimum/exclusiveMaximum included.
func intBounds(o *object, path string) (lo, hi *int64, err error) {
	vals := map[string]float64{}
	for _, kw := range boundKeywords {
		if v, _ := o.get(kw); v == true || v == false {
			continue // draft 4: modifies minimum/maximum below
		}
		x, ok, err := numberKw(o, kw, path)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			vals[kw] = x
		}
	}
	setLo := func(v int64) {
		if lo == nil || v > *lo {
			lo = &v
		}
	}
	setHi := func(v int64) {
		if hi == nil || v < *hi {
			hi = &v
		}
	}
	if x, ok := vals["minimum"]; ok {
		if v, _ := o.get("exclusiveMinimum"); v == true {
			setLo(int64(math.Floor(x)) + 1)
		} else {
			setLo(int64(math.Ceil(x)))
		}
	}
	if x, ok := vals["maximum"]; ok {
		if v, _ := o.get("exclusiveMaximum"); v == true {
			setHi(int64(math.Ceil(x)) - 1)
		} else {
			setHi(int64(math.Floor(x)))
		}
	}
	if x, ok := vals["exclusiveMinimum"]; ok {
		setLo(int64(math.Floor(x)) + 1)
	}
	if x, ok := vals["exclusiveMaximum"]; ok {
		setHi(int64(math.Ceil(x)) - 1)
	}
	if lo != nil && hi != nil && *lo > *hi {
		return nil, nil, &SchemaError{Path: path, Keyword: "minimum", Msg: fmt.Sprintf("no integer lies between the bounds (%d > %d)", *lo, *hi)}
	}
	return lo, hi, nil
}

// boundedNumber is a JSON number within o's bounds: any number without
// bounds or with minimum 0 alone (written without a minus sign); else an
// integer within them, or a decimal fraction whose integer part keeps it
// within them (see below).
func (c *schemaCompiler) boundedNumber(o *object, path string) (sym, error) {
	var present []string
	for _, kw := range boundKeywords {
		if _, ok := o.get(kw); ok {
			present = append(present, kw)
		}
	}
	if len(present) == 0 {
		return c.numberRule(), nil
	}
	if x, ok, err := numberKw(o, "minimum", path); err == nil && ok && x == 0 && len(present) == 1 {
		return c.rule(c.unsignedNumber()), nil
	}
	lo, hi, err := intBounds(o, path)
	if err != nil {
		return sym{}, err
	}
	alts := [][]sym{{c.intRange(lo, hi)}}
	frac := []sym{symRange('.', '.'), digit('0', '9'), c.star([]sym{digit('0', '9')})}
	// n.F (n + f, 0 <= f < 1) lies within the bounds when lo <= n and
	// n+1 <= hi; -n.F when n+1 <= -lo and (hi < 0) -hi <= n. Stricter than
	// the bounds near them (5.0 for maximum 5), never looser; no exponent.
	a, b := int64(0), int64(-1)
	if lo != nil {
		a = max(*lo, 0)
	}
	if hi != nil {
		b = *hi - 1
	}
	if hi == nil || b >= a {
		alts = append(alts, cat([]sym{c.natRange(a, b)}, frac))
	}
	a, b = 0, -1
	if hi != nil && *hi < 0 {
		a = -*hi
	}
	if lo != nil {
		b = -*lo - 1
	}
	if lo == nil || b >= a {
		alts = append(alts, cat(bytesOf("-"), []sym{c.natRange(a, b)}, frac))
	}
	return c.rule(alts...), nil
}

// sameLen is the decimal numbers from x to y, both of the same length.
func (j *jsonBuilder) sameLen(x, y string) sym {
	if x == "" {
		return j.rule(nil)
	}
	if x[0] == y[0] {
		return j.rule([]sym{digit(x[0], x[0]), j.sameLen(x[1:], y[1:])})
	}
	// The first digits whose every continuation is in range share one
	// alternative, so the rules grow with the square of the length, not
	// exponentially.
	n := len(x) - 1
	lo, hi := x[0], y[0]
	var alts [][]sym
	if zeros := strings.Repeat("0", n); x[1:] != zeros {
		alts = append(alts, []sym{digit(x[0], x[0]), j.sameLen(x[1:], strings.Repeat("9", n))})
		lo++
	}
	if nines := strings.Repeat("9", n); y[1:] != nines {
		alts = append(alts, []sym{digit(y[0], y[0]), j.sameLen(strings.Repeat("0", n), y[1:])})
		hi--
	}
	if lo <= hi {
		mid := []sym{digit(lo, hi)}
		for range n {
			mid = append(mid, digit('0', '9'))
		}
		alts = append(alts, mid)
	}
	return j.rule(alts...)
}

// natRange is the non-negative integers from a to b (b < 0: no upper
// bound), without leading zeros.
func (j *jsonBuilder) natRange(a, b int64) sym {
	as := fmt.Sprint(a)
	if b < 0 {
		longer := []sym{digit('1', '9')}
		for range len(as) {
			longer = append(longer, digit('0', '9'))
		}
		longer = append(longer, j.star([]sym{digit('0', '9')}))
		return j.rule([]sym{j.sameLen(as, strings.Repeat("9", len(as)))}, longer)
	}
	bs := fmt.Sprint(b)
	var alts [][]sym
	for d := len(as); d <= len(bs); d++ {
		lo, hi := "1"+strings.Repeat("0", d-1), strings.Repeat("9", d)
		if d == len(as) {
			lo = as
		}
		if d == len(bs) {
			hi = bs
		}
		alts = append(alts, []sym{j.sameLen(lo, hi)})
	}
	return j.rule(alts...)
}

// intRange is the integers in [lo, hi] (nil: unbounded), written without
// leading zeros or "-0".
func (j *jsonBuilder) intRange(lo, hi *int64) sym {
	var alts [][]sym
	if hi == nil || *hi >= 0 {
		a, b := int64(0), int64(-1)
		if lo != nil && *lo > 0 {
			a = *lo
		}
		if hi != nil {
			b = *hi
		}
		alts = append(alts, []sym{j.natRange(a, b)})
	}
	if lo == nil || *lo < 0 {
		a, b := int64(1), int64(-1)
		if hi != nil && *hi < 0 {
			a = -*hi
		}
		if lo != nil {
			b = -*lo
		}
		alts = append(alts, cat(bytesOf("-"), []sym{j.natRange(a, b)}))
	}
	return j.rule(alts...)
}
