package template

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Map is a string-keyed dictionary that remembers insertion order, the way a
// Python dict does. Chat messages, tool schemas and tool call arguments must
// keep their key order for tojson and iteration, so every JSON object that
// reaches a template is a *Map.
type Map struct {
	keys  []string
	vals  []any
	index map[string]int // built once the map grows past a few keys
}

const mapIndexThreshold = 8

// NewMap returns an empty ordered map.
func NewMap() *Map { return &Map{} }

// Len returns the number of keys.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.keys)
}

func (m *Map) find(k string) int {
	if m == nil {
		return -1
	}
	if m.index != nil {
		if i, ok := m.index[k]; ok {
			return i
		}
		return -1
	}
	for i, kk := range m.keys {
		if kk == k {
			return i
		}
	}
	return -1
}

// Get returns the value stored under k.
func (m *Map) Get(k string) (any, bool) {
	i := m.find(k)
	if i < 0 {
		return nil, false
	}
	return m.vals[i], true
}

// Set stores v under k. A new key goes to the end; an existing key keeps its
// position, as in Python.
func (m *Map) Set(k string, v any) {
	if i := m.find(k); i >= 0 {
		m.vals[i] = v
		return
	}
	m.keys = append(m.keys, k)
	m.vals = append(m.vals, v)
	if m.index != nil {
		m.index[k] = len(m.keys) - 1
	} else if len(m.keys) > mapIndexThreshold {
		m.index = make(map[string]int, len(m.keys)*2)
		for i, kk := range m.keys {
			m.index[kk] = i
		}
	}
}

// Delete removes k and reports whether it was present.
func (m *Map) Delete(k string) bool {
	i := m.find(k)
	if i < 0 {
		return false
	}
	m.keys = append(m.keys[:i], m.keys[i+1:]...)
	m.vals = append(m.vals[:i], m.vals[i+1:]...)
	if m.index != nil {
		m.index = make(map[string]int, len(m.keys)*2)
		for j, kk := range m.keys {
			m.index[kk] = j
		}
	}
	return true
}

// Keys returns the keys in insertion order (a copy).
func (m *Map) Keys() []string {
	if m == nil {
		return nil
	}
	return append([]string(nil), m.keys...)
}

// Values returns the values in key order (a copy).
func (m *Map) Values() []any {
	if m == nil {
		return nil
	}
	return append([]any(nil), m.vals...)
}

// Range calls fn for each key/value pair in order until fn returns false.
func (m *Map) Range(fn func(k string, v any) bool) {
	if m == nil {
		return
	}
	for i, k := range m.keys {
		if !fn(k, m.vals[i]) {
			return
		}
	}
}

// clone returns a shallow copy.
func (m *Map) clone() *Map {
	c := &Map{keys: append([]string(nil), m.keys...), vals: append([]any(nil), m.vals...)}
	if m.index != nil {
		c.index = make(map[string]int, len(m.index))
		for k, v := range m.index {
			c.index[k] = v
		}
	}
	return c
}

// MarshalJSON encodes the map as a compact JSON object in key order.
func (m *Map) MarshalJSON() ([]byte, error) {
	var enc jsonEncoder
	enc.itemSep, enc.keySep = ",", ":"
	enc.indent = -1
	if err := enc.encode(m, 0); err != nil {
		return nil, err
	}
	return []byte(enc.sb.String()), nil
}

// ParseJSON decodes JSON into template values: objects become *Map (key
// order kept; a repeated key keeps its first position and last value, as
// Python's json.loads does), arrays []any, strings string, true/false bool,
// null nil, numbers int when the literal is integral and fits, float64
// otherwise (exponent or fraction present, or too large for int).
func ParseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeJSONValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return nil, errors.New("json: unexpected data after top-level value")
		}
		return nil, err
	}
	return v, nil
}

const maxJSONDepth = 512

func decodeJSONValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("json: nesting too deep")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := NewMap()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("json: object key is %T, not a string", kt)
				}
				v, err := decodeJSONValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				m.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			l := []any{}
			for dec.More() {
				v, err := decodeJSONValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return l, nil
		}
		return nil, fmt.Errorf("json: unexpected delimiter %v", t)
	case json.Number:
		return jsonNumber(string(t))
	case string, bool, nil:
		return t, nil
	}
	return nil, fmt.Errorf("json: unexpected token %v", tok)
}

