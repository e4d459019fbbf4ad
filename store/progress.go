package store

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sluice-llm/sluice/internal/term"
)

// Progress receives download progress. Start begins a file of size bytes
// (-1 when unknown) of which done are already present (a resumed
// download); Add reports n more bytes; Finish ends the file (err nil on
// success). Message reports a status line. Implementations must be safe for
// use by one download at a time.
type Progress interface {
	Start(name string, size, done int64)
	Add(n int64)
	Finish(err error)
	Message(msg string)
}

// NewProgress returns a Progress writing to w: a redrawn bar (bytes, rate,
// ETA) when w is a terminal, plain lines at most every few seconds
// otherwise, and a summary line per file either way. A nil w gives a
// Progress that discards everything.
func NewProgress(w io.Writer) Progress {
	if w == nil {
		return nopProgress{}
	}
	return &textProgress{w: w, tty: term.IsTerminal(w), now: time.Now}
}

type nopProgress struct{}

func (nopProgress) Start(string, int64, int64) {}
func (nopProgress) Add(int64)                  {}
func (nopProgress) Finish(error)               {}
func (nopProgress) Message(string)             {}

type textProgress struct {
	w   io.Writer
	tty bool
	now func() time.Time

	mu       sync.Mutex
	name     string
	size     int64
	done     int64
	resumed  int64
	start    time.Time
	lastDraw time.Time
	drawn    bool
}

const (
	ttyInterval   = 100 * time.Millisecond
	plainInterval = 5 * time.Second
)

func (p *textProgress) Start(name string, size, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.name, p.size, p.done, p.resumed = name, size, done, done
	p.start = p.now()
	p.lastDraw = p.start
	p.drawn = false
	if p.tty {
		p.draw()
		return
	}
	switch {
	case done > 0 && size > 0:
		fmt.Fprintf(p.w, "resuming %s at %s of %s\n", name, term.FormatBytes(done), term.FormatBytes(size))
	case size >= 0:
		fmt.Fprintf(p.w, "downloading %s (%s)\n", name, term.FormatBytes(size))
	default:
		fmt.Fprintf(p.w, "downloading %s\n", name)
	}
}

func (p *textProgress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	now := p.now()
	if p.tty {
		if now.Sub(p.lastDraw) >= ttyInterval {
			p.lastDraw = now
			p.draw()
		}
		return
	}
	if now.Sub(p.lastDraw) >= plainInterval {
		p.lastDraw = now
		fmt.Fprintf(p.w, "%s: %s\n", p.name, p.status(now))
	}
}

func (p *textProgress) Finish(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	if err != nil {
		var te *transientError
		if errors.As(err, &te) && p.done > 0 {
			fmt.Fprintf(p.w, "%s: stopped at %s (kept; the download resumes from there)\n", p.name, term.FormatBytes(p.done))
		}
		return
	}
	el := p.now().Sub(p.start)
	got := p.done - p.resumed
	line := fmt.Sprintf("%s: %s in %s", p.name, term.FormatBytes(p.done), fmtDuration(el))
	if got > 0 && el > 0 {
		line += fmt.Sprintf(" (%s/s)", term.FormatBytes(int64(float64(got)/el.Seconds())))
	}
	if p.resumed > 0 {
		line += fmt.Sprintf(", resumed at %s", term.FormatBytes(p.resumed))
	}
	fmt.Fprintln(p.w, line)
}

func (p *textProgress) Message(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.drawn = false
	}
	fmt.Fprintln(p.w, msg)
}

// status is "45% 12.0 MiB / 26.7 MiB, 3.1 MiB/s, ETA 5s".
func (p *textProgress) status(now time.Time) string {
	var b strings.Builder
	if p.size > 0 {
		fmt.Fprintf(&b, "%3d%% %s / %s", p.done*100/p.size, term.FormatBytes(p.done), term.FormatBytes(p.size))
	} else {
		b.WriteString(term.FormatBytes(p.done))
	}
	el := now.Sub(p.start).Seconds()
	got := p.done - p.resumed
	if el > 0.2 && got > 0 {
		rate := float64(got) / el
		fmt.Fprintf(&b, ", %s/s", term.FormatBytes(int64(rate)))
		if p.size > 0 && p.done < p.size {
			eta := time.Duration(float64(p.size-p.done) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", ETA %s", fmtDuration(eta))
		}
	}
	return b.String()
}

func (p *textProgress) draw() {
	p.drawn = true
	name := p.name
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	if len(name) > 32 {
		name = name[:14] + "..." + name[len(name)-15:]
	}
	bar := ""
	if p.size > 0 {
		const width = 24
		fill := int(p.done * width / p.size)
		if fill > width {
			fill = width
		}
		bar = "[" + strings.Repeat("=", fill) + strings.Repeat(" ", width-fill) + "] "
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s %s%s", name, bar, p.status(p.now()))
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
