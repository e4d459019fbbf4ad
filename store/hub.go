package store

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DefaultEndpoint is the Hugging Face Hub address used unless HF_ENDPOINT
// names a mirror.
const DefaultEndpoint = "https://huggingface.co"

const userAgent = "sluice (model store)"

// hubFile is one entry of the Hub's tree listing.
type hubFile struct {
	Type string `json:"type"`
	Path string `json:"path"`
	Size int64  `json:"size"`
	OID  string `json:"oid"`
	LFS  *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// fileMeta is what the Hub says about one file before it is downloaded.
type fileMeta struct {
	Size   int64  // -1 when unknown
	SHA256 string // "" when the Hub does not give one (non-LFS files)
	Commit string // the commit the revision resolved to, when given
	ETag   string
}

var hexSHA256 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// isHubURL reports whether u is on the Hub endpoint (so it may carry the
// token).
func (s *Store) isHubURL(u string) bool {
	pu, err := url.Parse(u)
	if err != nil {
		return false
	}
	pe, err := url.Parse(s.Endpoint)
	if err != nil {
		return false
	}
	return strings.EqualFold(pu.Host, pe.Host)
}

func (s *Store) newRequest(ctx context.Context, method, u string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	if s.Token != "" && s.isHubURL(u) {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	return req, nil
}

func (s *Store) endpoint() string { return strings.TrimRight(s.Endpoint, "/") }

// escapePath escapes each segment of a slash-separated path.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return strings.Join(segs, "/")
}

// resolveURL is the Hub's download address of file in repo at rev.
func (s *Store) resolveURL(repo, rev, file string) string {
	return s.endpoint() + "/" + escapePath(repo) + "/resolve/" + url.PathEscape(rev) + "/" + escapePath(file)
}

// repoPage is the Hub's web page of repo, where gated terms are accepted.
func (s *Store) repoPage(repo string) string { return s.endpoint() + "/" + repo }

// headFile asks the Hub for a file's size, sha256 and commit without
// downloading it: a HEAD of the resolve address, not following the redirect
// to the content server (the Hub's own response carries X-Linked-Size,
// X-Linked-Etag and X-Repo-Commit). Relative redirects (renamed
// repositories) are followed.
func (s *Store) headFile(ctx context.Context, ref, repo, rev, file string) (fileMeta, error) {
	u := s.resolveURL(repo, rev, file)
	c := *s.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for hops := 0; ; hops++ {
		req, err := s.newRequest(ctx, http.MethodHead, u)
		if err != nil {
			return fileMeta{}, err
		}
		req.Header.Set("Accept-Encoding", "identity")
		resp, err := c.Do(req)
		if err != nil {
			return fileMeta{}, networkError(ctx, ref, err)
		}
		resp.Body.Close()
		h := resp.Header
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc := h.Get("Location")
			if h.Get("X-Linked-Etag") == "" && h.Get("X-Repo-Commit") == "" && loc != "" && hops < 5 {
				next, err := url.Parse(loc)
				if err == nil && next.Host == "" {
					base, _ := url.Parse(u)
					u = base.ResolveReference(next).String()
					continue
				}
			}
			fallthrough
		case resp.StatusCode == http.StatusOK:
			m := fileMeta{Size: -1, Commit: h.Get("X-Repo-Commit")}
			etag := unquoteETag(h.Get("X-Linked-Etag"))
			if etag == "" {
				etag = unquoteETag(h.Get("ETag"))
			} else if hexSHA256.MatchString(etag) {
				m.SHA256 = etag
			}
			m.ETag = etag
			if v := h.Get("X-Linked-Size"); v != "" {
				m.Size, _ = strconv.ParseInt(v, 10, 64)
			} else if resp.StatusCode == http.StatusOK && resp.ContentLength >= 0 {
				m.Size = resp.ContentLength
			}
			return m, nil
		case resp.StatusCode == http.StatusMethodNotAllowed:
			// A mirror without HEAD: learn size and sha256 while downloading.
			return fileMeta{Size: -1}, nil
		default:
			return fileMeta{}, s.httpError(ref, repo, rev, file, resp)
		}
	}
}

// listRepo returns the files of repo at rev, following the listing's
// pagination.
func (s *Store) listRepo(ctx context.Context, ref, repo, rev string) ([]hubFile, error) {
	u := s.endpoint() + "/api/models/" + escapePath(repo) + "/tree/" + url.PathEscape(rev) + "?recursive=true"
	var all []hubFile
	for pages := 0; u != "" && pages < 1000; pages++ {
		req, err := s.newRequest(ctx, http.MethodGet, u)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		resp, err := s.client().Do(req)
		if err != nil {
			return nil, networkError(ctx, ref, err)
		}
		if resp.StatusCode != http.StatusOK {
			err := s.httpError(ref, repo, rev, "", resp)
			resp.Body.Close()
			return nil, err
		}
		var page []hubFile
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: reading the file list of %s: %v", ref, repo, err)
		}
		all = append(all, page...)
		u = nextLink(resp.Header.Get("Link"), resp.Request.URL)
	}
	return all, nil
}

