package gguf

import (
	"fmt"
	"math"
	"os"
)

// Open maps the file at path read-only and parses and validates it. The
// returned File owns the mapping; Close releases it. Tensor data is never
// copied. The file must not be truncated or rewritten in place while it is
// open (writers replace files by renaming, see Writer.WriteFile).
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("gguf: %s: not a regular file", path)
	}
	size := st.Size()
	if size < 4 {
		return nil, &FormatError{Err: ErrTruncated, Path: path, Offset: 0, Msg: fmt.Sprintf("file is %d bytes, too short for the magic", size)}
	}
	if size > math.MaxInt {
		return nil, &FormatError{Err: ErrUnsupported, Path: path, Offset: -1, Msg: fmt.Sprintf("file of %d bytes is too large to map on this platform", size)}
	}
	data, unmap, err := mapFile(fd, int(size))
	if err != nil {
		return nil, fmt.Errorf("gguf: map %s: %w", path, err)
	}
	f, err := parse(data, path)
	if err != nil {
		if unmap != nil {
			unmap(data)
		}
		return nil, err
	}
	f.unmap = unmap
	return f, nil
}

// ValidateHeader opens the file at path, validates all of it (header,
// metadata, tensor index, and that every tensor's data lies inside the
// file), and closes it. A nil result means Open will succeed on the same
// bytes. The tensor data itself is not read.
func ValidateHeader(path string) error {
	f, err := Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}
