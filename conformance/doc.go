// Package conformance runs the client conformance suite (suite.mjs): the
// official openai Node SDK, the Vercel AI SDK and LangChain JS calling
// tools through sluice's OpenAI-compatible server, on a random-weight model
// with the chat templates of the Hermes/Qwen, Llama 3.x and Mistral
// families. It has no code of its own; see conformance_test.go.
package conformance
