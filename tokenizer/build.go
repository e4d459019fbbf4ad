package tokenizer

import (
	"fmt"
	"strconv"
	"strings"
)

// vocabSpec is everything the tokenizer reads from tokenizer.ggml.* keys.
type vocabSpec struct {
	model  string // tokenizer.ggml.model
	pre    string // tokenizer.ggml.pre
	name   string // general.name
	tokens []string
	scores []float32 // may be nil
	types  []int32   // may be nil
	merges []string  // BPE only

	// ids holds the special-token keys present in the file, by key suffix
	// ("bos_token_id", ...), with their raw values.
	ids map[string]int64
	// flags holds the boolean keys present, by key suffix ("add_bos_token").
	flags map[string]bool
}

const keyPrefix = "tokenizer.ggml."

// Special-token id keys, by suffix, in the order llama.cpp applies them.
var specialIDKeys = []string{
	"bos_token_id", "eos_token_id", "eot_token_id", "eom_token_id",
	"unknown_token_id", "seperator_token_id", "padding_token_id",
	"mask_token_id", "fim_pre_token_id", "fim_suf_token_id",
	"fim_mid_token_id", "fim_pad_token_id", "fim_rep_token_id",
	"fim_sep_token_id", "prefix_token_id", "suffix_token_id",
	"middle_token_id",
}

var boolKeys = []string{"add_bos_token", "add_eos_token", "add_space_prefix"}

// Token texts llama.cpp recognizes, in order of preference.
var (
	eotTexts = []string{
		"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>",
		"<end_of_utterance>",
	}
	eomTexts    = []string{"<|eom_id|>"}
	fimPadTexts = []string{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}
	fimRepTexts = []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}
	fimSepTexts = []string{"<|file_sep|>"}
	fimOther    = []string{
		"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
		"<|code_prefix|>", "<|prefix|>",
		"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
		"<|code_suffix|>", "<|suffix|>",
		"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
		"<|code_middle|>", "<|middle|>",
	}
	eogTexts = []string{
		"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
		"<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
		"_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
		"<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~[",
	}
)

