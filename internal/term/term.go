// Package term holds the small helpers every command-line output of the
// project shares: byte sizes in binary units and terminal detection. It is
// the one owner of both, so progress lines, plans and logs read alike.
package term

import (
	"fmt"
	"io"
	"os"
)

// FormatBytes renders n bytes with a binary unit: "512 B", "1.5 KiB",
// "80.0 MiB", up to PiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// IsTerminal reports whether w is a character device (and TERM is not
// "dumb"): where a progress bar may redraw its line.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}
