package grammar

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestMaskBenchSample runs the MaskBench-format cases in
// testdata/maskbench: every schema compiles, and token by token its
// grammar accepts each valid instance (compact JSON) and rejects each
// invalid one. Each label is checked first with an independent validator.
func TestMaskBenchSample(t *testing.T) {
	tok := llama3(t)
	files, err := filepath.Glob(filepath.Join("testdata", "maskbench", "*.json"))
	if err != nil || len(files) < 40 {
		t.Fatalf("testdata/maskbench: %d files, %v", len(files), err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json"), func(t *testing.T) {
			var c struct {
				Schema json.RawMessage `json:"schema"`
				Tests  []struct {
					Valid bool            `json:"valid"`
					Data  json.RawMessage `json:"data"`
				} `json:"tests"`
			}
			data, err := os.ReadFile(path)
			if err == nil {
				err = json.Unmarshal(data, &c)
			}
			if err != nil {
				t.Fatal(err)
			}
			v := validator(t, string(c.Schema))
			g := compileSchema(t, tok, string(c.Schema))
			for _, tc := range c.Tests {
				var buf bytes.Buffer
				if err := json.Compact(&buf, tc.Data); err != nil {
					t.Fatal(err)
				}
				inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(buf.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				if ok := v.Validate(inst) == nil; ok != tc.Valid {
					t.Fatalf("%s: labelled valid=%v, the validator says %v", buf.String(), tc.Valid, ok)
				}
				if got := accepts(t, tok, g, buf.String()); got != tc.Valid {
					t.Errorf("%s: valid=%v but the grammar accepted=%v", buf.String(), tc.Valid, got)
				}
			}
		})
	}
}
