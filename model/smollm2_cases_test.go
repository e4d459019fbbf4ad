package model

// smolLM2Cases are chat prompts for TestSmolLM2Chat with the token ids of
// their rendered chat template (SmolLM2's default system prompt included)
// and the start of their greedy answer.
//
// How they were obtained: greedy decoding with sluice's CPU backend (which
// quantizes activations to 8 bits as llama.cpp's CPU path does). llama.cpp
// (the vendor/llama.cpp tree of PyPI's llama-cpp-python 0.3.36, CPU, a
// small C program over libllama: llama_tokenize with special tokens parsed,
// then greedy decoding, one token per llama_decode) gave the same prompt
// tokens and the same greedy tokens. An independent float64 NumPy forward
// pass over the same dequantized weights (gguf-py) agreed teacher-forced
// at every step listed. Each answer stops before a step where llama.cpp's
// top two logits are within 0.1 of each other (2 + 2: "." then newline vs
// <|im_end|>, 0.087; tips: 0.066), so that another correct summation order
// cannot flip them. "What is the capital of France?" is left out: its first
// token is such a near tie (llama.cpp 0.043: "The" over "L").
var smolLM2Cases = []struct {
	user   string
	prompt []int32
	want   []int32
}{
	{
		user: "What is 2 + 2?",
		prompt: []int32{1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198,
			1, 4093, 198, 1780, 314, 216, 34, 1232, 216, 34, 47, 2, 198, 1, 520, 9531, 198},
		// "The answer to this classic math problem is 4."
		want: []int32{504, 2988, 288, 451, 8170, 4119, 1732, 314, 216, 36, 30},
	},
	{
		user: "Hello! Who are you?",
		prompt: []int32{1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198,
			1, 4093, 198, 19556, 17, 6244, 359, 346, 47, 2, 198, 1, 520, 9531, 198},
		// "Hello! I'm here to help with any kind of creative writing project."
		want: []int32{19556, 17, 339, 5248, 1535, 288, 724, 351, 750, 1942, 282, 4833, 2385, 1391, 30},
	},
	{
		user: "Give me three tips for staying healthy.",
		prompt: []int32{1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198,
			1, 4093, 198, 26533, 549, 1296, 5608, 327, 9286, 2458, 30, 2, 198, 1, 520, 9531, 198},
		// "1. Stay hydrated:"
		want: []int32{33, 30, 13138, 22892, 42, 26883},
	},
}