// build makes a Tokenizer from a vocabulary description, following
// llama.cpp's llama_vocab::load.
func build(s *vocabSpec) (*Tokenizer, error) {
	if s.model == "" {
		return nil, fmt.Errorf("tokenizer: missing key %smodel", keyPrefix)
	}
	if len(s.tokens) == 0 {
		return nil, fmt.Errorf("tokenizer: missing or empty key %stokens", keyPrefix)
	}
	n := len(s.tokens)
	if s.scores != nil && len(s.scores) < n {
		return nil, fmt.Errorf("tokenizer: key %sscores has %d entries for %d tokens", keyPrefix, len(s.scores), n)
	}
	if s.types != nil && len(s.types) < n {
		return nil, fmt.Errorf("tokenizer: key %stoken_type has %d entries for %d tokens", keyPrefix, len(s.types), n)
	}

	t := &Tokenizer{kind: s.model, pre: s.pre, eot: -1, eom: -1}
	var ignoreMerges bool
	var pre *preTokenizer
	fimPad, fimRep, fimSep := int32(-1), int32(-1), int32(-1)
	switch s.model {
	case KindSPM:
		t.bos, t.eos, t.unk = 1, 2, 0
		t.addBOS, t.addSpacePrefix = true, true
		t.pre = "default"
	case KindBPE:
		if s.merges == nil {
			return nil, fmt.Errorf("tokenizer: missing key %smerges (required for %q vocabularies)", keyPrefix, s.model)
		}
		if t.pre == "" {
			t.pre = "default"
		}
		var addBOS bool
		var err error
		pre, ignoreMerges, addBOS, err = preTokenizerFor(t.pre)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: key %spre: %w", keyPrefix, err)
		}
		t.bos, t.eos, t.unk = 11, 11, -1
		if t.pre == "glm4" || t.pre == "chatglm-bpe" {
			t.bos = -1
		}
		t.addBOS = addBOS
	default:
		return nil, fmt.Errorf("tokenizer: key %smodel: unsupported tokenizer type %q (supported: %q, %q)", keyPrefix, s.model, KindSPM, KindBPE)
	}
	if v, ok := s.flags["add_space_prefix"]; ok {
		t.addSpacePrefix = v
	}

	t.tokens = make([]string, n)
	t.scores = make([]float32, n)
	t.attrs = make([]tokenAttr, n)
	t.index = make(map[string]int32, n)
	for i, tok := range s.tokens {
		if tok == "" {
			tok = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		t.tokens[i] = tok
		if _, dup := t.index[tok]; !dup {
			t.index[tok] = int32(i)
		}
		if s.scores != nil {
			t.scores[i] = s.scores[i]
		}
		a := attrNormal
		if s.types != nil {
			switch s.types[i] {
			case typeUnknown:
				a = attrUnknown
			case typeUnused:
				a = attrUnused
			case typeNormal:
				a = attrNormal
			case typeControl:
				a = attrControl
			case typeUserDefined:
				a = attrUserDefined
			case typeByte:
				a = attrByte
			default:
				a = 0
			}
		}
		t.attrs[i] = a
	}

	// Special ids: defaults out of range are dropped, keys override them
	// when in range.
	idp := map[string]*int32{
		"bos_token_id": &t.bos, "eos_token_id": &t.eos, "eot_token_id": &t.eot,
		"eom_token_id": &t.eom, "unknown_token_id": &t.unk,
		"fim_pad_token_id": &fimPad, "fim_rep_token_id": &fimRep, "fim_sep_token_id": &fimSep,
	}
	for _, k := range specialIDKeys {
		p := idp[k]
		if p == nil {
			continue
		}
		if *p >= int32(n) {
			*p = -1
		}
		if v, ok := s.ids[k]; ok && v >= 0 && v < int64(n) {
			*p = int32(v)
		}
	}
	if v, ok := s.flags["add_bos_token"]; ok {
		t.addBOS = v
	}
	if v, ok := s.flags["add_eos_token"]; ok {
		t.addEOS = v
	}
	if t.addBOS && t.bos < 0 {
		return nil, fmt.Errorf("tokenizer: %sadd_bos_token is true, but %sbos_token_id is not set", keyPrefix, keyPrefix)
	}
	if t.addEOS && t.eos < 0 {
		return nil, fmt.Errorf("tokenizer: %sadd_eos_token is true, but %seos_token_id is not set", keyPrefix, keyPrefix)
	}

	// Tokens recognized by their text become control tokens.
	markControl := func(id int32) {
		t.attrs[id] |= attrControl
	}
	findFirst := func(texts []string) int32 {
		for _, s := range texts {
			if id, ok := t.index[s]; ok {
				return id
			}
		}
		return -1
	}
	if t.eot < 0 {
		if t.eot = findFirst(eotTexts); t.eot >= 0 {
			markControl(t.eot)
		}
	}
	if t.eom < 0 {
		if t.eom = findFirst(eomTexts); t.eom >= 0 {
			markControl(t.eom)
		}
	}
	if fimPad < 0 {
		fimPad = findFirst(fimPadTexts)
	}
	if fimRep < 0 {
		fimRep = findFirst(fimRepTexts)
	}
	if fimSep < 0 {
		fimSep = findFirst(fimSepTexts)
	}
	for _, id := range []int32{fimPad, fimRep, fimSep} {
		if id >= 0 {
			markControl(id)
		}
	}
	for _, s := range fimOther {
		if id, ok := t.index[s]; ok {
			markControl(id)
		}
	}
	for i, tok := range t.tokens {
		if t.attrs[i]&attrControl != 0 && strings.Contains(tok, "unused") {
			t.attrs[i] |= attrUnused
		}
	}

	t.eog = make(map[int32]struct{})
	for _, id := range []int32{fimPad, fimRep, fimSep} {
		if id >= 0 {
			t.eog[id] = struct{}{}
		}
	}
	for _, s := range eogTexts {
		if id, ok := t.index[s]; ok {
			t.eog[id] = struct{}{}
			markControl(id)
		}
	}
	for _, s := range []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"} {
		if id, ok := t.index[s]; ok {
			t.attrs[id] = attrUserDefined
		}
	}
	for _, id := range []int32{t.eos, t.eot, t.eom} {
		if id >= 0 {
			t.eog[id] = struct{}{}
		}
	}
	// With both <|return|> and <|call|> (or <|calls|> and <|flush|>),
	// <|end|> ends a message, not the generation.
	has := func(s string) bool {
		id, ok := t.index[s]
		return ok && t.IsEOG(id)
	}
	if end, ok := t.index["<|end|>"]; ok && t.IsEOG(end) {
		call := has("<|call|>") || has("<|calls|>")
		if (has("<|return|>") && call) || (call && has("<|flush|>")) {
			delete(t.eog, end)
			t.attrs[end] = attrUserDefined
		}
	}
	if s, ok := t.index["</s>"]; ok && t.IsEOG(s) && has("<|tool_response>") {
		delete(t.eog, s)
		t.attrs[s] = attrNormal
	}

	t.sortSpecials()

	// Per-model attributes that GGUF files do not carry.
	name := strings.ToLower(s.name)
	setAttr := func(text string, a tokenAttr, on bool) {
		id, ok := t.index[text]
		if !ok {
			return
		}
		if on {
			t.attrs[id] |= a
		} else {
			t.attrs[id] &^= a
		}
	}
	switch {
	case strings.Contains(t.pre, "jina-v2-de") || strings.Contains(t.pre, "jina-v2-es") || strings.Contains(t.pre, "jina-v2-code"):
		setAttr("<mask>", attrLStrip, true)
	case strings.Contains(name, "phi-3") || strings.Contains(name, "phi3"):
		for _, id := range t.specials {
			t.attrs[id] |= attrRStrip
		}
		setAttr("</s>", attrRStrip, true)
		for _, s := range []string{"<unk>", "<s>", "<|endoftext|>"} {
			setAttr(s, attrRStrip, false)
		}
	case strings.Contains(name, "modern-bert"):
		setAttr("[MASK]", attrLStrip, true)
	}

	t.trie = newSpecialTrie(t)

	switch s.model {
	case KindSPM:
		t.spm = newSPM(t)
	case KindBPE:
		t.bpe = newBPE(t, s.merges, pre, ignoreMerges)
	}

	t.pieces = make([]string, n)
	for i := range t.tokens {
		t.pieces[i] = t.makePiece(int32(i))
	}
	return t, nil
}

// makePiece renders token id as llama.cpp's token_to_piece with special
// tokens shown.
func (t *Tokenizer) makePiece(id int32) string {
	tok, a := t.tokens[id], t.attrs[id]
	switch {
	case a&(attrUnknown|attrControl|attrUserDefined) != 0:
		return tok
	case a&attrNormal != 0:
		if t.spm != nil {
			return strings.ReplaceAll(tok, "▁", " ")
		}
		return bpePiece(tok)
	case a&attrByte != 0:
		if len(tok) == 6 && strings.HasPrefix(tok, "<0x") && tok[5] == '>' {
			if v, err := strconv.ParseUint(tok[3:5], 16, 8); err == nil {
				return string([]byte{byte(v)})
			}
		}
		return ""
	}
	return ""
}
