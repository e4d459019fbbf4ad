package store

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Kind says what a model reference points at.
type Kind int

// Reference kinds.
const (
	// Local is a file on disk, used in place and never copied into the store.
	Local Kind = iota
	// HFFile is one file in a Hugging Face repository:
	// hf://OWNER/REPO/PATH/FILE.gguf[@REVISION].
	HFFile
	// HFQuant is a Hugging Face repository and a quantization tag:
	// OWNER/REPO:QUANT[@REVISION] (or hf://OWNER/REPO:QUANT). The file is
	// the GGUF in the repository whose name carries the tag. With no tag
	// (OWNER/REPO) the repository must hold one GGUF model, or one tagged
	// Q4_K_M.
	HFQuant
	// URL is a plain http:// or https:// address of a GGUF file.
	URL
	// Dummy is dummy:SHAPE:TYPE, a generated model with random weights.
	Dummy
)

func (k Kind) String() string {
	switch k {
	case Local:
		return "local"
	case HFFile:
		return "hf-file"
	case HFQuant:
		return "hf-quant"
	case URL:
		return "url"
	case Dummy:
		return "dummy"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// DefaultRevision is the revision used when a Hugging Face reference names
// none.
const DefaultRevision = "main"

// Ref is a parsed model reference. Which fields are set depends on Kind.
type Ref struct {
	Kind Kind
	// Raw is the reference as the user wrote it.
	Raw string

	// Path is the file path of a Local reference.
	Path string

	// Repo is OWNER/REPO for HFFile and HFQuant.
	Repo string
	// File is the path of the file inside Repo for HFFile.
	File string
	// Quant is the quantization tag of HFQuant, upper-cased ("Q4_K_M");
	// empty when the reference names the repository alone.
	Quant string
	// Revision is the branch, tag or commit for HFFile and HFQuant
	// (DefaultRevision when the reference names none).
	Revision string

	// URL is the address of a URL reference.
	URL string

	// Shape and Type are the two fields of dummy:SHAPE:TYPE.
	Shape, Type string
}

// String returns the canonical form of r, the key under which the store
// keeps its manifest: hf://OWNER/REPO/FILE[@REV], OWNER/REPO:QUANT[@REV],
// the URL, dummy:SHAPE:TYPE, or the local path. The revision is left out
// when it is DefaultRevision.
func (r Ref) String() string {
	rev := ""
	if r.Revision != "" && r.Revision != DefaultRevision {
		rev = "@" + r.Revision
	}
	switch r.Kind {
	case Local:
		return r.Path
	case HFFile:
		return "hf://" + r.Repo + "/" + r.File + rev
	case HFQuant:
		if r.Quant == "" {
			return r.Repo + rev
		}
		return r.Repo + ":" + r.Quant + rev
	case URL:
		return r.URL
	case Dummy:
		return "dummy:" + r.Shape + ":" + r.Type
	}
	return r.Raw
}

// Remote reports whether r is fetched over the network (HFFile, HFQuant,
// URL).
func (r Ref) Remote() bool {
	return r.Kind == HFFile || r.Kind == HFQuant || r.Kind == URL
}

var (
	repoPart  = `[A-Za-z0-9][A-Za-z0-9._-]*`
	repoRe    = regexp.MustCompile(`^` + repoPart + `/` + repoPart + `$`)
	quantRe   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	shortRefR = regexp.MustCompile(`^(` + repoPart + `/` + repoPart + `)(?::([^@/:]*))?(?:@([^@]+))?$`)
)

// ParseRef parses a model reference:
//
//   - hf://OWNER/REPO/PATH/FILE.gguf[@REVISION]: one file of a Hugging Face
//     repository (a split part such as -00001-of-00003.gguf stands for the
//     whole split model);
//   - hf://OWNER/REPO:QUANT[@REVISION] or OWNER/REPO:QUANT[@REVISION]: the
//     GGUF in the repository whose name carries QUANT (case-insensitive,
//     e.g. Q4_K_M); OWNER/REPO alone picks the repository's only GGUF model;
//   - http:// or https:// URL: a GGUF file on any web server;
//   - dummy:SHAPE:TYPE: a generated model (not supported yet);
//   - anything else: a local file path. A path that exists on disk always
//     wins over the OWNER/REPO forms, and a path ending in .gguf or starting
//     with /, ./, ../ or ~ is always local.
func ParseRef(s string) (Ref, error) {
	raw := s
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, fmt.Errorf("empty model reference")
	}
	lower := strings.ToLower(s)
	switch {
	case strings.HasPrefix(lower, "hf://"):
		return parseHF(raw, s[len("hf://"):])
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return Ref{}, fmt.Errorf("model reference %q: not a valid URL", raw)
		}
		if u.Path == "" || strings.HasSuffix(u.Path, "/") {
			return Ref{}, fmt.Errorf("model reference %q: the URL must name a file", raw)
		}
		return Ref{Kind: URL, Raw: raw, URL: s}, nil
	case strings.HasPrefix(lower, "dummy:"):
		parts := strings.Split(s, ":")
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return Ref{}, fmt.Errorf("model reference %q: want dummy:SHAPE:TYPE", raw)
		}
		return Ref{Kind: Dummy, Raw: raw, Shape: parts[1], Type: parts[2]}, nil
	case strings.HasPrefix(lower, "file://"):
		return Ref{Kind: Local, Raw: raw, Path: expandHome(s[len("file://"):])}, nil
	}
	if looksLocal(s) {
		return Ref{Kind: Local, Raw: raw, Path: expandHome(s)}, nil
	}
	if _, err := os.Stat(s); err == nil {
		return Ref{Kind: Local, Raw: raw, Path: s}, nil
	}
	if m := shortRefR.FindStringSubmatch(s); m != nil {
		return newQuantRef(raw, m[1], m[2], m[3])
	}
	return Ref{Kind: Local, Raw: raw, Path: s}, nil
}

