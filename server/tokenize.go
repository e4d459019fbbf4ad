package server

import (
	"encoding/json"
	"net/http"
)

// tokenizeRequest is vLLM's /tokenize body: a prompt, or chat messages
// rendered with the model's template.
type tokenizeRequest struct {
	Model               string          `json:"model"`
	Prompt              *string         `json:"prompt"`
	Messages            json.RawMessage `json:"messages"`
	Tools               json.RawMessage `json:"tools"`
	AddSpecialTokens    *bool           `json:"add_special_tokens"`
	AddGenerationPrompt *bool           `json:"add_generation_prompt"`
	ChatTemplateKwargs  json.RawMessage `json:"chat_template_kwargs"`
	ReturnTokenStrs     bool            `json:"return_token_strs"`
}

type tokenizeResponse struct {
	Count       int      `json:"count"`
	MaxModelLen int      `json:"max_model_len"`
	Tokens      []int32  `json:"tokens"`
	TokenStrs   []string `json:"token_strs"`
}

type detokenizeRequest struct {
	Model  string  `json:"model"`
	Tokens []int32 `json:"tokens"`
}

func (s *Server) handleTokenize(w http.ResponseWriter, r *http.Request) error {
	var body tokenizeRequest
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	e, err := s.lookup(body.Model)
	if err != nil {
		return err
	}
	ids, err := e.tokenize(&body)
	if err != nil {
		return err
	}
	resp := tokenizeResponse{Count: len(ids), MaxModelLen: e.info.ContextLength, Tokens: ids}
	if body.ReturnTokenStrs {
		resp.TokenStrs = make([]string, len(ids))
		for i, id := range ids {
			resp.TokenStrs[i] = e.tok.Piece(id)
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (e *entry) tokenize(body *tokenizeRequest) ([]int32, error) {
	hasMsgs := len(body.Messages) > 0 && string(body.Messages) != "null"
	switch {
	case body.Prompt != nil && hasMsgs:
		return nil, badRequest("prompt", "give either prompt or messages, not both")
	case body.Prompt != nil:
		add := body.AddSpecialTokens == nil || *body.AddSpecialTokens
		ids := e.tok.Encode(*body.Prompt, add, true)
		if ids == nil {
			ids = []int32{}
		}
		return ids, nil
	case hasMsgs:
		in, err := parseChat(body.Messages, body.Tools, nil, body.ChatTemplateKwargs, body.AddGenerationPrompt)
		if err != nil {
			return nil, err
		}
		return e.renderChat(in)
	}
	return nil, badRequest("prompt", "prompt (or messages) is required")
}

func (s *Server) handleDetokenize(w http.ResponseWriter, r *http.Request) error {
	var body detokenizeRequest
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	e, err := s.lookup(body.Model)
	if err != nil {
		return err
	}
	if body.Tokens == nil {
		return badRequest("tokens", "tokens is required")
	}
	vocab := e.tok.VocabSize()
	for i, id := range body.Tokens {
		if id < 0 || int(id) >= vocab {
			return badRequest("tokens", "tokens[%d] = %d is not a token id (vocabulary of %d)", i, id, vocab)
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"prompt": e.tok.Decode(body.Tokens)})
	return nil
}