// nextLink returns the rel="next" address of an RFC 8288 Link header,
// resolved against base, or "".
func nextLink(h string, base *url.URL) string {
	for _, part := range strings.Split(h, ",") {
		part = strings.TrimSpace(part)
		if !strings.HasPrefix(part, "<") {
			continue
		}
		end := strings.Index(part, ">")
		if end < 0 {
			continue
		}
		target, params := part[1:end], part[end+1:]
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next" {
				nu, err := url.Parse(target)
				if err != nil {
					return ""
				}
				if base != nil {
					return base.ResolveReference(nu).String()
				}
				return nu.String()
			}
		}
	}
	return ""
}

func unquoteETag(e string) string {
	e = strings.TrimPrefix(strings.TrimSpace(e), "W/")
	return strings.Trim(e, `"`)
}

// httpError turns an unsuccessful Hub or server response into an error
// naming ref and saying what to do. repo, rev and file may be empty.
func (s *Store) httpError(ref, repo, rev, file string, resp *http.Response) error {
	code := resp.Header.Get("X-Error-Code")
	msg := resp.Header.Get("X-Error-Message")
	status := fmt.Sprintf("HTTP %d", resp.StatusCode)
	if msg != "" {
		status += ": " + msg
	}
	page := ""
	if repo != "" {
		page = s.repoPage(repo)
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		switch {
		case repo == "" && !s.isHubURL(resp.Request.URL.String()):
			return newRefError(ref, ErrAuth, "access denied ("+status+")", "the server wants credentials sluice does not send; download the file yourself and pass its path")
		case code == "GatedRepo" || strings.Contains(strings.ToLower(msg), "gated"):
			hint := "accept the model's terms at " + page + " and set HF_TOKEN to an access token of that account"
			if s.Token != "" {
				hint = "the token in HF_TOKEN has no access yet: accept the model's terms at " + page + " with that account (or wait for approval)"
			}
			return newRefError(ref, ErrAuth, "gated repository "+repo+" ("+status+")", hint)
		case code == "RepoNotFound":
			hint := "check OWNER/REPO, or set HF_TOKEN if the repository is private"
			if s.Token != "" {
				hint = "check OWNER/REPO; if it is private, the token in HF_TOKEN has no access to it"
			}
			return newRefError(ref, ErrNotFound, "repository "+repo+" not found or private ("+status+")", hint)
		case s.Token == "":
			return newRefError(ref, ErrAuth, "access denied ("+status+")", "the repository is gated or private: set HF_TOKEN to an access token with read access")
		default:
			return newRefError(ref, ErrAuth, "access denied ("+status+")", "the token in HF_TOKEN was refused or has no read access to "+repo+"; check it and the repository's access page "+page)
		}
	case http.StatusNotFound:
		switch {
		case repo == "":
			return newRefError(ref, ErrNotFound, "no such file ("+status+")", "check the URL")
		case code == "RevisionNotFound":
			return newRefError(ref, ErrNotFound, "revision "+rev+" not found in "+repo+" ("+status+")", "check the branch, tag or commit after @")
		case code == "EntryNotFound" || (file != "" && code != "RepoNotFound"):
			return newRefError(ref, ErrNotFound, "file "+file+" not found in "+repo+" at "+rev+" ("+status+")", "see the files at "+page+"/tree/"+rev+" or use OWNER/REPO:QUANT")
		default:
			return newRefError(ref, ErrNotFound, "repository "+repo+" not found ("+status+")", "check OWNER/REPO (and set HF_TOKEN if it is private)")
		}
	case http.StatusTooManyRequests:
		return &transientError{wrapRefError(ref, errRateLimited, nil, "rate limited by the server ("+status+")", "try again later, or set HF_TOKEN for higher limits")}
	}
	if resp.StatusCode >= 500 {
		return &transientError{fmt.Errorf("%s: server error (%s)", ref, status)}
	}
	return fmt.Errorf("%s: unexpected response (%s)", ref, status)
}

var errRateLimited = fmt.Errorf("rate limited")

// transientError marks an error worth retrying (network failure, 5xx, 429,
// cut connection).
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func networkError(ctx context.Context, ref string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", ref, context.Cause(ctx))
	}
	return &transientError{fmt.Errorf("%s: network error: %w (check the connection; HTTPS_PROXY and NO_PROXY are honoured, and --offline uses stored models only)", ref, err)}
}
