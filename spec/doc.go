// Package spec is speculative decoding: cheap proposers guess the next few
// tokens of a request, the target model scores all of them in one forward
// pass, and verification keeps the longest run the target agrees with plus
// one token of its own, so every step emits between 1 and k+1 tokens.
//
// The pieces, each usable on its own by the engine's step loop:
//
//   - Proposers (the Proposer interface): NGram, prompt lookup over the
//     request's own tokens with an incremental index; and Draft, a smaller
//     model with the same vocabulary running in its own KV cache, one
//     sequence slot per request, batched over requests by ProposeBatch.
//   - Verification: VerifyGreedy and VerifySampled are the pure rules;
//     Verifier applies them to target logits rows through a request's
//     sample.Sampler, so penalties, bias, top-k/p, min-p and temperature are
//     honoured and the emitted tokens are distributed exactly as plain
//     sampling from the target would distribute them.
//   - Controller: how many tokens to draft for a request this step, adapted
//     to its recent acceptance and turned off for large batches.
//   - Stats: draft/accept counters for metrics.
//
// Randomness. sample.Sampler keeps its random stream private, so
// verification draws its uniforms from an RNG of this package, seeded by
// VerifierSeed from the request's seed (Sampler.Seed). A seeded request is
// therefore reproducible with speculation on, for a given sequence of
// proposals; its tokens are distributed as without speculation but are not
// the same draws.
//
// Nothing in the package allocates per step once its buffers exist, except
// when an index or cache grows (amortised, like append).
package spec
