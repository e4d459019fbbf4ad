package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sluice-llm/sluice/internal/term"
)

// attempt is the state of one try at a download: the partial file, what
// it already holds and what is known of the whole file. One attempt owns
// f until it is closed, or handed to finish (which closes it on success).
type attempt struct {
	f      *os.File
	h      hash.Hash // sha256 of the first offset bytes of f
	offset int64     // bytes of the file already in f
	size   int64     // the whole file's size, or -1 when unknown
	side   sidecar   // what the partial file is a prefix of
}

// once makes one attempt: resume (or start) the partial file, ask for the
// rest, classify the answer, stream it, verify and move it into blobs/.
func (d *download) once(ctx context.Context) error {
	a, err := d.resume()
	if err != nil {
		return err
	}
	defer a.close()
	if a.size >= 0 && a.offset == a.size {
		d.etag = a.side.ETag
		return d.complete(a, a.offset, true)
	}
	if err := d.checkSpace(a.size, a.offset); err != nil {
		return err
	}
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	resp, err := d.request(ctx, reqCtx, a)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if done, err := d.classify(resp, a); done || err != nil {
		return err
	}
	if err := d.recordSource(resp, a); err != nil {
		return err
	}
	return d.stream(ctx, reqCtx, cancel, resp.Body, a)
}

func (a *attempt) close() {
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
}

// resume opens the partial file and keeps what it holds when its sidecar
// shows it is a prefix of this very file that can be resumed safely;
// otherwise it starts the file over.
func (d *download) resume() (*attempt, error) {
	sp := d.sp
	f, err := os.OpenFile(d.partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, diskError(d.partial, err)
	}
	a := &attempt{f: f, h: sha256.New(), size: sp.size}
	st, err := f.Stat()
	if err != nil {
		a.close()
		return nil, err
	}
	a.offset = st.Size()
	if b, err := os.ReadFile(d.side); err == nil {
		json.Unmarshal(b, &a.side)
	}
	side := &a.side
	if a.offset > 0 && (side.URL != sp.url || side.SHA256 != sp.sha256 ||
		(sp.size >= 0 && side.Size >= 0 && side.Size != sp.size) ||
		(sp.size >= 0 && a.offset > sp.size) ||
		(sp.sha256 == "" && !strongETag(side.ETag))) {
		// Not a prefix of this file, or no safe way to resume it.
		a.offset = 0
	}
	if a.offset == 0 {
		if err := f.Truncate(0); err != nil {
			a.close()
			return nil, diskError(d.partial, err)
		}
		a.side = sidecar{URL: sp.url, Size: sp.size, SHA256: sp.sha256}
	} else if _, err := io.Copy(a.h, io.NewSectionReader(f, 0, a.offset)); err != nil {
		a.close()
		return nil, fmt.Errorf("reading %s: %v", d.partial, err)
	}
	if a.size < 0 && side.Size >= 0 && a.offset > 0 {
		a.size = side.Size
	}
	return a, nil
}

// checkSpace refuses a download whose remaining bytes (size less offset,
// when size is known) do not fit on the store's disk.
func (d *download) checkSpace(size, offset int64) error {
	if size < 0 {
		return nil
	}
	free := freeSpace(filepath.Dir(d.partial))
	if free < 0 || free >= size-offset {
		return nil
	}
	return newRefError(d.sp.ref, ErrDiskFull,
		fmt.Sprintf("%s needs %s but only %s is free in %s", d.sp.name, term.FormatBytes(size-offset), term.FormatBytes(free), d.s.Home),
		"free some space (sluice rm REF removes stored models) or set SLUICE_HOME to a larger disk")
}

// request asks for the file from a.offset on (If-Range guarded), or for
// the whole file, conditional on an earlier download of the same URL. It
// records the sha256 a redirecting Hub publishes (X-Linked-Etag).
func (d *download) request(ctx, reqCtx context.Context, a *attempt) (*http.Response, error) {
	req, err := d.s.newRequest(reqCtx, http.MethodGet, d.sp.url)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept-Encoding", "identity")
	if a.offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(a.offset, 10)+"-")
		if strongETag(a.side.ETag) {
			req.Header.Set("If-Range", a.side.ETag)
		}
	} else if d.cond != nil {
		if d.cond.ETag != "" {
			req.Header.Set("If-None-Match", d.cond.ETag)
		} else if d.cond.LastModified != "" {
			req.Header.Set("If-Modified-Since", d.cond.LastModified)
		}
	}
	c := *d.s.client()
	var linked http.Header
	c.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if linked == nil && r.Response != nil {
			linked = r.Response.Header
		}
		return nil
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, networkError(ctx, d.sp.ref, err)
	}
	if linked != nil {
		if e := unquoteETag(linked.Get("X-Linked-Etag")); hexSHA256.MatchString(e) {
			d.linkedSHA = e
		}
	}
	return resp, nil
}