func looksLocal(s string) bool {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		s == "~" || strings.HasPrefix(s, "~/") || strings.HasPrefix(s, `\`) || strings.HasPrefix(s, ".\\") {
		return true
	}
	if len(s) >= 2 && s[1] == ':' && (s[0]|0x20 >= 'a' && s[0]|0x20 <= 'z') {
		return true // C:\models\x.gguf
	}
	return strings.HasSuffix(strings.ToLower(s), ".gguf") && !strings.Contains(s, "@")
}

func expandHome(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return h + p[1:]
		}
	}
	return p
}

func parseHF(raw, rest string) (Ref, error) {
	if m := shortRefR.FindStringSubmatch(rest); m != nil {
		return newQuantRef(raw, m[1], m[2], m[3])
	}
	body, rev := rest, ""
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		body, rev = rest[:i], rest[i+1:]
		if rev == "" {
			return Ref{}, fmt.Errorf("model reference %q: empty revision after @", raw)
		}
	}
	parts := strings.SplitN(body, "/", 3)
	if len(parts) < 3 || parts[2] == "" {
		return Ref{}, fmt.Errorf("model reference %q: want hf://OWNER/REPO/FILE.gguf[@REVISION] or hf://OWNER/REPO:QUANT", raw)
	}
	repo := parts[0] + "/" + parts[1]
	if !repoRe.MatchString(repo) {
		return Ref{}, fmt.Errorf("model reference %q: %q is not a valid OWNER/REPO", raw, repo)
	}
	file := parts[2]
	if !cleanRepoPath(file) {
		return Ref{}, fmt.Errorf("model reference %q: bad file path %q", raw, file)
	}
	if rev == "" {
		rev = DefaultRevision
	}
	return Ref{Kind: HFFile, Raw: raw, Repo: repo, File: file, Revision: rev}, nil
}

// cleanRepoPath reports whether p is a clean relative path inside a
// repository: no "." or ".." segments, no empty segments, not absolute.
func cleanRepoPath(p string) bool {
	clean := path.Clean(p)
	return p != "" && clean == p && clean != "." && clean != ".." &&
		!strings.HasPrefix(clean, "../") && !strings.HasPrefix(clean, "/")
}

func newQuantRef(raw, repo, quant, rev string) (Ref, error) {
	if !repoRe.MatchString(repo) {
		return Ref{}, fmt.Errorf("model reference %q: %q is not a valid OWNER/REPO", raw, repo)
	}
	if quant != "" && !quantRe.MatchString(quant) {
		return Ref{}, fmt.Errorf("model reference %q: bad quantization tag %q", raw, quant)
	}
	if rev == "" {
		rev = DefaultRevision
	}
	return Ref{Kind: HFQuant, Raw: raw, Repo: repo, Quant: strings.ToUpper(quant), Revision: rev}, nil
}

// splitRe matches the file name of one part of a split GGUF, as written by
// llama.cpp's gguf-split: NAME-00001-of-00003.gguf.
var splitRe = regexp.MustCompile(`^(.*)-(\d{5})-of-(\d{5})\.gguf$`)

// splitParts returns, for the name of any part of a split GGUF, the names of
// all parts in order; for any other name it returns the name alone.
func splitParts(name string) []string {
	m := splitRe.FindStringSubmatch(name)
	if m == nil {
		return []string{name}
	}
	n, err := strconv.Atoi(m[3])
	if err != nil || n < 1 || n > 9999 {
		return []string{name}
	}
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("%s-%05d-of-%05d.gguf", m[1], i+1, n)
	}
	return parts
}

// splitInfo reports whether name is a part of a split GGUF, with the part's
// base name (the text before -NNNNN-of-) and its index (1-based).
func splitInfo(name string) (base string, part, count int, ok bool) {
	m := splitRe.FindStringSubmatch(name)
	if m == nil {
		return "", 0, 0, false
	}
	part, _ = strconv.Atoi(m[2])
	count, _ = strconv.Atoi(m[3])
	return m[1], part, count, count >= 1 && part >= 1 && part <= count
}
