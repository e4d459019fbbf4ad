package spec

import "github.com/sluice-llm/sluice/sample"

// RNG is the generator sample uses (xoshiro256**); verification and draft
// sampling keep their own streams, seeded from the request's seed.
type RNG = sample.RNG

// NewRNG returns a generator seeded with seed.
func NewRNG(seed uint64) RNG { return sample.NewRNG(seed) }

// VerifierSeed derives the seed of a request's verification stream from the
// request's sampling seed, so that it is independent of the sampler's own
// stream even though both start from the same number.
func VerifierSeed(requestSeed uint64) uint64 { return requestSeed ^ 0x5bd1e9955bd1e995 }

// DraftSeed derives the seed a draft model's sampling uses for a request.
func DraftSeed(requestSeed uint64) uint64 { return requestSeed ^ 0xc2b2ae3d27d4eb4f }
