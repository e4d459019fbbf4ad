package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// getJSON sends a request with an optional JSON body and decodes the JSON
// answer into out.
func (c *serveClient) getJSON(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.o.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

// discoverModel finds the model to ask for, its vocabulary size and
// context length (0 when the server does not say).
func discoverModel(ctx context.Context, o *ServeOptions) (name string, vocab, ctxLen int, err error) {
	var list struct {
		Data []struct {
			ID          string `json:"id"`
			VocabSize   int    `json:"vocab_size"`
			MaxModelLen int    `json:"max_model_len"`
			Meta        struct {
				NVocab int `json:"n_vocab"`
			} `json:"meta"`
		} `json:"data"`
	}
	c := &serveClient{o: o}
	if err := c.getJSON(ctx, http.MethodGet, "/v1/models", nil, &list); err != nil {
		return "", 0, 0, fmt.Errorf("bench: listing the models: %w", err)
	}
	if len(list.Data) == 0 {
		return "", 0, 0, fmt.Errorf("bench: %s serves no model", o.URL)
	}
	ids := make([]string, len(list.Data))
	for i, m := range list.Data {
		ids[i] = m.ID
		if o.Model == "" || m.ID == o.Model {
			return m.ID, max(m.VocabSize, m.Meta.NVocab), m.MaxModelLen, nil
		}
	}
	return "", 0, 0, fmt.Errorf("bench: %s does not serve %q (it serves %s)", o.URL, o.Model, strings.Join(ids, ", "))
}

// streamChunk is the part of a streamed completion or chat chunk the
// benchmark reads.
type streamChunk struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// do sends one streaming request and times it.
func (c *serveClient) do(ctx context.Context, p prompt, maxTokens int) (r result) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	body := map[string]any{
		"model": c.model, "max_tokens": maxTokens, "ignore_eos": true, "temperature": c.o.Temperature,
		"stream": true, "stream_options": map[string]any{"include_usage": true},
	}
	if c.o.NoSpeculation {
		body["speculative"] = false
	}
	path := "/v1/completions"
	if c.o.Chat {
		path = "/v1/chat/completions"
		body["messages"] = []map[string]string{{"role": "user", "content": p.text}}
	} else {
		body["prompt"] = p.ids
	}
	b, err := json.Marshal(body)
	if err != nil {
		return result{err: err}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.o.URL+path, bytes.NewReader(b))
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := c.o.Client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return result{err: fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	chunks := 0
	done := false
	for sc.Scan() {
		line := sc.Bytes()
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			done = true
			break
		}
		var ch streamChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return result{err: fmt.Errorf("undecodable chunk %.200q: %v", data, err)}
		}
		if ch.Error != nil {
			return result{err: fmt.Errorf("error in the stream: %s", ch.Error.Message)}
		}
		for _, c := range ch.Choices {
			if c.Text == "" && c.Delta.Content == "" {
				continue
			}
			chunks++
			if !r.firstSeen {
				r.firstSeen, r.ttft = true, time.Since(start)
			}
		}
		if u := ch.Usage; u != nil && (u.CompletionTokens > 0 || u.PromptTokens > 0) {
			r.usageSeen = true
			r.prompt, r.out = u.PromptTokens, u.CompletionTokens
			if u.PromptTokensDetails != nil {
				r.cached = u.PromptTokensDetails.CachedTokens
			}
		}
	}
	r.e2e = time.Since(start)
	if err := sc.Err(); err != nil {
		return result{err: err}
	}
	if !done {
		return result{err: errors.New("the stream ended without [DONE]")}
	}
	if !r.usageSeen {
		// A server that sends no usage: count the chunks with text.
		r.out = chunks
		r.prompt = len(p.ids)
	}
	if !r.firstSeen {
		r.ttft = r.e2e
	}
	return r
}
