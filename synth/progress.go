package synth

import (
	"fmt"
	"io"
	"time"

	"github.com/sluice-llm/sluice/internal/term"
)

// progress reports a Write: a line redrawn at most every 100ms on a
// terminal, a plain line at most every 5s otherwise, and a summary.
type progress struct {
	w        io.Writer
	tty      bool
	name     string
	total    int64 // file bytes
	done     int64
	tensors  int
	ntensors int
	start    time.Time
	last     time.Time
	drawn    bool
}

const (
	ttyInterval   = 100 * time.Millisecond
	plainInterval = 5 * time.Second
)

func newProgress(w io.Writer, name string, plan []TensorPlan, header int64) *progress {
	p := &progress{w: w, name: name, ntensors: len(plan), done: header, total: header}
	for i := range plan {
		p.total += int64(alignUp(uint64(plan[i].Bytes())))
	}
	p.start = time.Now()
	p.last = p.start
	if w != nil {
		p.tty = term.IsTerminal(w)
		if !p.tty {
			fmt.Fprintf(w, "synth %s: %d tensors, %s\n", name, len(plan), term.FormatBytes(p.total))
		}
	}
	return p
}

// add records n bytes written; endTensor marks the end of a tensor.
func (p *progress) add(n int64, endTensor bool) {
	p.done += n
	if endTensor {
		p.tensors++
	}
	if p.w == nil {
		return
	}
	now := time.Now()
	iv := plainInterval
	if p.tty {
		iv = ttyInterval
	}
	if now.Sub(p.last) < iv {
		return
	}
	p.last = now
	line := fmt.Sprintf("synth %s: %3.0f%% (%d/%d tensors, %s of %s, %s/s)", p.name,
		100*float64(p.done)/float64(max(p.total, 1)), p.tensors, p.ntensors,
		term.FormatBytes(p.done), term.FormatBytes(p.total), term.FormatBytes(p.rate(now)))
	if p.tty {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) rate(now time.Time) int64 {
	el := now.Sub(p.start).Seconds()
	if el <= 0 {
		return 0
	}
	return int64(float64(p.done) / el)
}

func (p *progress) finish(path string, err error) {
	if p.w == nil {
		return
	}
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	if err != nil {
		return
	}
	now := time.Now()
	fmt.Fprintf(p.w, "wrote %s: %s %d tensors, %s in %s (%s/s)\n", path, p.name, p.ntensors,
		term.FormatBytes(p.done), now.Sub(p.start).Round(time.Millisecond), term.FormatBytes(p.rate(now)))
}