func jsonNumber(s string) (any, error) {
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.Atoi(s); err == nil {
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("json: bad number %q", s)
	}
	return f, nil
}

// jsonEncoder writes values the way Python's json.dumps does.
type jsonEncoder struct {
	sb          strings.Builder
	indent      int // -1: no newlines
	indentStr   string
	itemSep     string
	keySep      string
	sortKeys    bool
	ensureASCII bool
	limit       int // 0: none
}

var errJSONTooLarge = errors.New("tojson: output too large")

func (e *jsonEncoder) check() error {
	if e.limit > 0 && e.sb.Len() > e.limit {
		return errJSONTooLarge
	}
	return nil
}

func (e *jsonEncoder) newline(level int) {
	if e.indent < 0 {
		return
	}
	e.sb.WriteByte('\n')
	for i := 0; i < level; i++ {
		e.sb.WriteString(e.indentStr)
	}
}

func (e *jsonEncoder) encode(v any, level int) error {
	if level > maxJSONDepth {
		return errors.New("tojson: nesting too deep (circular structure?)")
	}
	if err := e.check(); err != nil {
		return err
	}
	switch x := v.(type) {
	case nil:
		e.sb.WriteString("null")
	case bool:
		if x {
			e.sb.WriteString("true")
		} else {
			e.sb.WriteString("false")
		}
	case int:
		e.sb.WriteString(strconv.Itoa(x))
	case float64:
		switch {
		case math.IsNaN(x):
			e.sb.WriteString("NaN")
		case math.IsInf(x, 1):
			e.sb.WriteString("Infinity")
		case math.IsInf(x, -1):
			e.sb.WriteString("-Infinity")
		default:
			e.sb.WriteString(pyFloatRepr(x))
		}
	case string:
		e.writeString(x)
	case markup:
		e.writeString(string(x))
	case []any:
		return e.encodeList(x, level)
	case tuple:
		return e.encodeList(x, level)
	case *Map:
		if x.Len() == 0 {
			e.sb.WriteString("{}")
			return nil
		}
		keys := x.keys
		if e.sortKeys {
			keys = append([]string(nil), keys...)
			sortStrings(keys)
		}
		e.sb.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				e.sb.WriteString(e.itemSep)
			}
			e.newline(level + 1)
			e.writeString(k)
			e.sb.WriteString(e.keySep)
			val, _ := x.Get(k)
			if err := e.encode(val, level+1); err != nil {
				return err
			}
		}
		e.newline(level)
		e.sb.WriteByte('}')
	default:
		return fmt.Errorf("Object of type %s is not JSON serializable", typeName(v))
	}
	return nil
}

func (e *jsonEncoder) encodeList(l []any, level int) error {
	if len(l) == 0 {
		e.sb.WriteString("[]")
		return nil
	}
	e.sb.WriteByte('[')
	for i, it := range l {
		if i > 0 {
			e.sb.WriteString(e.itemSep)
		}
		e.newline(level + 1)
		if err := e.encode(it, level+1); err != nil {
			return err
		}
	}
	e.newline(level)
	e.sb.WriteByte(']')
	return nil
}

const hexDigits = "0123456789abcdef"

func (e *jsonEncoder) writeString(s string) {
	e.sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			e.sb.WriteString(`\"`)
		case '\\':
			e.sb.WriteString(`\\`)
		case '\n':
			e.sb.WriteString(`\n`)
		case '\r':
			e.sb.WriteString(`\r`)
		case '\t':
			e.sb.WriteString(`\t`)
		case '\b':
			e.sb.WriteString(`\b`)
		case '\f':
			e.sb.WriteString(`\f`)
		default:
			switch {
			case r < 0x20:
				e.writeU(r)
			case e.ensureASCII && r > 0x7e:
				if r > 0xffff {
					r -= 0x10000
					e.writeU(0xd800 + (r>>10)&0x3ff)
					e.writeU(0xdc00 + r&0x3ff)
				} else {
					e.writeU(r)
				}
			default:
				e.sb.WriteRune(r)
			}
		}
	}
	e.sb.WriteByte('"')
}

func (e *jsonEncoder) writeU(r rune) {
	e.sb.WriteString(`\u`)
	e.sb.WriteByte(hexDigits[(r>>12)&0xf])
	e.sb.WriteByte(hexDigits[(r>>8)&0xf])
	e.sb.WriteByte(hexDigits[(r>>4)&0xf])
	e.sb.WriteByte(hexDigits[r&0xf])
}
