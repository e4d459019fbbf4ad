package store

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// pickQuant chooses the GGUF model in a repository listing that r's tag
// names, returning the path of its (first) file.
func pickQuant(r Ref, files []hubFile) (string, error) {
	ref := r.String()
	type cand struct {
		first string
		parts map[int]bool
		count int
	}
	cands := map[string]*cand{}
	var order []string
	var all []string
	for _, f := range files {
		if f.Type != "" && f.Type != "file" {
			continue
		}
		name := f.Path
		if !strings.HasSuffix(strings.ToLower(name), ".gguf") || !cleanRepoPath(name) {
			continue // not a model file, or a path that would leave the repository
		}
		all = append(all, name)
		base := path.Base(name)
		if strings.HasPrefix(strings.ToLower(base), "mmproj") {
			continue // vision projectors are not models
		}
		if r.Quant != "" && !hasTag(name, r.Quant) {
			continue
		}
		key, part, count := name, 1, 1
		if b, p, n, ok := splitInfo(base); ok {
			key = path.Join(path.Dir(name), b) + fmt.Sprintf("-of-%05d", n)
			part, count = p, n
		}
		c := cands[key]
		if c == nil {
			c = &cand{parts: map[int]bool{}, count: count}
			cands[key] = c
			order = append(order, key)
		}
		c.parts[part] = true
		if part == 1 {
			c.first = name
		}
	}
	var choices []string
	for _, k := range order {
		c := cands[k]
		if c.first == "" {
			continue // a split model without its first part
		}
		label := c.first
		choices = append(choices, label)
	}
	sort.Strings(choices)
	switch {
	case len(choices) == 1:
		return choices[0], nil
	case len(choices) == 0:
		if len(all) == 0 {
			return "", newRefError(ref, ErrNoGGUF, "repository "+r.Repo+" has no .gguf file at "+r.Revision, "pick a repository that publishes GGUF files (their names usually end in -GGUF)")
		}
		return "", newRefError(ref, ErrNoGGUF, fmt.Sprintf("no GGUF file in %s matches %q", r.Repo, r.Quant), "available: "+strings.Join(availableTags(all), ", "))
	}
	if r.Quant == "" {
		var q4 []string
		for _, c := range choices {
			if hasTag(c, "Q4_K_M") {
				q4 = append(q4, c)
			}
		}
		if len(q4) == 1 {
			return q4[0], nil
		}
	}
	return "", &AmbiguousError{Ref: ref, Quant: r.Quant, Choices: choices}
}

// hasTag reports whether name contains tag (case-insensitively) as a whole
// word: not preceded by a letter or digit, and followed by neither a letter,
// a digit nor an underscore (so Q4_K does not match Q4_K_M, nor Q4_0 match
// IQ4_0).
func hasTag(name, tag string) bool {
	ln, lt := strings.ToLower(name), strings.ToLower(tag)
	for i := 0; ; {
		j := strings.Index(ln[i:], lt)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(lt)
		before := j == 0 || !isAlnum(ln[j-1])
		after := end == len(ln) || !(isAlnum(ln[end]) || ln[end] == '_')
		if before && after {
			return true
		}
		i = j + 1
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// availableTags lists the GGUF files of a repository for an error message,
// naming split models once.
func availableTags(all []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range all {
		dir, base := path.Split(n)
		if b, p, _, ok := splitInfo(base); ok {
			if p != 1 {
				continue
			}
			n = dir + b + "-*.gguf"
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
