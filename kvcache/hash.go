package kvcache

import (
	"crypto/sha256"
	"encoding/binary"
)

// Hash identifies a full block of tokens together with everything before it:
// the hash of block i is H(hash of block i-1, tokens of block i), and the
// chain starts at a root H(extra key) that folds in the model fingerprint
// (and, per sequence, an adapter key; see Pool.SetKey). Two blocks with the
// same Hash are meant to hold the same KV entries.
//
// The default H is SHA-256 truncated to 128 bits over a tagged, length-
// prefixed encoding, so different inputs cannot be made to look alike by
// shifting bytes between fields, and finding a collision takes about 2^64
// work even for someone choosing prompts on purpose. A hit is still checked
// against the block's stored parent hash and token ids (see Pool.Match);
// what remains unverified is only that an ancestor no longer in the cache
// hashed to the same value with other content, i.e. a real collision of the
// truncated SHA-256.
type Hash [16]byte

// hashFunc computes a chain hash. Root hashes are hashFunc(parent, nil, key);
// block hashes are hashFunc(parent, tokens, nil). Tests replace it to forge
// collisions.
type hashFunc func(parent Hash, tokens []int32, extra []byte) Hash

// sha256Hasher is the default hashFunc. It owns a reusable encoding buffer,
// so hashing does not allocate.
type sha256Hasher struct {
	buf []byte
}

const (
	tagRoot  = 'R'
	tagBlock = 'B'
)

func (x *sha256Hasher) sum(parent Hash, tokens []int32, extra []byte) Hash {
	b := x.buf[:0]
	if tokens == nil {
		b = append(b, tagRoot)
	} else {
		b = append(b, tagBlock)
	}
	b = append(b, parent[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(tokens)))
	for _, t := range tokens {
		b = binary.LittleEndian.AppendUint32(b, uint32(t))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(extra)))
	b = append(b, extra...)
	x.buf = b
	full := sha256.Sum256(b)
	var h Hash
	copy(h[:], full[:])
	return h
}
