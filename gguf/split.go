package gguf

import (
	"errors"
	"fmt"
)

// OpenSplit opens the parts of a split model (NAME-00001-of-0000N.gguf ...,
// in order) as one File: the metadata of the first part and the tensors of
// all parts, each read from the part that holds it. One path is the same as
// Open, except that a lone part of a larger split is refused. The parts' split.no and split.count keys, when present, must agree
// with the order and number of paths given.
//
// The returned File owns every part's mapping; Close unmaps them all.
// DataOffset is 0 on a split File: tensor offsets are relative to their own
// part.
func OpenSplit(paths []string) (*File, error) {
	switch len(paths) {
	case 0:
		return nil, errors.New("gguf: no files to open")
	case 1:
		f, err := Open(paths[0])
		if err != nil {
			return nil, err
		}
		if n, ok := f.Uint32("split.count"); ok && n > 1 {
			f.Close()
			return nil, fmt.Errorf("gguf: %s is one part of a %d-part split model (split.count); open all parts together", paths[0], n)
		}
		return f, nil
	}
	parts := make([]*File, 0, len(paths))
	fail := func(err error) (*File, error) {
		for _, p := range parts {
			p.Close()
		}
		return nil, err
	}
	for i, path := range paths {
		p, err := Open(path)
		if err != nil {
			return fail(err)
		}
		parts = append(parts, p)
		if n, ok := p.Uint32("split.count"); ok && int(n) != len(paths) {
			return fail(fmt.Errorf("gguf: %s: split.count is %d but %d parts were given", path, n, len(paths)))
		}
		if no, ok := p.Uint32("split.no"); ok && int(no) != i {
			return fail(fmt.Errorf("gguf: %s: split.no is %d, expected part %d", path, no, i))
		}
	}
	first := parts[0]
	f := &File{
		Version:   first.Version,
		Alignment: first.Alignment,
		KVs:       first.KVs,
		path:      first.path,
		kvIdx:     first.kvIdx,
		tIdx:      map[string]int{},
		parts:     parts,
	}
	for pi, p := range parts {
		f.size += p.size
		for _, ti := range p.Tensors {
			if _, dup := f.tIdx[ti.Name]; dup {
				return fail(&FormatError{Err: ErrCorrupt, Path: p.path, Offset: -1, Tensor: ti.Name, Msg: "tensor appears in more than one part"})
			}
			f.tIdx[ti.Name] = len(f.Tensors)
			f.Tensors = append(f.Tensors, ti)
			f.partOf = append(f.partOf, pi)
		}
	}
	return f, nil
}

// splitTensorData returns ti's bytes from the part that holds it.
func (f *File) splitTensorData(ti *TensorInfo) []byte {
	i, ok := f.tIdx[ti.Name]
	if !ok || f.closed {
		return nil
	}
	p := f.parts[f.partOf[i]]
	pt, ok := p.Tensor(ti.Name)
	if !ok {
		return nil
	}
	return p.TensorData(pt)
}
