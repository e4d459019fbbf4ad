package toolcall

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-llm/sluice/internal/testenv"
	"github.com/sluice-llm/sluice/tokenizer/template"
)

// Learning from the fixtures finds the markers the known formats use.
func TestLearnFixtures(t *testing.T) {
	want := map[string]struct {
		shape      Shape
		start, end string
		nameKey    string
	}{
		"NousResearch-Hermes-3-Llama-3.1-8B-tool_use.jinja":   {Object, "<tool_call>", "</tool_call>", "name"},
		"Qwen-Qwen2.5-7B-Instruct.jinja":                      {Object, "<tool_call>", "</tool_call>", "name"},
		"mistralai-Mistral-Nemo-Instruct-2407.jinja":          {Array, "[TOOL_CALLS]", "", "name"},
		"meetkai-functionary-medium-v3.1.jinja":               {Named, "<function=", "</function>", ""},
		"CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja": {Array, "", "<|END_ACTION|>", "tool_name"},
		"CohereForAI-c4ai-command-r-plus-tool_use.jinja":      {Array, "Action:\n```json", "```", "tool_name"},
		"deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja":      {Named, "", "```<｜tool▁call▁end｜>", ""},
	}
	files, _ := filepath.Glob(filepath.Join(testenv.Shared(t, "templates"), "*.jinja"))
	for _, file := range files {
		name := filepath.Base(file)
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		tmpl, err := template.Parse(string(src))
		if err != nil {
			t.Fatal(err)
		}
		f, ok := Learn(tmpl, "<s>", "</s>")
		t.Logf("%s: learned %v %+v", name, ok, f)
		w, check := want[name]
		if !check {
			continue
		}
		if !ok {
			t.Errorf("%s: nothing learned", name)
			continue
		}
		if f.Shape != w.shape || (w.start != "" && f.Start != w.start) || !strings.HasPrefix(f.End, w.end) || (w.nameKey != "" && f.NameKey != w.nameKey) {
			t.Errorf("%s: learned %+v", name, f)
		}
	}
}
