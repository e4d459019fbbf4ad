package store

import "github.com/sluice-llm/sluice/gguf"

// validateGGUF fully parses and validates the GGUF file at path before it
// is admitted to the store.
var validateGGUF = gguf.ValidateHeader