// classify reads the answer's status: the body continues a (offset, size
// adjusted), or the stored copy is current (done), or the attempt fails.
func (d *download) classify(resp *http.Response, a *attempt) (done bool, err error) {
	sp := d.sp
	switch resp.StatusCode {
	case http.StatusNotModified:
		if d.cond == nil {
			return true, fmt.Errorf("%s: unexpected 304 Not Modified", sp.ref)
		}
		d.gotSize, d.gotSHA, d.etag = d.cond.Size, d.cond.SHA256, d.cond.ETag
		a.close()
		os.Remove(d.partial)
		os.Remove(d.side)
		return true, nil
	case http.StatusOK:
		return false, d.whole(resp, a)
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != a.offset {
			// Not the range asked for: forget the partial.
			a.f.Truncate(0)
			return true, &transientError{fmt.Errorf("%s: server answered a range request with %q", sp.ref, resp.Header.Get("Content-Range"))}
		}
		if total >= 0 {
			if a.size >= 0 && total != a.size {
				return true, d.sizeMismatch(total, a.size)
			}
			a.size = total
		}
		return false, nil
	case http.StatusRequestedRangeNotSatisfiable:
		a.f.Truncate(0)
		return true, &transientError{fmt.Errorf("%s: server refused to resume at byte %d", sp.ref, a.offset)}
	}
	r := Ref{}
	if pr, err := ParseRef(sp.ref); err == nil {
		r = pr
	}
	return true, d.s.httpError(sp.ref, r.Repo, r.Revision, sp.name, resp)
}

// whole handles a 200: the server sent the whole file (it ignores ranges,
// or the file changed and If-Range failed), so a partial starts over.
func (d *download) whole(resp *http.Response, a *attempt) error {
	if a.offset > 0 {
		if err := a.f.Truncate(0); err != nil {
			return diskError(d.partial, err)
		}
		a.offset = 0
		a.h.Reset()
	}
	if resp.ContentLength >= 0 {
		if a.size >= 0 && resp.ContentLength != a.size {
			return d.sizeMismatch(resp.ContentLength, a.size)
		}
		a.size = resp.ContentLength
	}
	return nil
}

// recordSource checks the published sha256 against the expected one and
// writes the sidecar (URL, ETag, size) that makes a later resume safe.
func (d *download) recordSource(resp *http.Response, a *attempt) error {
	sp := d.sp
	if d.linkedSHA != "" && sp.sha256 != "" && d.linkedSHA != sp.sha256 {
		return newRefError(sp.ref, ErrChecksum, fmt.Sprintf("%s: the server now publishes sha256 %s, not %s", sp.name, d.linkedSHA, sp.sha256), "the file changed during the pull; pull again")
	}
	etag := resp.Header.Get("ETag")
	a.side.ETag, a.side.Size = etag, a.size
	d.etag = etag
	d.lastModified = resp.Header.Get("Last-Modified")
	if b, err := json.Marshal(a.side); err == nil {
		if err := writeFileAtomic(d.side, b); err != nil {
			return err
		}
	}
	if a.offset == 0 {
		return d.checkSpace(a.size, 0)
	}
	return nil
}

// stream copies the body after a.offset into the partial file, cutting a
// connection that stalls for the store's idle timeout, then verifies and
// stores the complete file.
func (d *download) stream(ctx, reqCtx context.Context, cancel context.CancelCauseFunc, body io.Reader, a *attempt) error {
	sp := d.sp
	if _, err := a.f.Seek(a.offset, io.SeekStart); err != nil {
		return err
	}
	d.prog.Start(sp.name, a.size, a.offset)
	idle := d.s.idleTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	timer := time.AfterFunc(idle, func() { cancel(errStalled) })
	defer timer.Stop()
	n, err := copyBody(a.f, body, a.h, d.prog, timer, idle)
	done := a.offset + n
	if err != nil {
		d.prog.Finish(err)
		if we, ok := err.(*writeError); ok {
			return diskError(d.partial, we.err)
		}
		if c := context.Cause(reqCtx); c == errStalled {
			err = errStalled
		} else if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return &transientError{fmt.Errorf("%s: download of %s interrupted at %s: %v", sp.ref, sp.name, term.FormatBytes(done), err)}
	}
	if a.size >= 0 && done != a.size {
		d.prog.Finish(io.ErrUnexpectedEOF)
		if done > a.size {
			a.f.Truncate(0)
		}
		return &transientError{fmt.Errorf("%s: download of %s ended at %s of %s", sp.ref, sp.name, term.FormatBytes(done), term.FormatBytes(a.size))}
	}
	err = d.complete(a, done, a.offset > 0)
	d.prog.Finish(err)
	return err
}

// complete hands the whole partial file (size bytes) to finish, which
// closes it on success; resumed says whether part of it came from an
// earlier attempt.
func (d *download) complete(a *attempt, size int64, resumed bool) error {
	err := d.finish(a.f, a.h, size, resumed)
	if err == nil {
		a.f = nil
	}
	return err
}
