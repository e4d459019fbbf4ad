package tokenizer

import (
	"fmt"

	"github.com/sluice-llm/sluice/gguf"
)

// FromGGUF builds the tokenizer described by the tokenizer.ggml.* keys of f.
// The Tokenizer keeps no reference to f, which may be closed afterwards. The
// error names the missing or malformed key.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	s := &vocabSpec{ids: map[string]int64{}, flags: map[string]bool{}}
	var err error
	str := func(key string, required bool) string {
		v, ok := f.Get(key)
		if !ok {
			if required && err == nil {
				err = fmt.Errorf("tokenizer: missing key %s", key)
			}
			return ""
		}
		x, ok := v.Str()
		if !ok && err == nil {
			err = fmt.Errorf("tokenizer: key %s has type %v, want string", key, v.Type)
		}
		return x
	}
	s.model = str(keyPrefix+"model", true)
	s.pre = str(keyPrefix+"pre", false)
	s.name = str("general.name", false)
	if err != nil {
		return nil, err
	}

	v, ok := f.Get(keyPrefix + "tokens")
	if !ok {
		return nil, fmt.Errorf("tokenizer: missing key %stokens", keyPrefix)
	}
	if s.tokens, ok = v.Strings(); !ok {
		return nil, fmt.Errorf("tokenizer: key %stokens has type %v, want array of strings", keyPrefix, v)
	}
	if v, ok := f.Get(keyPrefix + "scores"); ok {
		if s.scores, ok = v.Float32s(); !ok {
			return nil, fmt.Errorf("tokenizer: key %sscores is not an array of numbers", keyPrefix)
		}
	}
	if v, ok := f.Get(keyPrefix + "token_type"); ok {
		if s.types, ok = v.Int32s(); !ok {
			return nil, fmt.Errorf("tokenizer: key %stoken_type is not an array of int32", keyPrefix)
		}
	}
	if v, ok := f.Get(keyPrefix + "merges"); ok {
		if s.merges, ok = v.Strings(); !ok {
			return nil, fmt.Errorf("tokenizer: key %smerges is not an array of strings", keyPrefix)
		}
		if s.merges == nil {
			s.merges = []string{}
		}
	}
	for _, k := range specialIDKeys {
		v, ok := f.Get(keyPrefix + k)
		if !ok {
			continue
		}
		x, ok := v.Int64()
		if !ok {
			if _, isUint := v.Uint64(); isUint {
				continue // out of any range: ignored, as llama.cpp does
			}
			return nil, fmt.Errorf("tokenizer: key %s%s has type %v, want an integer", keyPrefix, k, v.Type)
		}
		s.ids[k] = x
	}
	for _, k := range boolKeys {
		v, ok := f.Get(keyPrefix + k)
		if !ok {
			continue
		}
		b, ok := v.Bool()
		if !ok {
			return nil, fmt.Errorf("tokenizer: key %s%s has type %v, want bool", keyPrefix, k, v.Type)
		}
		s.flags[k] = b
	}
	return build(s)
}
