package grammar

import (
	"strings"
	"testing"
)

// TestOneOfObjectsOverlapOtherwise: object branches that properties tell
// apart still overlap when they share another type too, and an object
// branch with no properties overlaps any object branch; both are refused.
func TestOneOfObjectsOverlapOtherwise(t *testing.T) {
	tok := llama3(t)
	for _, schema := range []string{
		`{"oneOf":[{"type":["object","string"],"properties":{"k":{"const":1}},"required":["k"]},{"type":["object","string"],"properties":{"k":{"const":2}},"required":["k"]}]}`,
		`{"oneOf":[{"type":["object","integer"],"properties":{"k":{"const":1}},"required":["k"]},{"type":["integer","object"],"properties":{"k":{"const":2}},"required":["k"]}]}`,
		`{"oneOf":[{"type":"object"},{"type":"object","properties":{"k":{"const":2}},"required":["k"]}]}`,
		`{"oneOf":[{"type":"object","properties":{"k":{"const":2}},"required":["k"]},{"type":"object"}]}`,
	} {
		_, err := CompileJSONSchema(tok, []byte(schema), Options{})
		if err == nil || !strings.Contains(err.Error(), "oneOf") {
			t.Errorf("%s: got %v, want a oneOf error", schema, err)
		}
	}
	// Control: told apart by the property alone, accepted.
	if _, err := CompileJSONSchema(tok, []byte(`{"oneOf":[{"type":"object","properties":{"k":{"const":1}},"required":["k"]},{"type":"object","properties":{"k":{"const":2}},"required":["k"]}]}`), Options{}); err != nil {
		t.Errorf("disjoint object branches refused: %v", err)
	}
}
